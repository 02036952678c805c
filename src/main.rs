//! The `murmur` binary: parses configuration and wires the crates together; no business logic lives here.

mod bench;
mod bench_pipeline;
mod bench_plumbing;
mod bench_search;
mod bench_trends;
mod cli;
mod commands;
mod config_file;
mod demo;
mod measure;

use std::ffi::OsString;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, LogFormat};

/// mimalloc instead of glibc's malloc: the stages allocate and free a batch's worth of messages, comments and
/// records many times a second from several threads, and glibc spent a sixth of the plumbing's CPU on it
/// (malloc, free, consolidation, and faulting in pages it had given back); see `murmur bench plumbing`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args: Vec<OsString> = std::env::args_os().collect();
    // Before any thread exists: the config file is applied as environment variables.
    config_file::apply(&args)?;
    let cli = Cli::parse_from(args);
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Worker(args) => commands::worker(args).await,
            Command::Sink(args) => commands::sink(args).await,
            Command::Serve(args) => commands::serve(args).await,
            Command::Produce(args) => commands::produce(args).await,
            Command::Migrate(args) => commands::migrate(args).await,
            Command::Reindex(args) => commands::reindex(args).await,
            Command::Bench(cli::BenchCommand::Enrich(args)) => bench::enrich(args),
            Command::Bench(cli::BenchCommand::Search(args)) => bench_search::search(args),
            Command::Bench(cli::BenchCommand::Trends(args)) => bench_trends::trends(args).await,
            Command::Bench(cli::BenchCommand::Plumbing(args)) => bench_plumbing::plumbing(args).await,
            Command::Bench(cli::BenchCommand::Pipeline(args)) => bench_pipeline::pipeline(args).await,
            Command::Report(args) => commands::report(args).await,
        }
    })
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("MURMUR_LOG").unwrap_or_else(|_| {
        EnvFilter::new("info,tantivy=warn,sqlx=warn,actix_server=warn,rdkafka=warn,hnsw_rs=warn,anndists=warn")
    });
    // Colours only on a terminal: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
