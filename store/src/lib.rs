//! Postgres, murmur's system of record: the schema lives in `migrations/`; writes are bulk (one `UNNEST`
//! statement per table per batch, one transaction) and idempotent (upsert on `(source, id)`, rows that did
//! not change are not rewritten).

mod error;
mod postgres;

pub use error::StoreError;
pub use postgres::{EntityCount, Postgres, StoredComment, StoredEnrichment};
