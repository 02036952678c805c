//! Deleting comments and erasing authors (docs/privacy.md). The API never deletes from a store itself: it
//! remembers the keys in Postgres (so no sink stores them again from then on) and sends their tombstones to the
//! enriched topic, past the enrichment backlog, and the sinks delete them from every store, in order with the
//! comments' own messages. An erasure request is swept by the [`Eraser`] in the background, page by page,
//! resumable.

use std::sync::Arc;
use std::time::Duration;

use murmur_core::CommentId;
use murmur_ingest::queue::{Producer, Record};
use murmur_ingest::{IngestError, Pseudonymizer};
use murmur_store::{Postgres, StoreError};
use prometheus::IntCounter;
use tokio_util::sync::CancellationToken;

/// How long a request waits for the broker to take its tombstones.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How erasures run.
#[derive(Debug, Clone, Copy)]
pub struct ErasureOptions {
    /// How long the author's comments are erased on arrival after a request (messages still in flight).
    pub arrivals: Duration,
    /// How long after its first sweep an erasure sweeps once more, for comments whose write was under way when
    /// the request came.
    pub settle: Duration,
    /// Comments tombstoned per page.
    pub page: i64,
    /// How often an idle eraser looks for requests.
    pub tick: Duration,
}

impl Default for ErasureOptions {
    fn default() -> Self {
        Self {
            arrivals: Duration::from_secs(72 * 3600),
            settle: Duration::from_secs(60),
            page: 1000,
            tick: Duration::from_secs(1),
        }
    }
}

/// How this server deletes: tombstones to the enriched topic.
#[derive(Clone)]
pub struct Deleter {
    producer: Arc<dyn Producer>,
    /// The enriched topic (the sinks read it).
    topic: String,
    /// The worker's pseudonym key: an erasure names the author as the platform knows them. `None`: erasures
    /// are refused.
    pseudonyms: Option<Arc<Pseudonymizer>>,
    pub options: ErasureOptions,
}

impl Deleter {
    pub fn new(
        producer: Arc<dyn Producer>,
        topic: String,
        pseudonyms: Option<Pseudonymizer>,
        options: ErasureOptions,
    ) -> Self {
        Self { producer, topic, pseudonyms: pseudonyms.map(Arc::new), options }
    }

    /// Remembers the comments as deleted (as `erasure`'s, if given) and sends their tombstones; returns how many
    /// keys were not remembered yet.
    pub async fn delete(
        &self,
        postgres: &Postgres,
        comments: &[CommentId],
        erasure: Option<i64>,
    ) -> Result<u64, DeleteError> {
        let added = postgres.remember_deleted(comments, erasure).await?;
        let tombstones: Vec<Record> = comments.iter().map(|c| Record::tombstone(&self.topic, c)).collect();
        match tokio::time::timeout(SEND_TIMEOUT, self.producer.send_all(&tombstones)).await {
            Ok(sent) => sent?,
            Err(_) => return Err(DeleteError::Timeout(SEND_TIMEOUT)),
        }
        Ok(added)
    }

    /// The pseudonym the worker stored for `handle` on `source`; `None` where this server has no pseudonym key.
    pub fn pseudonym(&self, source: &str, handle: &str) -> Option<String> {
        self.pseudonyms.as_ref().map(|p| p.pseudonymize(source, handle))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("sending tombstones: {0}")]
    Send(#[from] IngestError),
    #[error("the broker did not acknowledge the tombstones within {0:?}")]
    Timeout(Duration),
}

/// Sweeps erasure requests: each author's stored comments, page by page in id order, each page remembered and
/// tombstoned before the request's cursor moves past it (so a crash repeats a page, never skips one); then,
/// after [`ErasureOptions::settle`], once more, for comments whose write was under way when the request came.
/// Several servers may run one: a page two of them sent is sent twice (tombstones are idempotent) and counted
/// once.
pub struct Eraser {
    postgres: Postgres,
    deleter: Deleter,
    erased: IntCounter,
}

impl Eraser {
    /// `erased` counts the comments this eraser deleted (`murmur_erased_comments_total`).
    pub fn new(postgres: Postgres, deleter: Deleter, erased: IntCounter) -> Self {
        Self { postgres, deleter, erased }
    }

    /// Runs until `shutdown`; failures are logged and retried on the next tick.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let busy = match self.step().await {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::warn!(error = %e, "erasure step failed; retrying");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(self.deleter.options.tick) => {}
                }
            } else if shutdown.is_cancelled() {
                return;
            }
        }
    }

    /// One page of the oldest erasure with work to do now; whether there was any.
    async fn step(&self) -> Result<bool, DeleteError> {
        let Some(erasure) = self.postgres.next_erasure().await? else { return Ok(false) };
        match erasure.status.as_str() {
            "settling" => return Ok(self.postgres.resume_sweep(&erasure).await?),
            "sweeping" => {}
            _ => return Ok(false),
        }
        let page = self.postgres.erasure_page(&erasure, self.deleter.options.page).await?;
        let Some(last) = page.last() else {
            self.postgres.end_sweep(&erasure, self.deleter.options.settle).await?;
            let now = self.postgres.erasure(erasure.id).await?;
            if let Some(now) = now.filter(|e| e.status == "done") {
                tracing::info!(erasure = now.id, source = %now.source, comments = now.comments, "erasure done");
            }
            return Ok(true);
        };
        let added = self.deleter.delete(&self.postgres, &page, Some(erasure.id)).await?;
        self.erased.inc_by(added);
        if self.postgres.advance_erasure(&erasure, &last.id).await? {
            tracing::info!(erasure = erasure.id, page = page.len(), sweep = erasure.sweeps + 1, "erasing");
        }
        Ok(true)
    }
}
