//! What happens to a comment, in order: [`schema`] validates the producer's JSON and [`Pseudonymizer`]
//! replaces the author; [`worker`] enriches valid comments (then [`Redaction`] removes the PII chosen) and
//! routes invalid ones to the DLQ; [`sink`] writes
//! enriched comments to every durable store and only then commits the offsets. Both run over the [`queue`]
//! seam: Kafka ([`kafka`]) in production, an in-process queue ([`memory`]) for the embedded demo; [`pipeline`]
//! runs both stages in one process (the demo, the benchmarks).

pub mod demo_corpus;
mod error;
pub mod kafka;
pub mod load;
pub mod memory;
pub mod pipeline;
mod pseudonym;
pub mod queue;
mod redact;
pub mod retention;
mod retry;
pub mod schema;
pub mod sink;
mod stats;
pub mod worker;

pub use error::IngestError;
pub use pseudonym::Pseudonymizer;
pub use redact::Redaction;
pub use stats::{Histogram, HistogramSnapshot, PipelineStats};

/// Topic names, the same for Kafka and the in-process queue.
#[derive(Debug, Clone)]
pub struct Topics {
    pub comments: String,
    pub enriched: String,
    pub dlq: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self { comments: "comments".into(), enriched: "comments.enriched".into(), dlq: "comments.dlq".into() }
    }
}
