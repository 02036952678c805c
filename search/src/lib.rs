//! The comment index, in generations (see `generation`): tantivy for BM25 over the text (a social-media
//! tokenizer), filters on time, source, sentiment, tags and mentioned entities (facets `/LABEL/name`), with
//! snippets; and the comments' embeddings with an HNSW graph for semantic search under the same filters,
//! exact below a size, fused with BM25 by reciprocal rank for hybrid search.
//!
//! The sink writes it (delete-then-add by `(source, id)`, so replays are idempotent) and commits on a cadence;
//! its Kafka offsets wait for the commit. The API reads it, following commits and generation switches. Every
//! generation is derived from Postgres and can be rebuilt beside the one in service (`murmur reindex`).

mod error;
mod fusion;
mod generation;
mod graph;
mod index;
mod query;
mod schema;
mod search;
mod slices;
mod spaces;
mod tokenizer;
mod vectors;

pub use error::SearchError;
pub use graph::Quantization;
pub use index::{Access, IndexOptions, Rebuild, SearchIndex, VectorModels};
pub use query::{
    check_query_syntax, EntityFacet, EntityFilter, Facets, Filters, Fusion, HitEntity, SearchHit, SearchMode,
    SearchQuery, SearchResults, RANK_WINDOW, SNIPPET_CHARS,
};
pub use slices::Point;
pub use tokenizer::terms;
pub use vectors::{AnnMethod, GraphStatus, HnswParams};
