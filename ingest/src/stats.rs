use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Counters and histograms the pipeline stages update as they go; read for progress output and the admin
/// port's metrics.
#[derive(Debug)]
pub struct PipelineStats {
    pub consumed: AtomicU64,
    pub enriched: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub stored: AtomicU64,
    /// Deletions: tombstones passed on (worker); comments deleted from every store (sink).
    pub deleted: AtomicU64,
    /// Comments not stored because they were deleted before or their author erased (sink).
    pub forgotten: AtomicU64,
    /// Comments retention removed (sink; counted by the stores that delete row by row).
    pub expired: AtomicU64,
    /// Messages per batch read from the stage's topic.
    pub batch_messages: Histogram,
    /// Seconds the worker's enrichment of one batch took (the model's share of the stage).
    pub enrich_seconds: Histogram,
    /// Seconds each store took to write one batch, retries included, by store name (sink).
    store_write_seconds: Mutex<BTreeMap<&'static str, Arc<Histogram>>>,
}

impl Default for PipelineStats {
    fn default() -> Self {
        Self {
            consumed: AtomicU64::new(0),
            enriched: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            deleted: AtomicU64::new(0),
            forgotten: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            batch_messages: Histogram::new(BATCH_BOUNDS),
            enrich_seconds: Histogram::new(SECONDS_BOUNDS),
            store_write_seconds: Mutex::new(BTreeMap::new()),
        }
    }
}

/// Upper bounds of batch-size buckets, in messages (the sink's default batch is 2,000).
const BATCH_BOUNDS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0];
/// Upper bounds of duration buckets, in seconds: from a cached index write to a large CPU batch.
const SECONDS_BOUNDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

impl PipelineStats {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The write-duration histogram of the store called `name` (made on first use).
    pub fn store_write(&self, name: &'static str) -> Arc<Histogram> {
        let mut all = self.store_write_seconds.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(all.entry(name).or_insert_with(|| Arc::new(Histogram::new(SECONDS_BOUNDS))))
    }

    /// Every store's write-duration histogram, by name.
    pub fn store_writes(&self) -> Vec<(&'static str, Arc<Histogram>)> {
        let all = self.store_write_seconds.lock().unwrap_or_else(PoisonError::into_inner);
        all.iter().map(|(name, h)| (*name, Arc::clone(h))).collect()
    }
}

/// A Prometheus-style histogram on atomics: cumulative counts per upper bound, the count and the sum,
/// observed without locks from any thread.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations at or below each bound (not cumulative; summed when read).
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// The sum of observations, in millionths (exact for the counts and durations observed here).
    sum_micros: AtomicU64,
}

/// What a histogram holds at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, observations at or below it)`, cumulative, without the `+Inf` bucket (that is `count`).
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((value.max(0.0) * 1e6).round() as u64, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, duration: Duration) {
        self.observe(duration.as_secs_f64());
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| {
                running += n.load(Ordering::Relaxed);
                (*bound, running)
            })
            .collect();
        HistogramSnapshot {
            buckets,
            count: self.count.load(Ordering::Relaxed),
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_cumulatively_and_sums() {
        let stats = PipelineStats::default();
        for n in [1.0, 3.0, 3.0, 7000.0] {
            stats.batch_messages.observe(n);
        }
        let snapshot = stats.batch_messages.snapshot();
        assert_eq!(snapshot.count, 4);
        assert_eq!(snapshot.sum, 7007.0);
        assert_eq!(snapshot.buckets[0], (1.0, 1));
        assert_eq!(snapshot.buckets[2], (5.0, 3), "two of 3 land under 5");
        assert_eq!(snapshot.buckets.last(), Some(&(5000.0, 3)), "7,000 is only in +Inf (the count)");
        stats.store_write("postgres").observe_duration(Duration::from_millis(20));
        let writes = stats.store_writes();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].1.snapshot().count, 1);
        assert!(Arc::ptr_eq(&writes[0].1, &stats.store_write("postgres")), "one histogram per store");
    }
}
