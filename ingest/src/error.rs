#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("kafka delivery to {topic} failed: {source}")]
    Delivery { topic: String, source: rdkafka::error::KafkaError },
    #[error("in-process queue: topic {0} is closed")]
    QueueClosed(String),
    #[error("in-process queue: unknown topic {0}")]
    UnknownTopic(String),
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} line {line}: {reason}")]
    Input { path: String, line: u64, reason: String },
    #[error("encoding enriched comment: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("store {store} failed: {source}")]
    Store { store: &'static str, source: murmur_core::BoxError },
    #[error("enrichment failed: {0}")]
    Enrich(murmur_core::BoxError),
    #[error("the task sending a batch to the broker panicked")]
    SendPanicked,
    #[error("a pipeline stage's task ended abnormally: {0}")]
    Stage(String),
}
