//! The types every murmur stage speaks, in data-flow order: a [`Comment`] as validated on entry, the
//! [`Enrichment`] a worker adds, the [`EnrichedComment`] that travels to the stores, and the two seams that
//! have more than one implementation: [`Enricher`] (model runtime, served by one [`ModelQueue`]) and
//! [`CommentStore`] (durable stores).

pub mod aspects;
pub mod brands;
mod comment;
pub mod duplicates;
pub mod explain;
pub mod hash;
pub mod html;
mod model_queue;
pub mod packed;
mod seams;
#[cfg(feature = "testing")]
pub mod testing;
pub mod themes;
pub mod timestamp;

pub use aspects::{aspect_name, Aspect};
pub use brands::{brand_key, Brand, BrandHits, BrandMatcher};
pub use comment::{
    check_comment_id, check_language_key, check_source, counted_entities, language_key, normalize_entity_name, Comment,
    CommentId, CommentKey, DetectedLanguage, Emotion, EmotionLabel, EnrichedComment, Enrichment, Entity, EntityLabel,
    MultilingualEmbedding, Sentiment, SentimentLabel, Skipped, ENRICHED_SCHEMA_VERSION,
    OLDEST_READABLE_ENRICHED_SCHEMA, UNDETERMINED_LANGUAGE,
};
pub use explain::{Explanation, LabelExplanation, WordWeight};
pub use model_queue::{ModelQueue, ModelQueueError};
pub use seams::{one_per_text, BoxError, CommentStore, DeletionLedger, Enricher, Expired, Expiry, QueryVectors};
