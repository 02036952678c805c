//! The queue seam on Kafka (rdkafka). Consumers never auto-commit: the pipeline commits offsets itself once
//! what it read is durable downstream. Producers wait for the broker's acknowledgement of every record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};

use crate::queue::{Consumer, Message, Producer, Record};
use crate::IngestError;

/// A consumer group's position in a topic, summed over partitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupProgress {
    /// Messages the group has committed (since the low watermark).
    pub committed: i64,
    /// Messages after its committed offsets.
    pub lag: i64,
}

/// Partitions of the topics murmur creates when they do not exist (the unit of parallelism per group).
pub const DEFAULT_PARTITIONS: i32 = 4;

/// The bootstrap servers of a broker on this machine.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// Where the brokers are and any extra librdkafka settings (`key=value`), e.g. security or timeouts.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub brokers: String,
    pub options: Vec<(String, String)>,
}

impl KafkaConfig {
    /// The brokers, then murmur's `defaults`, then the user's options (which may override a default), then
    /// the `required` settings the delivery guarantee rests on (which nothing overrides).
    fn client(&self, defaults: &[(&str, &str)], required: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.options {
            config.set(key, value);
        }
        for (key, value) in required {
            config.set(*key, *value);
        }
        config
    }

    /// A consumer in `group` subscribed to `topic`, starting from the earliest offset when the group has none.
    /// Offsets are never committed automatically: the pipeline commits what is durable.
    pub fn consumer(&self, group: &str, topic: &str) -> Result<KafkaConsumer, IngestError> {
        // A bounded prefetch (librdkafka's default is 64 MB): when a store stalls, fetching stops there and the
        // lag grows in the broker, not in memory.
        let defaults = [
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "6000"),
            ("enable.partition.eof", "false"),
            ("queued.max.messages.kbytes", "32768"),
        ];
        let required = [("group.id", group), ("enable.auto.commit", "false")];
        let consumer: StreamConsumer<GroupLog> = self.client(&defaults, &required).create_with_context(GroupLog)?;
        consumer.subscribe(&[topic])?;
        Ok(KafkaConsumer { consumer: Arc::new(consumer) })
    }

    /// How far `group` has come through `topic`, over all partitions: messages committed, and messages not
    /// committed yet (a partition the group never committed counts from its low watermark). Blocking.
    pub fn progress(&self, group: &str, topic: &str, timeout: Duration) -> Result<GroupProgress, IngestError> {
        let consumer: BaseConsumer =
            self.client(&[], &[("group.id", group), ("enable.auto.commit", "false")]).create()?;
        let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
        let mut partitions = TopicPartitionList::new();
        let mut ends = HashMap::new();
        for t in metadata.topics().iter().filter(|t| t.name() == topic) {
            for p in t.partitions() {
                partitions.add_partition(topic, p.id());
                ends.insert(p.id(), consumer.fetch_watermarks(topic, p.id(), timeout)?);
            }
        }
        let committed = consumer.committed_offsets(partitions, timeout)?;
        let mut progress = GroupProgress::default();
        for e in committed.elements() {
            let (low, high) = ends.get(&e.partition()).copied().unwrap_or((0, 0));
            let at = match e.offset() {
                Offset::Offset(at) => at,
                _ => low,
            };
            progress.committed += (at - low).max(0);
            progress.lag += (high - at).max(0);
        }
        Ok(progress)
    }

    pub fn producer(&self) -> Result<KafkaProducer, IngestError> {
        let defaults = [("linger.ms", "5"), ("message.timeout.ms", "60000")];
        Ok(KafkaProducer { producer: self.client(&defaults, &[]).create()? })
    }

    /// Creates the pipeline's three topics where they do not exist yet.
    pub async fn ensure_pipeline_topics(&self, topics: &crate::Topics, partitions: i32) -> Result<(), IngestError> {
        self.ensure_topics(&[&topics.comments, &topics.enriched, &topics.dlq], partitions).await
    }

    /// Creates the topics that do not exist yet; existing ones are left as they are.
    pub async fn ensure_topics(&self, topics: &[&str], partitions: i32) -> Result<(), IngestError> {
        let admin: AdminClient<DefaultClientContext> = self.client(&[], &[]).create()?;
        let new: Vec<NewTopic> =
            topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
        let options = AdminOptions::new().operation_timeout(Some(Timeout::After(Duration::from_secs(10))));
        for result in admin.create_topics(&new, &options).await? {
            match result {
                Ok(topic) => tracing::info!(%topic, partitions, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(IngestError::Kafka(KafkaError::AdminOp(code))).inspect_err(|_| {
                        tracing::error!(%topic, ?code, "could not create topic");
                    })
                }
            }
        }
        Ok(())
    }

    /// Deletes topics and what they hold (a benchmark's, once it is done).
    pub async fn delete_topics(&self, topics: &[&str]) -> Result<(), IngestError> {
        let admin: AdminClient<DefaultClientContext> = self.client(&[], &[]).create()?;
        let options = AdminOptions::new().operation_timeout(Some(Timeout::After(Duration::from_secs(10))));
        for result in admin.delete_topics(topics, &options).await? {
            if let Err((topic, code)) = result {
                tracing::warn!(%topic, ?code, "could not delete topic");
                return Err(IngestError::Kafka(KafkaError::AdminOp(code)));
            }
        }
        Ok(())
    }
}

pub struct KafkaConsumer {
    consumer: Arc<StreamConsumer<GroupLog>>,
}

/// Logs the partitions a consumer gets and gives up as its group rebalances.
struct GroupLog;

impl ClientContext for GroupLog {}

impl ConsumerContext for GroupLog {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |list: &TopicPartitionList| {
            list.elements().iter().map(|e| format!("{}/{}", e.topic(), e.partition())).collect::<Vec<_>>().join(",")
        };
        match rebalance {
            Rebalance::Assign(list) => tracing::info!(partitions = %partitions(list), "partitions assigned"),
            Rebalance::Revoke(list) => tracing::info!(partitions = %partitions(list), "partitions revoked"),
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
    }
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn poll_batch(&mut self, max: usize, idle: Duration, linger: Duration) -> Result<Vec<Message>, IngestError> {
        let mut batch = Vec::new();
        let first = match tokio::time::timeout(idle, self.consumer.recv()).await {
            Ok(message) => message?,
            Err(_) => return Ok(batch),
        };
        batch.push(owned(&first));
        drop(first);
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(Ok(message)) => batch.push(owned(&message)),
                // Keep what was read; the error comes back on the next poll if it persists.
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "kafka receive failed mid-batch");
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(batch)
    }

    async fn commit(&mut self, processed: &[Message]) -> Result<(), IngestError> {
        let mut next: HashMap<(&str, i32), i64> = HashMap::new();
        for m in processed {
            let entry = next.entry((m.topic.as_str(), m.partition)).or_insert(m.offset + 1);
            *entry = (*entry).max(m.offset + 1);
        }
        if next.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
        }
        let consumer = Arc::clone(&self.consumer);
        // librdkafka's synchronous commit blocks its thread.
        tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync))
            .await
            .map_err(|_| IngestError::Kafka(KafkaError::Canceled))??;
        Ok(())
    }
}

fn owned(message: &rdkafka::message::BorrowedMessage<'_>) -> Message {
    Message {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers: message
            .headers()
            .map(|headers| {
                headers.iter().map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec).unwrap_or_default())).collect()
            })
            .unwrap_or_default(),
    }
}

#[derive(Clone)]
pub struct KafkaProducer {
    producer: FutureProducer,
}

#[async_trait]
impl Producer for KafkaProducer {
    async fn send_all(&self, records: &[Record]) -> Result<(), IngestError> {
        let deliveries = records.iter().map(|record| {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (key, value) in &record.headers {
                headers = headers.insert(Header { key, value: Some(value) });
            }
            let mut future_record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&record.topic).headers(headers);
            // An empty record is a tombstone: Kafka's compaction expects a null value, not zero bytes.
            if !record.payload.is_empty() {
                future_record = future_record.payload(&record.payload);
            }
            if let Some(key) = &record.key {
                future_record = future_record.key(key);
            }
            self.producer.send(future_record, Timeout::Never)
        });
        for (result, record) in futures::future::join_all(deliveries).await.into_iter().zip(records) {
            if let Err((source, _)) = result {
                return Err(IngestError::Delivery { topic: record.topic.clone(), source });
            }
        }
        Ok(())
    }
}
