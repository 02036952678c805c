//! The sink: `comments.enriched` → every store → flush → commit. Offsets are committed only after every
//! store flushed what covers them (Postgres is durable per batch; the search index commits on a cadence, so
//! several batches share one commit), so nothing is lost; stores upsert by (source, id), so a replayed batch
//! duplicates nothing.
//!
//! A tombstone (a message without a value, key `source/id`) deletes its comment from every store. A comment
//! the [`DeletionLedger`] says was deleted (or whose author was erased) is deleted again instead of stored, as
//! is one whose tombstone sits in an earlier batch not yet durable, so a replayed or late message never brings
//! a deleted comment back.
//!
//! Each store has its own lane, a task that writes the batches in the order read and flushes on the store's
//! cadence, so reading and decoding the next batch, the Postgres write and the index's commit overlap instead
//! of taking turns. A lane holds at most [`LANE_DEPTH`] batches waiting, so a slow store slows the reading.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use murmur_core::{
    CommentId, CommentStore, DeletionLedger, EnrichedComment, ENRICHED_SCHEMA_VERSION, OLDEST_READABLE_ENRICHED_SCHEMA,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::queue::{poll_or_stop, Consumer, Message, Producer, Record};
use crate::{retry, Histogram, IngestError, PipelineStats, Topics};

/// How long a poll waits for a first message when nothing waits for a flush.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How long it waits when read batches wait for a store's flush.
const FLUSH_CHECK: Duration = Duration::from_millis(50);
/// Batches read and not yet taken by a store's lane, at most.
pub const LANE_DEPTH: usize = 2;

#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub topics: Topics,
    pub max_batch: usize,
    pub linger: Duration,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self { topics: Topics::default(), max_batch: 2000, linger: Duration::from_millis(200) }
    }
}

pub struct Sink {
    stores: Vec<Arc<dyn CommentStore>>,
    ledger: Arc<dyn DeletionLedger>,
    dlq: Arc<dyn Producer>,
    config: SinkConfig,
    stats: Arc<PipelineStats>,
}

/// What a batch changes: comments to write and comments to delete, never the same comment in both.
#[derive(Debug, Default)]
pub struct Changes {
    pub upserts: Vec<EnrichedComment>,
    pub deletions: Vec<CommentId>,
}

/// A decoded batch, numbered in the order read.
type Numbered = (u64, Arc<Changes>);

/// Read batches whose offsets wait for every store's flush: their number, positions and how many comments
/// they store and delete.
struct Pending {
    number: u64,
    positions: Vec<Message>,
    upserts: usize,
    deletions: usize,
}

impl Sink {
    pub fn new(
        stores: Vec<Arc<dyn CommentStore>>,
        ledger: Arc<dyn DeletionLedger>,
        dlq: Arc<dyn Producer>,
        config: SinkConfig,
        stats: Arc<PipelineStats>,
    ) -> Self {
        Self { stores, ledger, dlq, config, stats }
    }

    pub async fn run(&self, mut consumer: impl Consumer, shutdown: CancellationToken) -> Result<(), IngestError> {
        let names: Vec<&str> = self.stores.iter().map(|s| s.name()).collect();
        tracing::info!(topic = %self.config.topics.enriched, stores = ?names, "sink started");
        let mut lanes = Vec::new();
        let mut durable = Vec::new();
        let mut tasks = Vec::new();
        for store in &self.stores {
            let (batches, receiver) = mpsc::channel::<Numbered>(LANE_DEPTH);
            let (flushed, watcher) = watch::channel(0u64);
            let writes = self.stats.store_write(store.name());
            tasks.push(tokio::spawn(lane(Arc::clone(store), receiver, flushed, writes, shutdown.clone())));
            lanes.push(batches);
            durable.push(watcher);
        }
        let mut pending: VecDeque<Pending> = VecDeque::new();
        // Comments deleted by batches not yet durable everywhere (the ledger may not hold them yet), with the
        // batch's number.
        let mut deleting: HashMap<CommentId, u64> = HashMap::new();
        let mut number = 0u64;
        'reading: loop {
            let idle = if pending.is_empty() { IDLE_POLL } else { FLUSH_CHECK };
            let Some(batch) =
                poll_or_stop(&mut consumer, self.config.max_batch, idle, self.config.linger, &shutdown).await
            else {
                break;
            };
            if !batch.is_empty() {
                let Some(changes) = self.decode_and_dead_letter(&batch, &shutdown).await else { break };
                let Some(changes) = self.forget_deleted(changes, &deleting, &shutdown).await else { break };
                number += 1;
                deleting.extend(changes.deletions.iter().map(|c| (c.clone(), number)));
                let changes = Arc::new(changes);
                for lane in &lanes {
                    if lane.send((number, Arc::clone(&changes))).await.is_err() {
                        break 'reading; // a lane stops only at shutdown
                    }
                }
                let positions = batch.into_iter().map(Message::position).collect();
                let (upserts, deletions) = (changes.upserts.len(), changes.deletions.len());
                pending.push_back(Pending { number, positions, upserts, deletions });
            }
            let durable_everywhere = self.commit_durable(&mut consumer, &durable, &mut pending).await;
            deleting.retain(|_, batch| *batch > durable_everywhere);
        }
        // A clean stop: each lane flushes what it wrote (what it had not written yet is replayed after a restart).
        drop(lanes);
        for task in tasks {
            if task.await.is_err() {
                tracing::error!("a store lane panicked; its batches will be replayed");
            }
        }
        self.commit_durable(&mut consumer, &durable, &mut pending).await;
        tracing::info!("sink stopped");
        Ok(())
    }

    /// Dead-letters what cannot be read and returns the rest. None if shutdown came first.
    async fn decode_and_dead_letter(&self, batch: &[Message], shutdown: &CancellationToken) -> Option<Changes> {
        PipelineStats::add(&self.stats.consumed, batch.len());
        self.stats.batch_messages.observe(batch.len() as f64);
        let (changes, dead) = decode(batch, &self.config.topics.dlq);
        if !dead.is_empty() {
            retry::until_ok("produce dead letters", shutdown, || self.dlq.send_all(&dead)).await?;
            PipelineStats::add(&self.stats.dead_lettered, dead.len());
        }
        Some(changes)
    }

    /// Turns the comments that must not come back into deletions: those `deleting` (an earlier batch not yet
    /// durable deletes them) and those the ledger remembers. None if shutdown came first.
    async fn forget_deleted(
        &self,
        changes: Changes,
        deleting: &HashMap<CommentId, u64>,
        shutdown: &CancellationToken,
    ) -> Option<Changes> {
        if changes.upserts.is_empty() {
            return Some(changes);
        }
        let upserts = &changes.upserts;
        let remembered = retry::until_ok("read the deletion ledger", shutdown, || async {
            self.ledger.forgotten(upserts).await.map_err(|source| IngestError::Store { store: "ledger", source })
        })
        .await?;
        let Changes { upserts, mut deletions } = changes;
        let mut kept = Vec::with_capacity(upserts.len());
        for (comment, remembered) in upserts.into_iter().zip(remembered) {
            let id = comment.comment.key().to_owned();
            if remembered || deleting.contains_key(&id) {
                tracing::debug!(comment = %comment.comment.key().joined(), "deleted before: deleted again, not stored");
                PipelineStats::add(&self.stats.forgotten, 1);
                deletions.push(id);
            } else {
                kept.push(comment);
            }
        }
        Some(Changes { upserts: kept, deletions })
    }

    /// Commits the offsets of the batches every store has flushed; returns the number of the last batch durable
    /// everywhere.
    async fn commit_durable(
        &self,
        consumer: &mut impl Consumer,
        durable: &[watch::Receiver<u64>],
        pending: &mut VecDeque<Pending>,
    ) -> u64 {
        let everywhere = durable.iter().map(|flushed| *flushed.borrow()).min().unwrap_or(u64::MAX);
        let mut positions = Vec::new();
        while pending.front().is_some_and(|p| p.number <= everywhere) {
            if let Some(done) = pending.pop_front() {
                PipelineStats::add(&self.stats.stored, done.upserts);
                PipelineStats::add(&self.stats.deleted, done.deletions);
                positions.extend(done.positions);
            }
        }
        if positions.is_empty() {
            return everywhere;
        }
        match consumer.commit(&positions).await {
            Ok(()) => tracing::debug!(messages = positions.len(), "durable; offsets committed"),
            Err(e) => tracing::warn!(error = %e, "offset commit failed; the batches will be replayed idempotently"),
        }
        everywhere
    }
}

/// One store's lane: writes each batch (retried until it succeeds; each write's time into `writes`), flushes when the store says it is due
/// and what it wrote is not flushed yet, and publishes the number of the last batch flushed. Stops when the
/// sink closes the channel or at shutdown, flushing what it wrote.
async fn lane(
    store: Arc<dyn CommentStore>,
    mut batches: mpsc::Receiver<Numbered>,
    flushed: watch::Sender<u64>,
    writes: Arc<Histogram>,
    shutdown: CancellationToken,
) {
    let name = store.name();
    let (mut written, mut durable) = (0u64, 0u64);
    loop {
        let next = if written > durable {
            tokio::time::timeout(FLUSH_CHECK, batches.recv()).await
        } else {
            Ok(batches.recv().await)
        };
        match next {
            Ok(Some((number, changes))) => {
                if shutdown.is_cancelled() {
                    break;
                }
                let started = Instant::now();
                if !changes.deletions.is_empty() {
                    let delete = || async {
                        store
                            .delete(&changes.deletions)
                            .await
                            .map_err(|source| IngestError::Store { store: name, source })
                    };
                    if retry::until_ok(name, &shutdown, delete).await.is_none() {
                        break;
                    }
                }
                if !changes.upserts.is_empty() {
                    let upsert = || async {
                        store
                            .upsert(&changes.upserts)
                            .await
                            .map_err(|source| IngestError::Store { store: name, source })
                    };
                    if retry::until_ok(name, &shutdown, upsert).await.is_none() {
                        break;
                    }
                }
                writes.observe_duration(started.elapsed());
                written = number;
            }
            Ok(None) => break,
            Err(_) => {} // time to see whether a flush is due
        }
        if written > durable && store.flush_due() {
            let flush = || async { store.flush().await.map_err(|source| IngestError::Store { store: name, source }) };
            if retry::until_ok("flush", &shutdown, flush).await.is_none() {
                break;
            }
            durable = written;
            flushed.send_replace(durable);
        }
    }
    if written > durable {
        match store.flush().await {
            Ok(()) => {
                flushed.send_replace(written);
            }
            Err(e) => {
                tracing::warn!(store = name, error = %e, "final flush failed; the unflushed batches will be replayed")
            }
        }
    }
}

/// Parses a batch, keeping the last change to each comment (a batch may hold a comment twice after a
/// redelivery or an update, or a comment and its deletion), and dead-letters what cannot be read.
fn decode(batch: &[Message], dlq_topic: &str) -> (Changes, Vec<Record>) {
    let mut latest: HashMap<CommentId, Option<EnrichedComment>> = HashMap::new();
    let mut order: Vec<CommentId> = Vec::with_capacity(batch.len());
    let mut dead = Vec::new();
    let mut change = |id: CommentId, comment: Option<EnrichedComment>| {
        if latest.insert(id.clone(), comment).is_none() {
            order.push(id);
        }
    };
    for message in batch {
        if message.payload.is_empty() {
            match message.key.as_deref().map(CommentId::parse_key) {
                Some(Ok(id)) => change(id, None),
                Some(Err(why)) => dead.push(Record::dead_letter(dlq_topic, message, &format!("tombstone: {why}"))),
                None => dead.push(Record::dead_letter(dlq_topic, message, "empty message without a key `source/id`")),
            }
            continue;
        }
        match serde_json::from_slice::<EnrichedComment>(&message.payload) {
            Ok(enriched) if (OLDEST_READABLE_ENRICHED_SCHEMA..=ENRICHED_SCHEMA_VERSION).contains(&enriched.schema) => {
                if let Err(reason) = enriched.check() {
                    dead.push(Record::dead_letter(
                        dlq_topic,
                        message,
                        &format!("inconsistent enriched comment: {reason}"),
                    ));
                    continue;
                }
                change(enriched.comment.key().to_owned(), Some(enriched));
            }
            Ok(enriched) => dead.push(Record::dead_letter(
                dlq_topic,
                message,
                &format!(
                    "enriched schema version {} is not one this sink reads ({OLDEST_READABLE_ENRICHED_SCHEMA} to \
                     {ENRICHED_SCHEMA_VERSION})",
                    enriched.schema
                ),
            )),
            Err(e) => dead.push(Record::dead_letter(dlq_topic, message, &format!("unreadable enriched comment: {e}"))),
        }
    }
    let mut changes = Changes::default();
    for id in order {
        match latest.remove(&id).flatten() {
            Some(comment) => changes.upserts.push(comment),
            None => changes.deletions.push(id),
        }
    }
    (changes, dead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::HEADER_REASON;

    fn message(offset: i64, id: &str, text: &str, entity: serde_json::Value) -> Message {
        let payload = serde_json::json!({
            "schema": ENRICHED_SCHEMA_VERSION,
            "comment": {
                "source": "s", "id": id, "author": null, "text": text, "created_at": "2026-03-01T00:00:00Z",
                "lang": null, "url": null, "tags": [], "metadata": {}
            },
            "enrichment": { "model": "m", "embedding": [1.0], "entities": [entity] }
        });
        Message {
            topic: "comments.enriched".into(),
            partition: 0,
            offset,
            key: None,
            payload: payload.to_string().into_bytes(),
            headers: Vec::new(),
        }
    }

    fn tombstone(offset: i64, key: Option<&str>) -> Message {
        Message {
            topic: "comments.enriched".into(),
            partition: 0,
            offset,
            key: key.map(|k| k.as_bytes().to_vec()),
            payload: Vec::new(),
            headers: Vec::new(),
        }
    }

    #[test]
    fn a_tombstone_deletes_and_the_last_change_to_a_comment_wins() {
        let google = serde_json::json!({"label": "ORG", "text": "Google", "start": 4, "end": 10, "score": 0.9});
        let batch = [
            message(0, "1", "I ❤ Google", google.clone()),
            tombstone(1, Some("s/1")),
            tombstone(2, Some("s/2")),
            message(3, "2", "I ❤ Google", google.clone()),
            tombstone(4, Some("s/3")),
            tombstone(5, Some("Not A Source/4")),
            tombstone(6, None),
        ];
        let (changes, dead) = decode(&batch, "dlq");
        let deleted: Vec<&str> = changes.deletions.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(deleted, ["1", "3"], "written then deleted: deleted; a deletion alone: deleted");
        let written: Vec<&str> = changes.upserts.iter().map(|e| e.comment.id.as_str()).collect();
        assert_eq!(written, ["2"], "deleted then written again in the same batch: the write is the last change");
        let reasons: Vec<String> = dead
            .iter()
            .filter_map(|r| r.headers.iter().find(|(k, _)| *k == HEADER_REASON))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].starts_with("tombstone: key \"Not A Source/4\": source"), "{reasons:?}");
        assert!(reasons[1].contains("without a key"), "{reasons:?}");
    }

    #[test]
    fn inconsistent_entities_are_dead_lettered_and_the_last_version_wins() {
        let google = |start, end| serde_json::json!({"label": "ORG", "text": "Google", "start": start, "end": end, "score": 0.9});
        let batch = [
            message(0, "1", "I ❤ Google", google(4, 10)),
            message(1, "2", "I ❤ Google", google(5, 11)),
            message(2, "1", "I ❤ Google!", google(4, 10)),
        ];
        let (changes, dead) = decode(&batch, "dlq");
        let comments = changes.upserts;
        assert_eq!(comments.len(), 1);
        assert_eq!(comments[0].comment.text, "I ❤ Google!", "the later version of comment 1");
        assert_eq!(dead.len(), 1, "comment 2's span is off by one and would never store");
        let reason = dead[0]
            .headers
            .iter()
            .find(|(k, _)| *k == HEADER_REASON)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        assert!(reason.unwrap_or_default().contains("entity 0"), "the reason names the entity");
    }
}
