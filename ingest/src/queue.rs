//! The queue seam: Kafka in production, an in-process queue for the embedded demo. The pipeline stages are
//! written once against these traits.

use std::time::Duration;

use async_trait::async_trait;
use murmur_core::CommentId;
use tokio_util::sync::CancellationToken;

use crate::IngestError;

/// How long a stage pauses after a failed poll before it polls again.
const PAUSE_AFTER_POLL_ERROR: Duration = Duration::from_millis(500);

/// A consumed message and where it came from.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// Empty for a tombstone (Kafka's null value).
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Message {
    /// The value of header `name`, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// Where the message was read, without its content (what an offset commit needs).
    pub fn position(self) -> Self {
        Self { payload: Vec::new(), key: None, headers: Vec::new(), ..self }
    }

    /// `topic/partition@offset`, for logs and DLQ records.
    pub fn origin(&self) -> String {
        format!("{}/{}@{}", self.topic, self.partition, self.offset)
    }
}

/// A message to produce.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    /// Empty for a tombstone (sent as Kafka's null value).
    pub payload: Vec<u8>,
    pub headers: Vec<(&'static str, Vec<u8>)>,
}

/// DLQ record headers: why the message was refused, and where it was read.
pub const HEADER_REASON: &str = "murmur-reason";
pub const HEADER_ORIGIN: &str = "murmur-origin";
/// Set when the payload was cut to [`MAX_DEAD_LETTER_BYTES`]: the original length in bytes.
pub const HEADER_TRUNCATED_FROM: &str = "murmur-truncated-from";

/// The most of a refused payload a DLQ record carries, so that it fits a broker's default message limit
/// (Kafka's is about 1 MB): a dead letter that cannot be delivered would stop the stage behind it. The whole
/// message stays in its topic at the origin offset.
pub const MAX_DEAD_LETTER_BYTES: usize = 900_000;

impl Record {
    /// A tombstone: the comment `comment` is deleted (key `source/id`, no value, as Kafka's compaction expects).
    pub fn tombstone(topic: &str, comment: &CommentId) -> Self {
        Self {
            topic: topic.to_owned(),
            key: Some(comment.key().joined().into_bytes()),
            payload: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// The original bytes (cut to [`MAX_DEAD_LETTER_BYTES`]), with the reason and origin in headers.
    pub fn dead_letter(dlq_topic: &str, message: &Message, reason: &str) -> Self {
        let mut headers =
            vec![(HEADER_REASON, reason.as_bytes().to_vec()), (HEADER_ORIGIN, message.origin().into_bytes())];
        let mut payload = message.payload.clone();
        if payload.len() > MAX_DEAD_LETTER_BYTES {
            headers.push((HEADER_TRUNCATED_FROM, payload.len().to_string().into_bytes()));
            payload.truncate(MAX_DEAD_LETTER_BYTES);
        }
        Self { topic: dlq_topic.to_owned(), key: message.key.clone(), payload, headers }
    }
}

#[async_trait]
pub trait Consumer: Send {
    /// Waits up to `idle` for a first message, then up to `linger` for more, and returns at most `max`
    /// (none if nothing arrived).
    async fn poll_batch(&mut self, max: usize, idle: Duration, linger: Duration) -> Result<Vec<Message>, IngestError>;

    /// Records that every message in `processed` is durably handled; after a restart consumption resumes
    /// after the highest offset per partition.
    async fn commit(&mut self, processed: &[Message]) -> Result<(), IngestError>;
}

#[async_trait]
pub trait Producer: Send + Sync {
    /// Returns once every record is acknowledged (for Kafka: written to the broker).
    async fn send_all(&self, records: &[Record]) -> Result<(), IngestError>;
}

/// One poll of a stage's loop: what arrived (nothing, too, after a failed poll, which is logged and followed
/// by a pause), or None once `shutdown` is cancelled.
pub async fn poll_or_stop(
    consumer: &mut impl Consumer,
    max: usize,
    idle: Duration,
    linger: Duration,
    shutdown: &CancellationToken,
) -> Option<Vec<Message>> {
    let polled = tokio::select! {
        () = shutdown.cancelled() => return None,
        polled = consumer.poll_batch(max, idle, linger) => polled,
    };
    match polled {
        Ok(batch) => Some(batch),
        Err(e) => {
            tracing::warn!(error = %e, "poll failed");
            tokio::select! {
                () = shutdown.cancelled() => None,
                () = tokio::time::sleep(PAUSE_AFTER_POLL_ERROR) => Some(Vec::new()),
            }
        }
    }
}
