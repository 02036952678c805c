//! `murmur-bench`: every benchmark of murmur, each printing a table with the ratio against a peer measured
//! in the same run and the machine's features. Kept out of the `murmur` binary so the roles that serve link
//! none of it; see docs/benchmarks.md for the commands and dated results.

mod copies;
mod enrich;
mod explain;
mod languages;
mod measure;
mod multilingual;
mod pipeline;
mod plumbing;
mod retention;
mod search;
mod segmentation;
mod themes;
mod trends;

use clap::{Parser, Subcommand};
use murmur_cli::LogFormat;

/// The allocator `murmur` runs with (see its `main`), so the plumbing measured is the plumbing served.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "murmur-bench", version, about = "Measure murmur against a peer run in the same invocation")]
struct Cli {
    /// Log output: human-readable text or one JSON object per line.
    #[arg(long, env = "MURMUR_LOG_FORMAT", value_enum, default_value = "text", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The copy finder (near-duplicates) on real tweets against the sink's write path it follows.
    Copies(copies::CopiesArgs),
    /// Enrichment comments/s against Hugging Face Python on the same comments and threads.
    Enrich(enrich::EnrichArgs),
    /// Explanations: faithfulness on held-out comments (top-3 words against 3 random ones) and cost against
    /// enrichment.
    Explain(explain::ExplainArgs),
    /// Language detection: accuracy per language against whichlang, and English tweets wrongly skipped.
    Languages(languages::LanguagesArgs),
    /// The multilingual encoder against murmur's English one: translations found across languages, English
    /// paraphrases found, and the cost of a second vector per comment.
    Multilingual(multilingual::MultilingualArgs),
    /// Search at scale: index build time and size, query latency per mode, HNSW recall against exact search.
    Search(search::SearchArgs),
    /// Chinese and Japanese words in BM25: characters and phrase queries against jieba-rs and TinySegmenter.
    Segmentation(segmentation::SegmentationArgs),
    /// Themes: clustering quality on a labelled topic set against k-means and the BERTopic recipe, and the
    /// cost per comment at a million.
    Themes(themes::ThemesArgs),
    /// Trend queries at scale: p50/p99 from the rollups against the same answers from the raw rows.
    Trends(trends::TrendsArgs),
    /// The pipeline without the models: broker → worker (stub enrichment) → sink → Postgres and the index.
    Plumbing(plumbing::PlumbingArgs),
    /// Retention deleting comments past the window while the pipeline ingests, against ingest alone.
    Retention(retention::RetentionArgs),
    /// The real pipeline with the models: its capacity on a backlog against the models alone, then the latency
    /// from produce to searchable at a steady rate below capacity.
    Pipeline(pipeline::PipelineArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    murmur_cli::init_logging(cli.log_format);
    // Every table is read with the machine it ran on.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("machine: {} ({cores} cores)", murmur_enrich::precision::CpuFeatures::detect());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Copies(args) => copies::copies(args).await,
            Command::Enrich(args) => enrich::enrich(args),
            Command::Explain(args) => explain::explain_bench(args),
            Command::Languages(args) => languages::languages(args),
            Command::Multilingual(args) => multilingual::multilingual(args),
            Command::Search(args) => search::search(args),
            Command::Segmentation(args) => segmentation::segmentation(args),
            Command::Themes(args) => themes::themes(args),
            Command::Trends(args) => trends::trends(args).await,
            Command::Plumbing(args) => plumbing::plumbing(args).await,
            Command::Pipeline(args) => pipeline::pipeline(args).await,
            Command::Retention(args) => retention::retention(args).await,
        }
    })
}
