//! Postgres, murmur's system of record: the schema lives in `migrations/`; writes are bulk (one `UNNEST`
//! statement per table per batch, one transaction) and idempotent (upsert on `(source, id)`, rows that did
//! not change are not rewritten). Trend rollups are kept by the same writes (`trends`).

mod error;
mod postgres;
mod reports;
pub mod testing;
mod trends;

pub use error::StoreError;
pub use postgres::{PackedVector, Postgres, StoredComment, StoredEnrichment};
pub use reports::{NewReport, ReportSchedule, StoredReport, WebhookStatus};
pub use trends::{cover, Counts, Dim, DimKind, Grain, KeyCounts, KeyFilter, Segment};
