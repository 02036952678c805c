//! The enrichment worker: `comments` → validate → enrich → `comments.enriched`, invalid messages →
//! `comments.dlq`. Offsets are committed only after every output record is acknowledged, so a crash at any
//! point replays the batch (the sink's upserts make the replay harmless).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use murmur_core::{Comment, EnrichedComment, Enricher, Enrichment};
use tokio_util::sync::CancellationToken;

use crate::queue::{next_batch, Consumer, Message, Producer, Record};
use crate::schema::Validator;
use crate::{retry, IngestError, PipelineStats, Redaction, Topics};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub topics: Topics,
    /// Messages per batch: one enrichment call, one produce round, one commit.
    pub max_batch: usize,
    /// How long to wait for more messages once a batch has started.
    pub linger: Duration,
    /// PII removed from the text before it leaves the worker.
    pub redaction: Redaction,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            topics: Topics::default(),
            max_batch: 256,
            linger: Duration::from_millis(50),
            redaction: Redaction::default(),
        }
    }
}

pub struct Worker<E: Enricher> {
    validator: Validator,
    enricher: Arc<Mutex<E>>,
    producer: Arc<dyn Producer>,
    config: WorkerConfig,
    stats: Arc<PipelineStats>,
}

impl<E: Enricher> Worker<E> {
    pub fn new(
        validator: Validator,
        enricher: Arc<Mutex<E>>,
        producer: Arc<dyn Producer>,
        config: WorkerConfig,
        stats: Arc<PipelineStats>,
    ) -> Self {
        Self { validator, enricher, producer, config, stats }
    }

    /// Runs until `shutdown`; a batch in flight is either finished and committed or left uncommitted.
    pub async fn run(&self, mut consumer: impl Consumer, shutdown: CancellationToken) -> Result<(), IngestError> {
        tracing::info!(topic = %self.config.topics.comments, "worker started");
        while let Some(batch) = next_batch(&mut consumer, self.config.max_batch, self.config.linger, &shutdown).await {
            PipelineStats::add(&self.stats.consumed, batch.len());
            let records = self.process(&batch).await?;
            let sent = retry::until_ok("produce enriched batch", &shutdown, || self.producer.send_all(&records)).await;
            if sent.is_none() {
                break;
            }
            if let Err(e) = consumer.commit(&batch).await {
                // Not fatal: the batch is delivered and will be replayed, idempotently, after a restart.
                tracing::warn!(error = %e, "offset commit failed");
            }
            tracing::debug!(messages = batch.len(), "batch enriched and committed");
        }
        tracing::info!("worker stopped");
        Ok(())
    }

    /// Validates and enriches a batch into the records to produce: one per message, to the enriched topic or
    /// the DLQ.
    async fn process(&self, batch: &[Message]) -> Result<Vec<Record>, IngestError> {
        let topics = &self.config.topics;
        let mut records = Vec::with_capacity(batch.len());
        let mut valid: Vec<(Comment, &Message)> = Vec::with_capacity(batch.len());
        for message in batch {
            match self.validator.validate(&message.payload) {
                Ok(comment) => valid.push((comment, message)),
                Err(rejection) => {
                    tracing::debug!(origin = %message.origin(), reason = %rejection, "dead-lettered");
                    records.push(Record::dead_letter(&topics.dlq, message, &rejection.0));
                }
            }
        }
        let texts: Vec<String> = valid.iter().map(|(c, _)| c.text.clone()).collect();
        let enrichments = self.enrich(texts).await?;
        let enriched_count = enrichments.iter().filter(|e| e.is_ok()).count();
        for ((comment, message), enrichment) in valid.into_iter().zip(enrichments) {
            match enrichment {
                Ok(enrichment) => {
                    let key = comment.key().joined().into_bytes();
                    let mut enriched = EnrichedComment::new(comment, enrichment);
                    self.config.redaction.apply(&mut enriched);
                    let payload = serde_json::to_vec(&enriched)?;
                    records.push(Record {
                        topic: topics.enriched.clone(),
                        key: Some(key),
                        payload,
                        headers: Vec::new(),
                    });
                }
                Err(reason) => records.push(Record::dead_letter(&topics.dlq, message, &reason)),
            }
        }
        PipelineStats::add(&self.stats.enriched, enriched_count);
        PipelineStats::add(&self.stats.dead_lettered, records.len() - enriched_count);
        Ok(records)
    }

    /// Enriches on the blocking pool. If the batch fails as a whole, each text is retried alone so one
    /// poisonous text goes to the DLQ instead of stopping the worker.
    async fn enrich(&self, texts: Vec<String>) -> Result<Vec<Result<Enrichment, String>>, IngestError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let enricher = Arc::clone(&self.enricher);
        tokio::task::spawn_blocking(move || {
            let enricher = enricher.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            match enricher.enrich(&refs) {
                Ok(all) if all.len() == texts.len() => all.into_iter().map(Ok).collect(),
                Ok(all) => {
                    tracing::error!(
                        expected = texts.len(),
                        got = all.len(),
                        "enricher returned a wrong count; retrying one by one"
                    );
                    one_by_one(&*enricher, &refs)
                }
                Err(e) => {
                    tracing::warn!(error = %e, texts = texts.len(), "batch enrichment failed; retrying one by one");
                    one_by_one(&*enricher, &refs)
                }
            }
        })
        .await
        .map_err(|_| IngestError::EnrichPanicked)
    }
}

fn one_by_one<E: Enricher>(enricher: &E, texts: &[&str]) -> Vec<Result<Enrichment, String>> {
    texts
        .iter()
        .map(|text| match enricher.enrich(&[text]) {
            Ok(mut one) if one.len() == 1 => Ok(one.remove(0)),
            Ok(_) => Err("enrichment failed: model returned no result".to_owned()),
            Err(e) => Err(format!("enrichment failed: {e}")),
        })
        .collect()
}
