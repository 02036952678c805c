//! Near-duplicate clusters (migration 0010): which stored comments are copies of an earlier one, found off the
//! write path.
//!
//! The sink only queues what it stores (`copy_queue`). One process at a time — whichever holds the advisory
//! lock `murmur.copy_finder` — drains the queue in the order comments were stored, compares each with the
//! originals it holds in a [`CopyIndex`] (the newest `capacity` of them) and records each copy with the
//! first-seen original of its cluster (`copies`), moving the copy's counts into the rollups' `copies`
//! columns in the same transaction. The index is memory only; a process that takes the lock (at start, or
//! after the holder died) rebuilds it from the newest originals in Postgres, so what was found survives a
//! restart and a copy is found whichever process took it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use murmur_core::duplicates::CopyIndex;
use serde::Serialize;
use sqlx::{Connection, PgConnection};

use crate::{Postgres, StoreError};

/// A comment's key, owned.
pub type Key = (String, String);

/// How the copy finder runs.
#[derive(Debug, Clone, Copy)]
pub struct CopyFinderOptions {
    /// Originals kept to compare new comments with (about 600 bytes each); 0 finds no copies (the queue is
    /// still drained).
    pub capacity: usize,
    /// Queued comments read and recorded per transaction.
    pub batch: usize,
    /// How long an idle finder (or one waiting for the lock) sleeps.
    pub tick: Duration,
}

impl Default for CopyFinderOptions {
    fn default() -> Self {
        Self { capacity: 200_000, batch: 1_000, tick: Duration::from_millis(500) }
    }
}

/// What the copy finder of this process has done (for `/readyz` and logs).
#[derive(Debug, Default)]
pub struct CopyProgress {
    /// Whether this process holds the lock and finds copies.
    pub leading: AtomicBool,
    /// Originals held in memory.
    pub originals: AtomicU64,
    /// Comments compared since this process took the lock.
    pub checked: AtomicU64,
    /// Copies recorded since this process took the lock.
    pub copies: AtomicU64,
}

/// A comment's cluster of near-duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Cluster {
    /// The first-seen comment this one copies; absent for an original (and for a comment not compared yet,
    /// about a second behind the sink).
    pub duplicate_of: Option<Original>,
    /// Comments in the cluster, the original and every copy (1 for a comment nobody copied).
    pub cluster_size: i64,
}

/// The comment a cluster's copies copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Original {
    pub source: String,
    pub id: String,
}

/// Runs the copy finder in the background; abort the handle to stop it (a batch cut short is rolled back).
pub struct CopyFinder;

impl CopyFinder {
    pub fn spawn(postgres: Postgres, options: CopyFinderOptions) -> (Arc<CopyProgress>, tokio::task::JoinHandle<()>) {
        let progress = Arc::new(CopyProgress::default());
        let shared = Arc::clone(&progress);
        let task = tokio::spawn(async move {
            loop {
                if let Err(error) = lead(&postgres, &shared, options).await {
                    tracing::warn!(%error, "copy finder failed; retrying");
                }
                shared.leading.store(false, Ordering::Relaxed);
                tokio::time::sleep(options.tick).await;
            }
        });
        (progress, task)
    }
}

/// Waits for the lock, rebuilds the index and drains the queue until an error. Everything runs on the
/// connection that holds the lock, so a finder that lost it (its connection broke) cannot write any more.
async fn lead(postgres: &Postgres, progress: &CopyProgress, options: CopyFinderOptions) -> Result<(), StoreError> {
    let mut conn = lead_session(postgres, "murmur.copy_finder", options.tick).await?;
    progress.leading.store(true, Ordering::Relaxed);
    progress.checked.store(0, Ordering::Relaxed);
    progress.copies.store(0, Ordering::Relaxed);
    let mut index = reload(&mut conn, options.capacity).await?;
    progress.originals.store(index.len() as u64, Ordering::Relaxed);
    tracing::info!(originals = index.len(), capacity = options.capacity, "copy finder: finding copies");
    loop {
        let found = drain_batch(&mut conn, &mut index, options.batch).await?;
        progress.originals.store(index.len() as u64, Ordering::Relaxed);
        match found {
            Some((checked, copies)) => {
                progress.checked.fetch_add(checked, Ordering::Relaxed);
                progress.copies.fetch_add(copies, Ordering::Relaxed);
            }
            None => tokio::time::sleep(options.tick).await,
        }
    }
}

/// The newest `capacity` originals that were already compared (not queued), oldest first.
async fn reload(conn: &mut PgConnection, capacity: usize) -> Result<CopyIndex<Key>, StoreError> {
    let mut index = CopyIndex::new(capacity);
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.source, c.id, c.text FROM comments c \
         WHERE NOT EXISTS (SELECT 1 FROM copies k WHERE k.source = c.source AND k.id = c.id) \
           AND NOT EXISTS (SELECT 1 FROM copy_queue q WHERE q.source = c.source AND q.id = c.id) \
         ORDER BY c.created_at DESC, c.source DESC, c.id DESC LIMIT $1",
    )
    .bind(i64::try_from(capacity).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    for (source, id, text) in rows.into_iter().rev() {
        index.add_original((source, id), &text);
    }
    Ok(index)
}

/// Compares the next queued comments and records their copies in one transaction: `None` when the queue was
/// empty, else how many were compared and how many were copies.
async fn drain_batch(
    conn: &mut PgConnection,
    index: &mut CopyIndex<Key>,
    batch: usize,
) -> Result<Option<(u64, u64)>, StoreError> {
    let mut tx = conn.begin().await?;
    let queued: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT q.seq, q.source, q.id, c.text FROM copy_queue q LEFT JOIN comments c USING (source, id) \
         ORDER BY q.seq LIMIT $1",
    )
    .bind(i64::try_from(batch).unwrap_or(i64::MAX))
    .fetch_all(&mut *tx)
    .await?;
    if queued.is_empty() {
        return Ok(None);
    }
    let seqs: Vec<i64> = queued.iter().map(|q| q.0).collect();
    let (mut sources, mut ids, mut original_sources, mut original_ids) = (vec![], vec![], vec![], vec![]);
    for (_, source, id, text) in queued {
        // A comment deleted since it was queued has nothing to compare.
        let Some(text) = text else { continue };
        let key = (source, id);
        match index.check(key.clone(), &text) {
            // Queued again (its text changed): it is its own original.
            Some(original) if original == key => {}
            Some((original_source, original_id)) => {
                sources.push(key.0);
                ids.push(key.1);
                original_sources.push(original_source);
                original_ids.push(original_id);
            }
            None => {}
        }
    }
    let checked = seqs.len() as u64;
    let copies = sources.len() as u64;
    if !sources.is_empty() {
        // The copies' rows are locked first, so that a concurrent update of one (a re-match) either moves the
        // counts before they are read here or waits and then sees the copy (its trigger reads `copies`).
        sqlx::query(
            "SELECT 1 FROM comments c JOIN unnest($1::text[], $2::text[]) AS m(source, id) USING (source, id) \
             ORDER BY c.source, c.id FOR SHARE OF c",
        )
        .bind(&sources)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "WITH marked AS ( \
                 INSERT INTO copies (source, id, original_source, original_id) \
                 SELECT m.source, m.id, m.original_source, m.original_id \
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) \
                     AS m(source, id, original_source, original_id) \
                 JOIN comments c USING (source, id) \
                 ON CONFLICT (source, id) DO NOTHING RETURNING source, id) \
             INSERT INTO rollup_log (delta) \
                 SELECT ROW(c.source, date_trunc('minute', c.created_at, 'UTC'), c.sentiment, c.dims, s.sign, \
                            s.copy)::fact_delta \
                 FROM marked JOIN comments c USING (source, id) \
                 CROSS JOIN (VALUES (-1, false), (1, true)) AS s(sign, copy) \
                 WHERE c.dims IS NOT NULL",
        )
        .bind(&sources)
        .bind(&ids)
        .bind(&original_sources)
        .bind(&original_ids)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM copy_queue WHERE seq = ANY($1)").bind(&seqs).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Some((checked, copies)))
}

/// A session of its own that holds the advisory lock `name`, once it is free (tried every `tick`). Detached
/// from the pool: dropping it closes the session, which releases the lock, so a background leader that lost
/// its connection cannot write any more.
pub(crate) async fn lead_session(postgres: &Postgres, name: &str, tick: Duration) -> Result<PgConnection, StoreError> {
    let mut conn = postgres.pool().acquire().await?.detach();
    loop {
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))").bind(name).fetch_one(&mut conn).await?;
        if locked {
            return Ok(conn);
        }
        tokio::time::sleep(tick).await;
    }
}

impl Postgres {
    /// Comments stored but not yet compared with the originals.
    pub async fn copies_queued(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM copy_queue").fetch_one(self.pool()).await?)
    }

    /// The original each of these comments copies, for those that are copies.
    pub async fn originals_of(&self, keys: &[Key]) -> Result<HashMap<Key, Key>, StoreError> {
        let (sources, ids): (Vec<&str>, Vec<&str>) = keys.iter().map(|(s, i)| (s.as_str(), i.as_str())).unzip();
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT k.source, k.id, k.original_source, k.original_id \
             FROM copies k JOIN unnest($1::text[], $2::text[]) AS m(source, id) USING (source, id)",
        )
        .bind(&sources)
        .bind(&ids)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(source, id, os, oi)| ((source, id), (os, oi))).collect())
    }

    /// The clusters of these comments (those stored; an original's cluster counts its copies and itself).
    pub async fn clusters(&self, keys: &[Key]) -> Result<HashMap<Key, Cluster>, StoreError> {
        let (sources, ids): (Vec<&str>, Vec<&str>) = keys.iter().map(|(s, i)| (s.as_str(), i.as_str())).unzip();
        /// A comment, the original it copies (if any) and its cluster's size.
        type ClusterRow = (String, String, Option<String>, Option<String>, i64);
        let rows: Vec<ClusterRow> = sqlx::query_as(
            "SELECT m.source, m.id, k.original_source, k.original_id, \
                    1 + (SELECT count(*) FROM copies o \
                         WHERE o.original_source = coalesce(k.original_source, m.source) \
                           AND o.original_id = coalesce(k.original_id, m.id)) \
             FROM unnest($1::text[], $2::text[]) AS m(source, id) \
             JOIN comments c USING (source, id) LEFT JOIN copies k USING (source, id)",
        )
        .bind(&sources)
        .bind(&ids)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(source, id, original_source, original_id, cluster_size)| {
                let duplicate_of = original_source.zip(original_id).map(|(source, id)| Original { source, id });
                ((source, id), Cluster { duplicate_of, cluster_size })
            })
            .collect())
    }
}
