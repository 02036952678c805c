use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{CommentId, EnrichedComment, Enrichment};

/// Errors crossing a seam keep their source chain but not their concrete type: the caller only decides
/// whether to retry.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A model runtime: turns texts into enrichments, one result per text, in order. Implementations are
/// CPU-bound and blocking, and need not be `Sync` (libtorch tensors are not): a [`crate::ModelQueue`]'s
/// thread owns one and serves every caller.
pub trait Enricher: Send + 'static {
    /// Identifier of the model, stored beside each result.
    fn model_id(&self) -> &str;
    fn enrich(&self, texts: &[&str]) -> Result<Vec<Enrichment>, BoxError>;

    /// The embeddings alone (what a semantic search query needs): the same vectors `enrich` stores, without
    /// running the heads.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BoxError> {
        Ok(self.enrich(texts)?.into_iter().map(|e| e.embedding).collect())
    }

    /// The multilingual encoder this model runs beside its own, if any (see [`crate::Enrichment::multilingual`]).
    fn multilingual_model(&self) -> Option<&str> {
        None
    }

    /// Search queries' vectors: by the model's encoder, and (`multilingual`: when the index holds comments it
    /// embedded) by its multilingual encoder where it runs one.
    fn embed_queries(&self, texts: &[&str], _multilingual: bool) -> Result<Vec<QueryVectors>, BoxError> {
        Ok(self.embed(texts)?.into_iter().map(|encoder| QueryVectors { encoder, multilingual: None }).collect())
    }

    /// The sentence-level reading alone (the embedding, sentiment and emotion, without entities or aspects) of
    /// `texts`, variants of the first (an explanation's readings with words left out): whether the heads read
    /// them is decided once, on the first (its language), so a variant never reads as another language. By
    /// default the whole enrichment.
    fn classify(&self, texts: &[&str]) -> Result<Vec<Enrichment>, BoxError> {
        self.enrich(texts)
    }
}

/// A search query's vectors, one per encoder the model runs.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryVectors {
    /// By the model's (English) encoder: compared with the comments it embedded.
    pub encoder: Vec<f32>,
    /// By the multilingual encoder, where the model runs one: compared with the comments it embedded.
    pub multilingual: Option<Vec<f32>>,
}

/// A model call's results, checked to be one per text: the rule every caller of an [`Enricher`] relies on
/// (results are matched to texts by position).
pub fn one_per_text<T>(texts: usize, results: Vec<T>) -> Result<Vec<T>, BoxError> {
    if results.len() == texts {
        Ok(results)
    } else {
        Err(format!("the model returned {} results for {texts} texts", results.len()).into())
    }
}

/// A durable store of enriched comments (Postgres, a search index). What `upsert` and `delete` wrote is
/// durable once `flush` returned (for most stores, as soon as they return: their `flush` does nothing), and
/// writing the same change twice leaves the same state: that is what lets the sink commit Kafka offsets after
/// every store flushed, and replay anything not committed.
#[async_trait]
pub trait CommentStore: Send + Sync {
    fn name(&self) -> &'static str;
    async fn upsert(&self, batch: &[EnrichedComment]) -> Result<(), BoxError>;

    /// Removes these comments and everything derived from them that the store holds; comments it does not hold
    /// are no error. The sink never passes one comment to both `upsert` and `delete` in one batch.
    async fn delete(&self, comments: &[CommentId]) -> Result<(), BoxError>;

    /// One step of retention: removes comments (and rollups) past `expiry`, at most `expiry.batch` rows where
    /// the store deletes row by row; says how many it removed (a store that removes them all at once says 0).
    async fn expire(&self, expiry: &Expiry) -> Result<Expired, BoxError>;

    /// Whether this store is ready to be flushed: a store that commits on a cadence says when the cadence is
    /// up; a store durable on `upsert` always is.
    fn flush_due(&self) -> bool {
        true
    }

    /// Makes everything upserted so far durable.
    async fn flush(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// What retention removes (docs/privacy.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expiry {
    /// Comments created before this go (none when `None`).
    pub comments_before: Option<DateTime<Utc>>,
    /// Whether the rollups keep the counts of the comments that go (aggregates hold no personal data).
    pub keep_rollups: bool,
    /// Minute-grain rollup rows of buckets before this go (none when `None`).
    pub minute_rollups_before: Option<DateTime<Utc>>,
    /// Rows a store deletes per step at most.
    pub batch: usize,
}

/// What one step of retention removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    pub comments: u64,
    pub minute_rollups: u64,
}

/// The memory of what was deleted, which keeps a replayed or late message from bringing a deleted comment back
/// (Postgres: the `deletions` and `erasures` tables, docs/privacy.md).
#[async_trait]
pub trait DeletionLedger: Send + Sync {
    /// For each comment, in order, whether it must not be stored: its key was deleted, or its author is under
    /// an erasure that still erases what arrives.
    async fn forgotten(&self, comments: &[EnrichedComment]) -> Result<Vec<bool>, BoxError>;
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_must_be_one_per_text() {
        assert_eq!(super::one_per_text(2, vec!['a', 'b']).ok(), Some(vec!['a', 'b']));
        let error = super::one_per_text(3, vec!['a']).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("the model returned 1 results for 3 texts"));
    }
}
