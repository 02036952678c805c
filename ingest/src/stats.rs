use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the pipeline stages bump as they go; read for progress output and the admin port's metrics.
#[derive(Debug, Default)]
pub struct PipelineStats {
    pub consumed: AtomicU64,
    pub enriched: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub stored: AtomicU64,
}

impl PipelineStats {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
