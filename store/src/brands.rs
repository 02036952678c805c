//! The brand catalogue (migration 0008): its brands, its version, the matcher each writer compiles from it,
//! and the pass that re-matches stored comments after a change, run in the background by [`Rematcher`].
//! The consistency rule (a writer matches with the version it holds the catalogue's shared lock on; a change
//! takes the lock exclusively, so it waits for batches in flight) is stated in the migration.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use murmur_core::{Brand, BrandMatcher, Emotion, Entity};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::PgConnection;
use tokio::sync::Notify;

use crate::postgres::{array_literal, SELECT_STORED};
use crate::trends::{Dim, Duplicates, Parts};
use crate::{Postgres, StoreError};

/// The matcher of the catalogue version a process last wrote with, compiled once per version.
#[derive(Default)]
pub(crate) struct MatcherCache(Mutex<Option<(i64, Arc<BrandMatcher>)>>);

/// The catalogue as the API lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Catalogue {
    /// Moves on every change.
    pub version: i64,
    /// The last version every stored comment has been matched with; below `version` while a re-matching
    /// pass is due or running.
    pub rematched_version: i64,
    pub brands: Vec<Brand>,
}

/// What [`Postgres::put_brand`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrandChange {
    Created,
    Replaced,
    /// The catalogue already held this exact brand: nothing to re-match.
    Unchanged,
    /// `only_new` was asked and a brand of that key exists.
    Exists,
}

/// How far a re-matching pass is, for `/readyz` and the dashboard.
#[derive(Debug, Default)]
pub struct RematchProgress {
    /// The catalogue version being matched with; 0 when no pass has run in this process.
    pub version: AtomicI64,
    pub scanned: AtomicU64,
    /// Comments stored when the pass began (an estimate: comments keep arriving).
    pub total: AtomicU64,
    pub changed: AtomicU64,
    /// Whether a pass is running now.
    pub running: AtomicBool,
}

/// The catalogue's lock: shared by writers of comments for their batch's transaction, exclusive for a change.
const CATALOGUE_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('murmur.brand_catalogue'))";
const CATALOGUE_LOCK_SHARED: &str = "SELECT pg_advisory_xact_lock_shared(hashtext('murmur.brand_catalogue'))";

/// A stored comment as re-matching reads it: key, row version (`xmin`), text, tags, entities, emotion, the
/// producer's language, the detected one and its confidence.
type RematchRow = (
    String,
    String,
    String,
    String,
    Vec<String>,
    Option<Json<Vec<Entity>>>,
    Option<Json<Emotion>>,
    Option<String>,
    Option<String>,
    Option<f32>,
);

impl Postgres {
    pub async fn brand_catalogue(&self) -> Result<Catalogue, StoreError> {
        let (version, rematched_version): (i64, i64) =
            sqlx::query_as("SELECT version, rematched_version FROM brand_catalogue WHERE id = 1")
                .fetch_one(self.pool())
                .await?;
        let rows: Vec<Json<Brand>> =
            sqlx::query_scalar("SELECT definition FROM brands ORDER BY key").fetch_all(self.pool()).await?;
        Ok(Catalogue { version, rematched_version, brands: rows.into_iter().map(|b| b.0).collect() })
    }

    /// The brand of `key` ([`murmur_core::brand_key`] of its name).
    pub async fn brand(&self, key: &str) -> Result<Option<Brand>, StoreError> {
        let row: Option<Json<Brand>> = sqlx::query_scalar("SELECT definition FROM brands WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|b| b.0))
    }

    /// Stores `brand` (validated; it is normalised here) under its key, replacing one of the same key unless
    /// `only_new`. A change moves the catalogue version, after the batches being written commit.
    pub async fn put_brand(&self, brand: &Brand, only_new: bool) -> Result<BrandChange, StoreError> {
        brand.validate().map_err(StoreError::Invalid)?;
        let brand = brand.clone().normalized();
        let key = brand.key();
        let mut tx = self.pool().begin().await?;
        sqlx::query(CATALOGUE_LOCK).execute(&mut *tx).await?;
        let old: Option<Json<Brand>> = sqlx::query_scalar("SELECT definition FROM brands WHERE key = $1")
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?;
        let change = match old {
            Some(_) if only_new => return Ok(BrandChange::Exists),
            Some(Json(old)) if old == brand => return Ok(BrandChange::Unchanged),
            Some(_) => BrandChange::Replaced,
            None => BrandChange::Created,
        };
        sqlx::query(
            "INSERT INTO brands (key, definition) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET definition = EXCLUDED.definition, updated_at = now()",
        )
        .bind(&key)
        .bind(Json(&brand))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE brand_catalogue SET version = version + 1 WHERE id = 1").execute(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!(brand = %key, ?change, "brand catalogue changed");
        Ok(change)
    }

    /// Removes the brand of `key`; whether there was one.
    pub async fn delete_brand(&self, key: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(CATALOGUE_LOCK).execute(&mut *tx).await?;
        let deleted = sqlx::query("DELETE FROM brands WHERE key = $1").bind(key).execute(&mut *tx).await?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE brand_catalogue SET version = version + 1 WHERE id = 1").execute(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!(brand = %key, "brand removed from the catalogue");
        Ok(true)
    }

    /// The newest comments of `[from, to)` counted under `dim` (a brand or brand group: the search index
    /// does not hold brands), from `source` and of `sentiment` where given, copies left out with `Duplicates::Once`.
    pub async fn newest_under(
        &self,
        dim: &Dim,
        source: Option<&str>,
        sentiment: Option<&str>,
        duplicates: Duplicates,
        (from, to): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
        limit: i64,
    ) -> Result<Vec<crate::StoredComment>, StoreError> {
        let rows = sqlx::query_as::<_, crate::StoredComment>(&format!(
            "{SELECT_STORED} WHERE c.dims @> ARRAY[$1] AND c.created_at >= $2 AND c.created_at < $5 \
               AND ($6::text IS NULL OR c.source = $6) AND ($7::text IS NULL OR c.sentiment = $7) AND {} \
             ORDER BY c.created_at DESC, c.source, c.id LIMIT $4",
            duplicates.keeps_comment()
        ))
        .bind(dim.stored_for("slice")?)
        .bind(from)
        .bind(false)
        .bind(limit)
        .bind(to)
        .bind(source)
        .bind(sentiment)
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    /// The matcher of the catalogue version current in the transaction `tx`, which holds the catalogue's
    /// shared lock from here to its end (so the version cannot change under what `tx` writes).
    pub(crate) async fn locked_matcher(&self, tx: &mut PgConnection) -> Result<Arc<BrandMatcher>, StoreError> {
        sqlx::query(CATALOGUE_LOCK_SHARED).execute(&mut *tx).await?;
        // A statement after the lock: its snapshot sees every change committed before the lock was granted.
        let version: i64 =
            sqlx::query_scalar("SELECT version FROM brand_catalogue WHERE id = 1").fetch_one(&mut *tx).await?;
        if let Some((cached, matcher)) = &*self.matchers.0.lock().unwrap_or_else(PoisonError::into_inner) {
            if *cached == version {
                return Ok(Arc::clone(matcher));
            }
        }
        let brands: Vec<Json<Brand>> =
            sqlx::query_scalar("SELECT definition FROM brands ORDER BY key").fetch_all(&mut *tx).await?;
        let brands: Vec<Brand> = brands.into_iter().map(|b| b.0).collect();
        let matcher = Arc::new(BrandMatcher::new(&brands).map_err(StoreError::Invalid)?);
        *self.matchers.0.lock().unwrap_or_else(PoisonError::into_inner) = Some((version, Arc::clone(&matcher)));
        tracing::debug!(version, brands = brands.len(), "brand matcher compiled");
        Ok(matcher)
    }

    /// Re-matches every stored comment with the catalogue, if a change has not been re-matched yet: in pages of
    /// 1,000 in key order, each page in one transaction under the catalogue's shared lock, rewriting only the
    /// comments whose brands changed and that no writer touched since the page was read (a writer already
    /// matched those with this version or a newer one). The rollup triggers move the counts. One process at a
    /// time (an advisory lock; others return `None` at once). Returns the comments changed, or `None` when there
    /// was nothing to do.
    pub async fn rematch_brands(&self, progress: &RematchProgress) -> Result<Option<u64>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('murmur.brand_rematch'))")
            .fetch_one(&mut *conn)
            .await?;
        if !locked {
            return Ok(None);
        }
        let result = rematch_locked(self, &mut conn, progress).await;
        progress.running.store(false, Ordering::Relaxed);
        sqlx::query("SELECT pg_advisory_unlock(hashtext('murmur.brand_rematch'))").execute(&mut *conn).await?;
        result
    }
}

async fn rematch_locked(
    postgres: &Postgres,
    conn: &mut PgConnection,
    progress: &RematchProgress,
) -> Result<Option<u64>, StoreError> {
    let (version, rematched): (i64, i64) =
        sqlx::query_as("SELECT version, rematched_version FROM brand_catalogue WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
    if rematched >= version {
        return Ok(None);
    }
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM comments WHERE dims IS NOT NULL").fetch_one(&mut *conn).await?;
    progress.version.store(version, Ordering::Relaxed);
    progress.total.store(total.max(0) as u64, Ordering::Relaxed);
    progress.scanned.store(0, Ordering::Relaxed);
    progress.changed.store(0, Ordering::Relaxed);
    progress.running.store(true, Ordering::Relaxed);
    tracing::info!(version, comments = total, "re-matching stored comments with the brand catalogue");
    let mut after = (String::new(), String::new());
    let mut changed = 0;
    loop {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let matcher = postgres.locked_matcher(&mut tx).await?;
        let rows: Vec<RematchRow> = sqlx::query_as(
            "SELECT source, id, xmin::text, text, tags, entities, emotion, lang, lang_detected, lang_confidence \
             FROM comments \
             WHERE dims IS NOT NULL AND (source, id) > ($1, $2) ORDER BY source, id LIMIT 1000",
        )
        .bind(&after.0)
        .bind(&after.1)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else {
            tx.commit().await?;
            break;
        };
        after = (last.0.clone(), last.1.clone());
        let scanned = rows.len() as u64;
        let (mut sources, mut ids, mut xmins, mut dims) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (source, id, xmin, text, tags, entities, emotion, lang, detected, confidence) in rows {
            let entities = entities.map(|e| e.0);
            let hits = matcher.find(&text, entities.as_deref());
            let parts = Parts {
                tags: &tags,
                entities: entities.as_deref(),
                emotion: emotion.as_ref().map(|e| &e.0),
                language: murmur_core::language_key(detected.as_deref().zip(confidence), lang.as_deref()),
            };
            let parts = Dim::of_parts(parts, &hits);
            dims.push(array_literal(parts.iter().map(String::as_str)));
            sources.push(source);
            ids.push(id);
            xmins.push(xmin);
        }
        let result = sqlx::query(
            "UPDATE comments c SET dims = with_theme(u.dims::text[], c.dims) \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS u(source, id, xmin, dims) \
             WHERE c.source = u.source AND c.id = u.id AND c.xmin::text = u.xmin \
               AND c.dims IS DISTINCT FROM with_theme(u.dims::text[], c.dims)",
        )
        .bind(&sources)
        .bind(&ids)
        .bind(&xmins)
        .bind(&dims)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        changed += result.rows_affected();
        progress.scanned.fetch_add(scanned, Ordering::Relaxed);
        progress.changed.store(changed, Ordering::Relaxed);
    }
    // Pages after a newer change were matched with it, pages before with `version`: `version` is done.
    sqlx::query("UPDATE brand_catalogue SET rematched_version = greatest(rematched_version, $1) WHERE id = 1")
        .bind(version)
        .execute(&mut *conn)
        .await?;
    tracing::info!(version, changed, "brand re-matching done");
    Ok(Some(changed))
}

/// Keeps stored comments matched with the catalogue in the background: a pass whenever the catalogue has moved
/// past what was re-matched, checked every few seconds (changes made by other processes) and at once when
/// [`wake`](Self::wake)d (changes made by this one). Cheap to clone.
#[derive(Clone)]
pub struct Rematcher {
    pub progress: Arc<RematchProgress>,
    wake: Arc<Notify>,
}

impl Rematcher {
    /// How often the catalogue version is checked without a wake-up.
    pub const POLL: Duration = Duration::from_secs(5);

    /// Starts the background task; abort the handle to stop it (a page cut short is rolled back).
    pub fn spawn(postgres: Postgres) -> (Self, tokio::task::JoinHandle<()>) {
        let rematcher = Self { progress: Arc::default(), wake: Arc::new(Notify::new()) };
        let (progress, wake) = (Arc::clone(&rematcher.progress), Arc::clone(&rematcher.wake));
        let task = tokio::spawn(async move {
            loop {
                if let Err(error) = postgres.rematch_brands(&progress).await {
                    tracing::warn!(%error, "brand re-matching failed; retrying");
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(Self::POLL) => {}
                }
            }
        });
        (rematcher, task)
    }

    /// Starts a pass now if the catalogue changed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}
