//! The `murmur` binary: parses configuration and wires the crates together; no business logic lives here.

mod cli;
mod commands;
mod demo;
mod explain;

use std::ffi::OsString;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};

/// mimalloc instead of glibc's malloc: the stages allocate and free a batch's worth of messages, comments and
/// records many times a second from several threads, and glibc spent a sixth of the plumbing's CPU on it
/// (malloc, free, consolidation, and faulting in pages it had given back); see `murmur-bench plumbing`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args: Vec<OsString> = std::env::args_os().collect();
    // Before any thread exists: the config file is applied as environment variables.
    murmur_cli::config_file::apply(&args, &Cli::command())?;
    let cli = Cli::parse_from(args);
    murmur_cli::init_logging(cli.log_format);
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
            Command::Report(args) => commands::report(args).await,
            Command::Explain(args) => explain::run(args),
        }
    })
}
