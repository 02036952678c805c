//! Training and scoring murmur's task model ([`murmur_enrich::TaskModel`]): the labelled sets and their
//! splits ([`data`]), making them look like social text ([`augment`]), the multi-task training loop
//! ([`fit`]), scores ([`metrics`]) computed through what a model returns to users ([`evaluate`]: the model
//! loaded here or a running server), and the model card ([`card`]). Only the `murmur-train` and `murmur-bench` binaries link
//! this crate: the roles that serve (worker, sink, API) carry the runtime alone.

pub mod aspects;
pub mod augment;
pub mod card;
pub mod data;
pub mod evaluate;
pub mod fit;
pub mod metrics;

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} line {line}: {what}")]
    Data { path: PathBuf, line: usize, what: String },
    #[error("corpus: {0}")]
    Corpus(String),
    #[error("options: {0}")]
    Options(String),
    #[error("model: {0}")]
    Model(#[from] murmur_enrich::EnrichError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("enrichment server: {0}")]
    Http(String),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// A progress bar on standard error for long work (hidden when it is not a terminal).
pub(crate) fn progress(len: usize, what: &str) -> ProgressBar {
    ProgressBar::new(len as u64)
        .with_style(
            ProgressStyle::with_template("{msg:>28} {bar:40} {pos}/{len} [{elapsed}<{eta}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
        .with_message(what.to_owned())
}
