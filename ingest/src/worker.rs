//! The enrichment worker: `comments` → validate → enrich → `comments.enriched`, invalid messages →
//! `comments.dlq`. Offsets are committed only after every output record is acknowledged, so a crash at any
//! point replays the batch (the sink's upserts make the replay harmless).
//!
//! Batches are pipelined: while the broker acknowledges one, the next is already being enriched (up to
//! [`WorkerConfig::in_flight`] batches unacknowledged). Offsets are still committed in order, and a failed
//! send is repeated together with every batch sent after it, so the enriched topic never ends with an older
//! version of a comment after a newer one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use murmur_core::{Comment, CommentId, EnrichedComment, Enrichment, ModelQueue, ModelQueueError};
use tokio_util::sync::CancellationToken;

use crate::queue::{poll_or_stop, Consumer, Message, Producer, Record};
use crate::schema::Validator;
use crate::{retry, IngestError, PipelineStats, Redaction, Topics};

/// How long a poll waits for a first message when nothing awaits an acknowledgement.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How long it waits while sent batches await theirs.
const ACK_CHECK: Duration = Duration::from_millis(10);
/// How long a stopping worker waits for the broker to acknowledge what it already sent.
const STOP_WAIT_FOR_ACKS: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub topics: Topics,
    /// Messages per batch: one enrichment call, one produce round, one commit.
    pub max_batch: usize,
    /// How long to wait for more messages once a batch has started.
    pub linger: Duration,
    /// PII removed from the text before it leaves the worker.
    pub redaction: Redaction,
    /// Batches sent and not yet acknowledged, at most (1: each batch waits for its acknowledgement).
    pub in_flight: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            topics: Topics::default(),
            max_batch: 256,
            linger: Duration::from_millis(50),
            redaction: Redaction::default(),
            in_flight: 4,
        }
    }
}

pub struct Worker {
    validator: Validator,
    model: ModelQueue,
    producer: Arc<dyn Producer>,
    config: WorkerConfig,
    stats: Arc<PipelineStats>,
}

impl Worker {
    /// A worker enriching through `model` (waiting for room in its queue: back-pressure).
    pub fn new(
        validator: Validator,
        model: ModelQueue,
        producer: Arc<dyn Producer>,
        config: WorkerConfig,
        stats: Arc<PipelineStats>,
    ) -> Self {
        Self { validator, model, producer, config, stats }
    }

    /// Runs until `shutdown`; a batch in flight is either finished and committed or left uncommitted.
    pub async fn run(&self, mut consumer: impl Consumer, shutdown: CancellationToken) -> Result<(), IngestError> {
        tracing::info!(topic = %self.config.topics.comments, in_flight = self.config.in_flight, "worker started");
        let mut sent: VecDeque<Delivery> = VecDeque::new();
        let keep = self.config.in_flight.max(1) - 1;
        loop {
            // While batches await their acknowledgement, polls return often enough to commit them promptly.
            let idle = if sent.is_empty() { IDLE_POLL } else { ACK_CHECK };
            let Some(batch) =
                poll_or_stop(&mut consumer, self.config.max_batch, idle, self.config.linger, &shutdown).await
            else {
                break;
            };
            if !batch.is_empty() {
                PipelineStats::add(&self.stats.consumed, batch.len());
                self.stats.batch_messages.observe(batch.len() as f64);
                let records = Arc::new(self.process(&batch).await?);
                sent.push_back(Delivery::send(&self.producer, records, batch));
            }
            if !self.settle(&mut consumer, &mut sent, keep, &shutdown).await {
                break;
            }
        }
        // A clean stop commits what the broker acknowledged, waiting a little for acknowledgements on their way;
        // what stays unacknowledged is replayed after a restart.
        let waited = Instant::now();
        while !sent.iter().all(|d| d.ack.is_finished()) && waited.elapsed() < STOP_WAIT_FOR_ACKS {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if sent.iter().all(|d| d.ack.is_finished()) {
            self.settle(&mut consumer, &mut sent, 0, &shutdown).await;
        }
        tracing::info!("worker stopped");
        Ok(())
    }

    /// Commits the acknowledged batches at the front of `sent`, waiting for the oldest while more than `keep`
    /// are unacknowledged. A failed batch is sent again with every batch after it, in order, before their
    /// offsets are committed. False if shutdown came first (nothing unacknowledged is committed).
    async fn settle(
        &self,
        consumer: &mut impl Consumer,
        sent: &mut VecDeque<Delivery>,
        keep: usize,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut acknowledged: Vec<Message> = Vec::new();
        loop {
            let waiting = sent.len();
            let Some(front) = sent.front_mut() else { break };
            if waiting <= keep && !front.ack.is_finished() {
                break;
            }
            let outcome = match (&mut front.ack).await {
                Ok(outcome) => outcome,
                Err(_) => Err(IngestError::SendPanicked),
            };
            match outcome {
                Ok(()) => {
                    if let Some(delivery) = sent.pop_front() {
                        acknowledged.extend(delivery.positions);
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        batches = sent.len(),
                        "produce failed; sending the batch and those after it again, in order"
                    );
                    self.commit(consumer, &acknowledged).await;
                    acknowledged.clear();
                    let failed = sent.pop_front();
                    for later in sent.iter_mut() {
                        let _ = (&mut later.ack).await;
                    }
                    for delivery in failed.into_iter().chain(sent.drain(..)) {
                        let records = &delivery.records;
                        let resent =
                            retry::until_ok("produce enriched batch", shutdown, || self.producer.send_all(records))
                                .await;
                        if resent.is_none() {
                            return false;
                        }
                        self.commit(consumer, &delivery.positions).await;
                    }
                }
            }
        }
        self.commit(consumer, &acknowledged).await;
        true
    }

    async fn commit(&self, consumer: &mut impl Consumer, acknowledged: &[Message]) {
        if acknowledged.is_empty() {
            return;
        }
        match consumer.commit(acknowledged).await {
            Ok(()) => tracing::debug!(messages = acknowledged.len(), "batches enriched and committed"),
            // Not fatal: the batches are delivered and will be replayed, idempotently, after a restart.
            Err(e) => tracing::warn!(error = %e, "offset commit failed"),
        }
    }

    /// Validates and enriches a batch into the records to produce, one per message in the order read (so a
    /// comment and its deletion keep their order): an enriched comment or a tombstone to the enriched topic, or
    /// a dead letter.
    async fn process(&self, batch: &[Message]) -> Result<Vec<Record>, IngestError> {
        let topics = &self.config.topics;
        // Each message's record, once known; the valid comments' come after enrichment.
        let mut records: Vec<Option<Record>> = Vec::with_capacity(batch.len());
        let mut valid: Vec<(Comment, usize)> = Vec::with_capacity(batch.len());
        let mut tombstones = 0;
        for (slot, message) in batch.iter().enumerate() {
            if message.payload.is_empty() {
                match self.tombstone(message) {
                    Ok(passed_on) => {
                        tombstones += 1;
                        records.push(Some(passed_on));
                    }
                    Err(dead) => records.push(Some(dead)),
                }
                continue;
            }
            match self.validator.validate(&message.payload) {
                Ok(comment) => {
                    valid.push((comment, slot));
                    records.push(None);
                }
                Err(rejection) => {
                    tracing::debug!(origin = %message.origin(), reason = %rejection, "dead-lettered");
                    records.push(Some(Record::dead_letter(&topics.dlq, message, &rejection.0)));
                }
            }
        }
        let texts: Vec<&str> = valid.iter().map(|(c, _)| c.text.as_str()).collect();
        let started = Instant::now();
        let enrichments = self.enrich(&texts).await?;
        self.stats.enrich_seconds.observe_duration(started.elapsed());
        let enriched_count = enrichments.iter().filter(|e| e.is_ok()).count();
        for ((comment, slot), enrichment) in valid.into_iter().zip(enrichments) {
            records[slot] = Some(match enrichment {
                Ok(enrichment) => {
                    let key = comment.key().joined().into_bytes();
                    let mut enriched = EnrichedComment::new(comment, enrichment);
                    self.config.redaction.apply(&mut enriched);
                    let payload = serde_json::to_vec(&enriched)?;
                    Record { topic: topics.enriched.clone(), key: Some(key), payload, headers: Vec::new() }
                }
                Err(reason) => Record::dead_letter(&topics.dlq, &batch[slot], &reason),
            });
        }
        let records: Vec<Record> = records.into_iter().flatten().collect();
        PipelineStats::add(&self.stats.enriched, enriched_count);
        PipelineStats::add(&self.stats.deleted, tombstones);
        PipelineStats::add(&self.stats.dead_lettered, records.len() - enriched_count - tombstones);
        Ok(records)
    }

    /// A tombstone read (a message without a value) passed on to the sinks, or its dead letter when its key
    /// names no comment.
    fn tombstone(&self, message: &Message) -> Result<Record, Record> {
        let topics = &self.config.topics;
        let Some(key) = &message.key else {
            return Err(Record::dead_letter(
                &topics.dlq,
                message,
                "empty message without a key: a tombstone needs the key `source/id`",
            ));
        };
        match CommentId::parse_key(key) {
            Ok(comment) => Ok(Record::tombstone(&topics.enriched, &comment)),
            Err(why) => Err(Record::dead_letter(&topics.dlq, message, &format!("tombstone: {why}"))),
        }
    }

    /// Enriches through the model queue. If the batch fails as a whole, each text is tried alone so one
    /// poisonous text goes to the DLQ instead of stopping the worker; a stopped model thread stops it.
    async fn enrich(&self, texts: &[&str]) -> Result<Vec<Result<Enrichment, String>>, IngestError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let owned = |texts: &[&str]| texts.iter().map(|t| (*t).to_owned()).collect::<Vec<String>>();
        match self.model.enrich_waiting(owned(texts)).await {
            Ok(all) => return Ok(all.into_iter().map(Ok).collect()),
            Err(ModelQueueError::Model(e)) => {
                tracing::warn!(error = %e, texts = texts.len(), "batch enrichment failed; retrying one by one");
            }
            Err(stopped) => return Err(IngestError::Enrich(Box::new(stopped))),
        }
        let mut results = Vec::with_capacity(texts.len());
        for text in texts {
            results.push(match self.model.enrich_waiting(owned(&[text])).await {
                Ok(one) => one.into_iter().next().ok_or_else(|| "enrichment failed: no result".to_owned()),
                Err(ModelQueueError::Model(e)) => Err(format!("enrichment failed: {e}")),
                Err(stopped) => return Err(IngestError::Enrich(Box::new(stopped))),
            });
        }
        Ok(results)
    }
}

/// A batch's records on their way to the broker, and where the batch was read.
struct Delivery {
    positions: Vec<Message>,
    records: Arc<Vec<Record>>,
    ack: tokio::task::JoinHandle<Result<(), IngestError>>,
}

impl Delivery {
    /// Sends once; a failure is handled, in order, by [`Worker::settle`].
    fn send(producer: &Arc<dyn Producer>, records: Arc<Vec<Record>>, batch: Vec<Message>) -> Self {
        let producer = Arc::clone(producer);
        let sending = Arc::clone(&records);
        let ack = tokio::spawn(async move { producer.send_all(&sending).await });
        Self { positions: batch.into_iter().map(Message::position).collect(), records, ack }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    use async_trait::async_trait;
    use murmur_core::{BoxError, Enricher};

    use super::*;
    use crate::schema::Limits;
    use crate::Pseudonymizer;

    /// Hands out its batches, then nothing; notes every committed offset.
    struct Scripted {
        batches: VecDeque<Vec<Message>>,
        committed: Arc<Mutex<Vec<i64>>>,
    }

    #[async_trait]
    impl Consumer for Scripted {
        async fn poll_batch(&mut self, _max: usize, idle: Duration, _: Duration) -> Result<Vec<Message>, IngestError> {
            match self.batches.pop_front() {
                Some(batch) => Ok(batch),
                None => {
                    tokio::time::sleep(idle).await;
                    Ok(Vec::new())
                }
            }
        }

        async fn commit(&mut self, processed: &[Message]) -> Result<(), IngestError> {
            self.committed.lock().expect("lock").extend(processed.iter().map(|m| m.offset));
            Ok(())
        }
    }

    /// Acknowledges every send at once, except the first attempt at the batch holding comment `fails`, which
    /// fails after a pause (so the batches sent after it are acknowledged first). Notes the ids delivered.
    struct Flaky {
        fails: &'static str,
        failed: AtomicBool,
        delivered: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Producer for Flaky {
        async fn send_all(&self, records: &[Record]) -> Result<(), IngestError> {
            let ids: Vec<String> = records
                .iter()
                .map(|r| serde_json::from_slice::<EnrichedComment>(&r.payload).expect("enriched").comment.id)
                .collect();
            if ids.iter().any(|id| id == self.fails) && !self.failed.swap(true, Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Err(IngestError::QueueClosed("flaky broker".into()));
            }
            self.delivered.lock().expect("lock").extend(ids);
            Ok(())
        }
    }

    struct Echo;

    impl Enricher for Echo {
        fn model_id(&self) -> &str {
            "echo"
        }

        fn enrich(&self, texts: &[&str]) -> Result<Vec<Enrichment>, BoxError> {
            Ok(texts.iter().map(|_| Enrichment::embedding_only("echo", vec![1.0])).collect())
        }
    }

    fn message(offset: i64) -> Message {
        let payload = serde_json::json!({
            "id": offset.to_string(), "source": "s", "text": format!("comment {offset}"),
            "created_at": "2026-03-01T00:00:00Z", "tags": []
        });
        Message {
            topic: "comments".into(),
            partition: 0,
            offset,
            key: None,
            payload: payload.to_string().into_bytes(),
            headers: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_tombstone_is_passed_on_in_the_order_read_and_a_bad_one_dead_lettered() {
        let worker = Worker::new(
            Validator::new(Pseudonymizer::new(b"key"), Limits::default()),
            ModelQueue::start(Box::new(Echo), 4, 256).expect("model thread"),
            Arc::new(Flaky { fails: "", failed: AtomicBool::new(true), delivered: Mutex::default() }),
            WorkerConfig::default(),
            Arc::new(PipelineStats::default()),
        );
        let tombstone = |offset, key: Option<&[u8]>| Message {
            payload: Vec::new(),
            key: key.map(<[u8]>::to_vec),
            ..message(offset)
        };
        let batch = [message(0), tombstone(1, Some(b"s/0")), tombstone(2, Some(b"nokey")), tombstone(3, None)];
        let records = worker.process(&batch).await.expect("processed");
        let topics = Topics::default();
        let summary: Vec<(&str, Option<&[u8]>, bool)> =
            records.iter().map(|r| (r.topic.as_str(), r.key.as_deref(), r.payload.is_empty())).collect();
        assert_eq!(
            summary,
            [
                (topics.enriched.as_str(), Some(&b"s/0"[..]), false),
                (topics.enriched.as_str(), Some(&b"s/0"[..]), true),
                (topics.dlq.as_str(), Some(&b"nokey"[..]), true),
                (topics.dlq.as_str(), None, true),
            ],
            "the comment, then its deletion, in the order read; tombstones without a comment's key refused"
        );
        assert_eq!(PipelineStats::get(&worker.stats.deleted), 1);
        assert_eq!(PipelineStats::get(&worker.stats.dead_lettered), 2);
    }

    #[tokio::test]
    async fn a_failed_batch_is_sent_again_with_the_later_ones_in_order_before_any_commit() {
        let committed = Arc::new(Mutex::new(Vec::new()));
        let batches = [[0, 1], [2, 3], [4, 5]].iter().map(|b| b.iter().map(|&o| message(o)).collect()).collect();
        let consumer = Scripted { batches, committed: Arc::clone(&committed) };
        let producer = Arc::new(Flaky { fails: "0", failed: AtomicBool::new(false), delivered: Mutex::default() });
        let worker = Worker::new(
            Validator::new(Pseudonymizer::new(b"key"), Limits::default()),
            ModelQueue::start(Box::new(Echo), 4, 256).expect("model thread"),
            Arc::clone(&producer) as Arc<dyn Producer>,
            WorkerConfig { in_flight: 4, ..WorkerConfig::default() },
            Arc::new(PipelineStats::default()),
        );
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let running = tokio::spawn(async move { worker.run(consumer, stop).await });
        let deadline = Instant::now() + Duration::from_secs(10);
        while committed.lock().expect("lock").len() < 6 {
            assert!(Instant::now() < deadline, "committed only {:?}", committed.lock().expect("lock"));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        shutdown.cancel();
        running.await.expect("worker task").expect("worker");

        let delivered = producer.delivered.lock().expect("lock").clone();
        assert_eq!(
            delivered,
            ["2", "3", "4", "5", "0", "1", "2", "3", "4", "5"],
            "batches 1 and 2 were acknowledged before 0 failed; all three go again, in order, so the last copy of \
             each comment is in the order read"
        );
        assert_eq!(
            *committed.lock().expect("lock"),
            [0, 1, 2, 3, 4, 5],
            "each offset once, in order, after its resend"
        );
    }
}
