//! The search index's settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use murmur_search::{HnswParams, IndexOptions};

use crate::home_path;

#[derive(Args, Clone)]
pub struct IndexArgs {
    /// Folder of the search index.
    #[arg(long, env = "MURMUR_INDEX_DIR", default_value = "data/index", value_parser = home_path)]
    pub index_dir: PathBuf,
    /// Longest a stored comment waits to become searchable (the index commits on this cadence).
    #[arg(long, env = "MURMUR_COMMIT_INTERVAL_MS", default_value_t = IndexOptions::default().commit_interval.as_millis() as u64)]
    pub commit_interval_ms: u64,
    /// HNSW candidate list of an unfiltered semantic search (a filtered one's shrinks with the share of comments
    /// the filter keeps): higher finds more of the true nearest neighbours, slower.
    #[arg(long, env = "MURMUR_EF_SEARCH", default_value_t = HnswParams::default().ef_search)]
    pub ef_search: usize,
}

impl IndexArgs {
    pub fn options(&self) -> IndexOptions {
        let defaults = IndexOptions::default();
        IndexOptions {
            commit_interval: Duration::from_millis(self.commit_interval_ms),
            hnsw: HnswParams { ef_search: self.ef_search.max(1), ..defaults.hnsw },
            ..defaults
        }
    }
}
