use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the `comments.enriched` wire format written by workers and read by sinks.
pub const ENRICHED_SCHEMA_VERSION: u32 = 1;

/// A comment after validation: every field is known good, and `author` holds a pseudonym, never the
/// producer's author id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub source: String,
    pub id: String,
    /// Keyed hash of the producer's author id (see `murmur_ingest::Pseudonymizer`); `None` when the
    /// producer sent no author.
    pub author: Option<String>,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub lang: Option<String>,
    pub url: Option<String>,
    pub tags: Vec<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Comment {
    pub fn key(&self) -> CommentKey<'_> {
        CommentKey { source: &self.source, id: &self.id }
    }
}

/// The identity of a comment: the producer's id is unique per source. Every store is keyed by it, which
/// makes redelivery (at-least-once) idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommentKey<'a> {
    pub source: &'a str,
    pub id: &'a str,
}

impl CommentKey<'_> {
    /// One string for stores that need a single-field key. Sources are slugs (no `/`), so the first `/`
    /// separates source from id unambiguously.
    pub fn joined(&self) -> String {
        format!("{}/{}", self.source, self.id)
    }
}

/// What the models add to a comment, all from one encoder pass. A task whose head is not loaded is absent,
/// never guessed; named entities are still to come.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrichment {
    /// Identifier of the encoder that produced the embedding, e.g. `all-MiniLM-L6-v2`.
    pub model: String,
    /// L2-normalised sentence embedding.
    pub embedding: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<Sentiment>,
}

/// A sentiment prediction: the most probable class and the probability of each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub label: SentimentLabel,
    pub negative: f32,
    pub neutral: f32,
    pub positive: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    Negative,
    Neutral,
    Positive,
}

impl SentimentLabel {
    pub const ALL: [SentimentLabel; 3] = [Self::Negative, Self::Neutral, Self::Positive];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Negative => "negative",
            Self::Neutral => "neutral",
            Self::Positive => "positive",
        }
    }
}

/// The message on `comments.enriched`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrichedComment {
    pub schema: u32,
    pub comment: Comment,
    pub enrichment: Enrichment,
}

impl EnrichedComment {
    pub fn new(comment: Comment, enrichment: Enrichment) -> Self {
        Self { schema: ENRICHED_SCHEMA_VERSION, comment, enrichment }
    }
}
