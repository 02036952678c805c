//! The sink: `comments.enriched` → every store → flush → commit. Offsets are committed only after every
//! store flushed what covers them (Postgres is durable per batch; the search index commits on a cadence, so
//! several batches share one commit), so nothing is lost; stores upsert by (source, id), so a replayed batch
//! duplicates nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use murmur_core::{CommentStore, EnrichedComment, ENRICHED_SCHEMA_VERSION, OLDEST_READABLE_ENRICHED_SCHEMA};
use tokio_util::sync::CancellationToken;

use crate::queue::{Consumer, Message, Producer, Record};
use crate::{retry, IngestError, PipelineStats, Topics};

/// How long a poll waits for a first message when nothing waits for a flush.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How long it waits when written comments wait for a store's flush cadence.
const FLUSH_CHECK: Duration = Duration::from_millis(100);

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
    dlq: Arc<dyn Producer>,
    config: SinkConfig,
    stats: Arc<PipelineStats>,
}

impl Sink {
    pub fn new(
        stores: Vec<Arc<dyn CommentStore>>,
        dlq: Arc<dyn Producer>,
        config: SinkConfig,
        stats: Arc<PipelineStats>,
    ) -> Self {
        Self { stores, dlq, config, stats }
    }

    pub async fn run(&self, mut consumer: impl Consumer, shutdown: CancellationToken) -> Result<(), IngestError> {
        let names: Vec<&str> = self.stores.iter().map(|s| s.name()).collect();
        tracing::info!(topic = %self.config.topics.enriched, stores = ?names, "sink started");
        // Read and written, not yet flushed: their offsets wait for every store's flush.
        let mut unflushed: Vec<Message> = Vec::new();
        loop {
            let idle = if unflushed.is_empty() { IDLE_POLL } else { FLUSH_CHECK };
            let polled = tokio::select! {
                () = shutdown.cancelled() => break,
                polled = consumer.poll_batch(self.config.max_batch, idle, self.config.linger) => polled,
            };
            match polled {
                Ok(batch) if batch.is_empty() => {}
                Ok(batch) => {
                    if !self.write(&batch, &shutdown).await {
                        break;
                    }
                    unflushed.extend(batch.into_iter().map(Message::position));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "poll failed");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
            }
            if !unflushed.is_empty() && self.stores.iter().all(|s| s.flush_due()) {
                let flushed = retry::until_ok("flush", &shutdown, || self.flush_all()).await;
                if flushed.is_none() {
                    break;
                }
                self.commit(&mut consumer, &mut unflushed).await;
            }
        }
        // A clean stop makes what it wrote durable, so a restart replays nothing.
        if !unflushed.is_empty() {
            match self.flush_all().await {
                Ok(()) => self.commit(&mut consumer, &mut unflushed).await,
                Err(e) => tracing::warn!(error = %e, "final flush failed; the unflushed batches will be replayed"),
            }
        }
        tracing::info!("sink stopped");
        Ok(())
    }

    /// Dead-letters what cannot be read and writes the rest to every store. False if shutdown came first.
    async fn write(&self, batch: &[Message], shutdown: &CancellationToken) -> bool {
        let (comments, dead) = decode(batch, &self.config.topics.dlq);
        if !dead.is_empty() {
            let sent = retry::until_ok("produce dead letters", shutdown, || self.dlq.send_all(&dead)).await;
            if sent.is_none() {
                return false;
            }
            PipelineStats::add(&self.stats.dead_lettered, dead.len());
        }
        if !comments.is_empty() && !self.write_all(&comments, shutdown).await {
            return false;
        }
        PipelineStats::add(&self.stats.stored, comments.len());
        tracing::debug!(written = comments.len(), "batch written");
        true
    }

    async fn flush_all(&self) -> Result<(), IngestError> {
        for store in &self.stores {
            store.flush().await.map_err(|source| IngestError::Store { store: store.name(), source })?;
        }
        Ok(())
    }

    async fn commit(&self, consumer: &mut impl Consumer, unflushed: &mut Vec<Message>) {
        match consumer.commit(unflushed).await {
            Ok(()) => tracing::debug!(messages = unflushed.len(), "durable; offsets committed"),
            Err(e) => tracing::warn!(error = %e, "offset commit failed; the batches will be replayed idempotently"),
        }
        unflushed.clear();
    }

    /// Writes to every store concurrently, each retried until it succeeds. False if shutdown came first.
    async fn write_all(&self, comments: &[EnrichedComment], shutdown: &CancellationToken) -> bool {
        let writes = self.stores.iter().map(|store| {
            retry::until_ok(store.name(), shutdown, move || async move {
                store.upsert(comments).await.map_err(|source| IngestError::Store { store: store.name(), source })
            })
        });
        futures::future::join_all(writes).await.iter().all(Option::is_some)
    }
}

/// Parses a batch, keeping the last version of each comment (a batch may hold a comment twice after a
/// redelivery or an update), and dead-letters what cannot be read.
fn decode(batch: &[Message], dlq_topic: &str) -> (Vec<EnrichedComment>, Vec<Record>) {
    let mut latest: HashMap<(String, String), usize> = HashMap::new();
    let mut comments: Vec<EnrichedComment> = Vec::with_capacity(batch.len());
    let mut dead = Vec::new();
    for message in batch {
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
                let key = (enriched.comment.source.clone(), enriched.comment.id.clone());
                match latest.get(&key) {
                    Some(&slot) => comments[slot] = enriched,
                    None => {
                        latest.insert(key, comments.len());
                        comments.push(enriched);
                    }
                }
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
    (comments, dead)
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

    #[test]
    fn inconsistent_entities_are_dead_lettered_and_the_last_version_wins() {
        let google = |start, end| serde_json::json!({"label": "ORG", "text": "Google", "start": start, "end": end, "score": 0.9});
        let batch = [
            message(0, "1", "I ❤ Google", google(4, 10)),
            message(1, "2", "I ❤ Google", google(5, 11)),
            message(2, "1", "I ❤ Google!", google(4, 10)),
        ];
        let (comments, dead) = decode(&batch, "dlq");
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
