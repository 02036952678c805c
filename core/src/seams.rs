use async_trait::async_trait;

use crate::{EnrichedComment, Enrichment};

/// Errors crossing a seam keep their source chain but not their concrete type: the caller only decides
/// whether to retry.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A model runtime: turns texts into enrichments, one result per text, in order. Implementations are
/// CPU-bound and blocking, and need not be `Sync` (libtorch tensors are not): callers own one per thread,
/// or share it behind a mutex, and run it off the async executor.
pub trait Enricher: Send + 'static {
    /// Identifier of the model, stored beside each result.
    fn model_id(&self) -> &str;
    fn enrich(&self, texts: &[&str]) -> Result<Vec<Enrichment>, BoxError>;
}

/// A durable store of enriched comments (Postgres, a search index). `upsert` returns only when the batch is
/// durable, and writing the same comment twice leaves one copy: that is what lets the sink commit Kafka
/// offsets after all stores returned, and replay anything not committed.
#[async_trait]
pub trait CommentStore: Send + Sync {
    fn name(&self) -> &'static str;
    async fn upsert(&self, batch: &[EnrichedComment]) -> Result<(), BoxError>;
}
