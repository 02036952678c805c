//! Retention (docs/privacy.md): comments older than the window are deleted from every store the sink writes,
//! on a schedule, in bounded steps with a pause between them, so ingest never waits long for them; the rollups
//! keep their counts or lose them, by configuration; minute-grain rollups expire on their own horizon.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use murmur_core::{CommentStore, Expired, Expiry};
use tokio_util::sync::CancellationToken;

use crate::{retry, IngestError, PipelineStats};

#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// How long comments are kept (by `created_at`); `None` keeps them.
    pub comments: Option<Duration>,
    /// Whether the rollups keep the counts of the comments retention deletes.
    pub keep_rollups: bool,
    /// How long minute-grain rollups are kept; `None` keeps them.
    pub minute_rollups: Option<Duration>,
    /// Rows deleted per step.
    pub batch: usize,
    /// Pause between two steps (what ingest gets back in between).
    pub pause: Duration,
    /// How often a pass starts.
    pub every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            comments: None,
            keep_rollups: true,
            minute_rollups: None,
            batch: 1000,
            pause: Duration::from_millis(50),
            every: Duration::from_secs(60),
        }
    }
}

impl Retention {
    /// Whether there is anything to expire.
    pub fn enabled(&self) -> bool {
        self.comments.is_some() || self.minute_rollups.is_some()
    }

    /// Passes over `stores` until `shutdown`: each store expires step by step until a step removes less than a
    /// batch, then flushes. Counts the comments that went in `stats.expired`.
    pub async fn run(self, stores: Vec<Arc<dyn CommentStore>>, stats: Arc<PipelineStats>, shutdown: CancellationToken) {
        tracing::info!(
            comments_days = self.comments.map(|d| d.as_secs() / 86_400),
            keep_rollups = self.keep_rollups,
            minute_rollups_days = self.minute_rollups.map(|d| d.as_secs() / 86_400),
            "retention on"
        );
        loop {
            let now = Utc::now();
            let before = |window: Option<Duration>| window.and_then(|w| TimeDelta::from_std(w).ok()).map(|w| now - w);
            let expiry = Expiry {
                comments_before: before(self.comments),
                keep_rollups: self.keep_rollups,
                minute_rollups_before: before(self.minute_rollups),
                batch: self.batch,
            };
            for store in &stores {
                let Some(removed) = self.pass(store.as_ref(), &expiry, &stats, &shutdown).await else { return };
                if removed != Expired::default() {
                    tracing::info!(
                        store = store.name(),
                        comments = removed.comments,
                        minute_rollups = removed.minute_rollups,
                        "retention pass"
                    );
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// One store's pass, counting the comments removed in `stats` as it goes: what it removed; None at shutdown.
    async fn pass(
        &self,
        store: &dyn CommentStore,
        expiry: &Expiry,
        stats: &PipelineStats,
        shutdown: &CancellationToken,
    ) -> Option<Expired> {
        let name = store.name();
        let mut removed = Expired::default();
        loop {
            let step =
                || async { store.expire(expiry).await.map_err(|source| IngestError::Store { store: name, source }) };
            let step = retry::until_ok("retention", shutdown, step).await?;
            PipelineStats::add(&stats.expired, step.comments as usize);
            removed.comments += step.comments;
            removed.minute_rollups += step.minute_rollups;
            if step.comments.max(step.minute_rollups) < self.batch as u64 {
                break;
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(self.pause) => {}
            }
        }
        let flush = || async { store.flush().await.map_err(|source| IngestError::Store { store: name, source }) };
        retry::until_ok("retention flush", shutdown, flush).await?;
        Some(removed)
    }
}
