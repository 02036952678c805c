//! Postgres, murmur's system of record: the schema lives in `migrations/`; writes are bulk (one `UNNEST`
//! statement per table per batch, one transaction) and idempotent (upsert on `(source, id)`, rows that did
//! not change are not rewritten). The same writes log each comment's rollup deltas, folded into the trend
//! rollups off the write path (`rollup_log`) and read by `trends`.

mod alerts;
mod aspects;
mod brands;
mod copies;
mod deletions;
mod error;
mod postgres;
mod reports;
mod rollup_log;
#[cfg(feature = "testing")]
pub mod testing;
mod themes;
mod trends;

pub use alerts::{NewAlert, StoredAlert, StoredAlertRule};
pub use aspects::{AspectCount, AspectMention, AspectScope};
pub use brands::{BrandChange, Catalogue, RematchProgress, Rematcher};
pub use copies::{Cluster, CopyFinder, CopyFinderOptions, CopyProgress, Original};
pub use deletions::Erasure;
pub use error::StoreError;

/// murmur's database on a Postgres on this machine, as infra/postgres.sh sets it up.
pub const DEFAULT_DATABASE_URL: &str = "postgres://murmur@127.0.0.1:5432/murmur";
pub use postgres::{PackedVector, Postgres, StoredComment, StoredEnrichment};
pub use reports::{NewReport, ReportSchedule, StoredReport, WebhookStatus, WebhookTarget};
pub use rollup_log::RollupFolder;
pub use themes::{StoredTheme, StoredThemeEvent, ThemeFinder, ThemeFinderOptions, ThemeProgress};
pub use trends::{cover, Counts, Dim, DimKind, Duplicates, Grain, KeyCounts, KeyFilter, Segment};
