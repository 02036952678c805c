//! The comment index on tantivy: BM25 over the text, with filters on time, source, sentiment and
//! mentioned entities (facets `/LABEL/name`). The sink writes it
//! (delete-then-add by `(source, id)`, so replays are idempotent, one commit per batch so a batch is durable
//! before its offsets are committed); the API reads it and sees each commit within a moment.

mod error;
mod index;
mod schema;

pub use error::SearchError;
pub use index::{
    Access, EntityFacet, EntityFilter, Facets, HitEntity, SearchHit, SearchIndex, SearchQuery, SearchResults,
};
