//! Themes found off the write path (migration 0013, docs/themes.md).
//!
//! The sink only queues what it stores (`theme_queue`). One process at a time — whichever holds the advisory
//! lock `murmur.themer` — runs a [`Themer`]: it drains the queue in order, gives each comment the nearest theme
//! (a `theme:ID` entry in its dims, so the rollups count it), and re-clusters its window when due, recording
//! the themes, their history and every comment whose theme changed in one transaction. The window is memory
//! only; a process that takes the lock rebuilds it from the newest comments in Postgres, so themes and their ids
//! survive a restart whichever process runs them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use murmur_core::themes::{theme_words, Reclustering, Theme, ThemeEvent, ThemeId, ThemeOptions, ThemeStatus, Themer};
use serde::Serialize;
use sqlx::{Connection, PgConnection};

use crate::copies::{lead_session, Key};
use crate::postgres::array_literal;
use crate::{PackedVector, Postgres, StoreError};

/// How the themer runs.
#[derive(Debug, Clone, Copy)]
pub struct ThemeFinderOptions {
    pub themes: ThemeOptions,
    /// Queued comments read and recorded per transaction.
    pub batch: usize,
    /// How long an idle themer (or one waiting for the lock) sleeps.
    pub tick: Duration,
}

impl Default for ThemeFinderOptions {
    fn default() -> Self {
        Self { themes: ThemeOptions::default(), batch: 1_000, tick: Duration::from_millis(500) }
    }
}

/// What the themer of this process has done (for `/readyz` and logs).
#[derive(Debug, Default)]
pub struct ThemeProgress {
    /// Whether this process holds the lock and finds themes.
    pub leading: AtomicBool,
    /// Comments in the window.
    pub window: AtomicU64,
    /// Comments given a theme (or none) since this process took the lock.
    pub observed: AtomicU64,
    /// Re-clusterings since this process took the lock.
    pub reclusterings: AtomicU64,
    /// How long the last re-clustering took, in milliseconds.
    pub last_recluster_ms: AtomicU64,
    /// Comments observed since the last re-clustering (given the nearest theme only, so far).
    pub unclustered: AtomicU64,
}

/// Runs the themer in the background; abort the handle to stop it (a batch cut short is rolled back).
pub struct ThemeFinder;

impl ThemeFinder {
    pub fn spawn(postgres: Postgres, options: ThemeFinderOptions) -> (Arc<ThemeProgress>, tokio::task::JoinHandle<()>) {
        let progress = Arc::new(ThemeProgress::default());
        let shared = Arc::clone(&progress);
        let task = tokio::spawn(async move {
            loop {
                if let Err(error) = lead(&postgres, &shared, options).await {
                    tracing::warn!(%error, "themer failed; retrying");
                }
                shared.leading.store(false, Ordering::Relaxed);
                tokio::time::sleep(options.tick).await;
            }
        });
        (progress, task)
    }
}

/// Waits for the lock, rebuilds the window and themes until an error. Everything runs on the connection that
/// holds the lock, so a themer that lost it (its connection broke) cannot write any more.
async fn lead(postgres: &Postgres, progress: &ThemeProgress, options: ThemeFinderOptions) -> Result<(), StoreError> {
    let mut conn = lead_session(postgres, "murmur.themer", options.tick).await?;
    progress.leading.store(true, Ordering::Relaxed);
    progress.observed.store(0, Ordering::Relaxed);
    progress.reclusterings.store(0, Ordering::Relaxed);
    let mut themer = reload(&mut conn, options.themes).await?;
    progress.window.store(themer.window_len() as u64, Ordering::Relaxed);
    tracing::info!(window = themer.window_len(), themes = themer.themes().len(), "themer: finding themes");
    loop {
        let observed = observe_batch(&mut conn, &mut themer, options.batch).await?;
        progress.observed.fetch_add(observed, Ordering::Relaxed);
        progress.window.store(themer.window_len() as u64, Ordering::Relaxed);
        progress.unclustered.store(themer.unclustered() as u64, Ordering::Relaxed);
        if themer.due(Instant::now()) {
            let start = Instant::now();
            let (back, found) = tokio::task::spawn_blocking(move || {
                let found = themer.recluster(Instant::now());
                (themer, found)
            })
            .await
            .map_err(|e| StoreError::Invalid(format!("the re-clustering task failed: {e}")))?;
            themer = back;
            record(&mut conn, &themer, &found).await?;
            progress.unclustered.store(themer.unclustered() as u64, Ordering::Relaxed);
            let ms = start.elapsed().as_millis() as u64;
            progress.reclusterings.fetch_add(1, Ordering::Relaxed);
            progress.last_recluster_ms.store(ms, Ordering::Relaxed);
            tracing::info!(
                window = themer.window_len(),
                active = themer.themes().iter().filter(|t| t.status == ThemeStatus::Active).count(),
                changed = found.changed.len(),
                events = found.events.len(),
                ms,
                "themer: re-clustered"
            );
        } else if observed == 0 {
            tokio::time::sleep(options.tick).await;
        }
    }
}

/// A stored theme row as the themer reads it back.
type ThemeRow = (i64, String, Option<i64>, Vec<String>, i32, PackedVector, Option<String>, Option<String>);

/// The stored themes and the newest comments already themed (not queued), oldest first.
async fn reload(conn: &mut PgConnection, options: ThemeOptions) -> Result<Themer<Key>, StoreError> {
    let rows: Vec<ThemeRow> = sqlx::query_as(
        "SELECT id, status, merged_into, keywords, size, centroid, representative_source, representative_id \
         FROM themes ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let themes = rows
        .into_iter()
        .map(|(id, status, merged_into, keywords, size, centroid, source, rid)| Theme {
            id,
            centroid: centroid.0,
            status: ThemeStatus::parse(&status).unwrap_or(ThemeStatus::Faded),
            merged_into,
            size: usize::try_from(size).unwrap_or(0),
            keywords,
            representative: source.zip(rid),
        })
        .collect();
    let mut themer = Themer::new(options, themes, 1);
    /// A themed comment: source, id, text, embedding, dims.
    type WindowRow = (String, String, String, PackedVector, Option<Vec<String>>);
    let rows: Vec<WindowRow> = sqlx::query_as(
        "SELECT c.source, c.id, c.text, c.embedding, c.dims FROM comments c \
         WHERE c.embedding IS NOT NULL \
           AND NOT EXISTS (SELECT 1 FROM theme_queue q WHERE q.source = c.source AND q.id = c.id) \
         ORDER BY c.created_at DESC, c.source DESC, c.id DESC LIMIT $1",
    )
    .bind(i64::try_from(options.window).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    for (source, id, text, embedding, dims) in rows.into_iter().rev() {
        themer.remember((source, id), &embedding.0, theme_words(&text), theme_in(dims.as_deref().unwrap_or_default()));
    }
    Ok(themer)
}

/// The theme a comment's stored dims give it.
fn theme_in(dims: &[String]) -> Option<ThemeId> {
    dims.iter().find_map(|d| d.strip_prefix("theme:")).and_then(|id| id.parse().ok())
}

/// Gives the next queued comments their themes in one transaction; how many were read.
async fn observe_batch(conn: &mut PgConnection, themer: &mut Themer<Key>, batch: usize) -> Result<u64, StoreError> {
    let mut tx = conn.begin().await?;
    /// A queued comment: queue position, source, id, and its text and embedding (absent once deleted).
    type QueuedRow = (i64, String, String, Option<String>, Option<PackedVector>);
    let queued: Vec<QueuedRow> = sqlx::query_as(
        "SELECT q.seq, q.source, q.id, c.text, c.embedding FROM theme_queue q LEFT JOIN comments c USING (source, id) \
         ORDER BY q.seq LIMIT $1",
    )
    .bind(i64::try_from(batch).unwrap_or(i64::MAX))
    .fetch_all(&mut *tx)
    .await?;
    if queued.is_empty() {
        return Ok(0);
    }
    let seqs: Vec<i64> = queued.iter().map(|q| q.0).collect();
    let mut changed = Vec::new();
    for (_, source, id, text, embedding) in queued {
        // A comment deleted since it was queued has no theme to get.
        let (Some(text), Some(embedding)) = (text, embedding) else { continue };
        let key = (source, id);
        let theme = themer.observe(key.clone(), &embedding.0, &text);
        changed.push((key, theme));
    }
    set_themes(&mut tx, &changed).await?;
    sqlx::query("DELETE FROM theme_queue WHERE seq = ANY($1)").bind(&seqs).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(seqs.len() as u64)
}

/// Writes each comment's theme into its dims (the triggers move its counts); comments that count nowhere
/// (no dims) are left alone.
async fn set_themes(conn: &mut PgConnection, changed: &[(Key, Option<ThemeId>)]) -> Result<(), StoreError> {
    for chunk in changed.chunks(10_000) {
        let sources: Vec<&str> = chunk.iter().map(|((s, _), _)| s.as_str()).collect();
        let ids: Vec<&str> = chunk.iter().map(|((_, i), _)| i.as_str()).collect();
        let themes: Vec<Option<i64>> = chunk.iter().map(|(_, t)| *t).collect();
        sqlx::query(
            "UPDATE comments c SET dims = set_theme(c.dims, u.theme) \
             FROM unnest($1::text[], $2::text[], $3::int8[]) AS u(source, id, theme) \
             WHERE c.source = u.source AND c.id = u.id AND c.dims IS NOT NULL \
               AND c.dims IS DISTINCT FROM set_theme(c.dims, u.theme)",
        )
        .bind(&sources)
        .bind(&ids)
        .bind(&themes)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Records a re-clustering: the themes it touched, its events and the comments whose theme changed.
async fn record(conn: &mut PgConnection, themer: &Themer<Key>, found: &Reclustering<Key>) -> Result<(), StoreError> {
    let mut touched: Vec<ThemeId> = found.events.iter().map(event_theme).collect();
    touched.extend(themer.themes().iter().filter(|t| t.status == ThemeStatus::Active).map(|t| t.id));
    let themes: Vec<&Theme<Key>> = themer.themes().iter().filter(|t| touched.contains(&t.id)).collect();
    let mut tx = conn.begin().await?;
    sqlx::query(
        "INSERT INTO themes AS t (id, status, merged_into, label, keywords, size, centroid, representative_source, \
                                  representative_id) \
         SELECT u.id, u.status, u.merged_into, u.label, u.keywords::text[], u.size, u.centroid, u.source, u.rid \
         FROM unnest($1::int8[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::int4[], $7::bytea[], \
                     $8::text[], $9::text[]) AS u(id, status, merged_into, label, keywords, size, centroid, source, rid) \
         ORDER BY u.id \
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, merged_into = EXCLUDED.merged_into, \
             label = EXCLUDED.label, keywords = EXCLUDED.keywords, size = EXCLUDED.size, centroid = EXCLUDED.centroid, \
             representative_source = EXCLUDED.representative_source, representative_id = EXCLUDED.representative_id, \
             updated_at = now()",
    )
    .bind(themes.iter().map(|t| t.id).collect::<Vec<_>>())
    .bind(themes.iter().map(|t| t.status.as_str()).collect::<Vec<_>>())
    .bind(themes.iter().map(|t| t.merged_into).collect::<Vec<_>>())
    .bind(themes.iter().map(|t| t.label()).collect::<Vec<_>>())
    .bind(themes.iter().map(|t| array_literal(t.keywords.iter().map(String::as_str))).collect::<Vec<_>>())
    .bind(themes.iter().map(|t| i32::try_from(t.size).unwrap_or(i32::MAX)).collect::<Vec<_>>())
    .bind(themes.iter().map(|t| PackedVector::pack(&t.centroid)).collect::<Vec<_>>())
    .bind(themes.iter().map(|t| t.representative.as_ref().map(|k| k.0.clone())).collect::<Vec<_>>())
    .bind(themes.iter().map(|t| t.representative.as_ref().map(|k| k.1.clone())).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    let (kinds, themes, others): (Vec<&str>, Vec<i64>, Vec<Option<i64>>) = found
        .events
        .iter()
        .map(|e| match *e {
            ThemeEvent::Born { theme } => ("born", theme, None),
            ThemeEvent::Split { theme, from } => ("split", theme, Some(from)),
            ThemeEvent::Merged { theme, into } => ("merged", theme, Some(into)),
            ThemeEvent::Faded { theme } => ("faded", theme, None),
            ThemeEvent::Revived { theme } => ("revived", theme, None),
        })
        .fold((Vec::new(), Vec::new(), Vec::new()), |mut acc, (k, t, o)| {
            acc.0.push(k);
            acc.1.push(t);
            acc.2.push(o);
            acc
        });
    sqlx::query(
        "INSERT INTO theme_events (kind, theme, other) \
         SELECT u.kind, u.theme, u.other \
         FROM unnest($1::text[], $2::int8[], $3::int8[]) WITH ORDINALITY AS u(kind, theme, other, n) \
         ORDER BY n",
    )
    .bind(&kinds)
    .bind(&themes)
    .bind(&others)
    .execute(&mut *tx)
    .await?;
    set_themes(&mut tx, &found.changed).await?;
    tx.commit().await?;
    Ok(())
}

fn event_theme(event: &ThemeEvent) -> ThemeId {
    match *event {
        ThemeEvent::Born { theme }
        | ThemeEvent::Split { theme, .. }
        | ThemeEvent::Merged { theme, .. }
        | ThemeEvent::Faded { theme }
        | ThemeEvent::Revived { theme } => theme,
    }
}

/// A theme as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StoredTheme {
    pub id: i64,
    /// `active` (found in the last clustering), `merged` (into `merged_into`) or `faded`.
    pub status: String,
    pub merged_into: Option<i64>,
    /// Its first three keywords.
    pub label: String,
    /// Its most distinctive words (c-TF-IDF against every theme), best first.
    pub keywords: Vec<String>,
    /// Comments of the themer's window in it at the last clustering.
    pub size: i32,
    /// The comment nearest its centroid.
    pub representative_source: Option<String>,
    pub representative_id: Option<String>,
    /// That comment's text (absent when it was deleted).
    pub representative_text: Option<String>,
    pub born_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One entry of a theme's history.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StoredThemeEvent {
    pub at: DateTime<Utc>,
    /// `born`, `split` (from `other`), `merged` (into `other`), `faded`, `revived`; or, seen from the other side,
    /// `split_off` (`other` split from this theme) and `absorbed` (`other` merged into this one).
    pub kind: String,
    pub other: Option<i64>,
}

const SELECT_THEMES: &str = "SELECT t.id, t.status, t.merged_into, t.label, t.keywords, t.size, \
    t.representative_source, t.representative_id, c.text AS representative_text, t.born_at, t.updated_at \
    FROM themes t LEFT JOIN comments c ON c.source = t.representative_source AND c.id = t.representative_id";

impl Postgres {
    /// Comments stored but not yet given a theme.
    pub async fn themes_queued(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM theme_queue").fetch_one(self.pool()).await?)
    }

    /// These themes (all when `ids` is `None`), by id.
    pub async fn themes(&self, ids: Option<&[i64]>) -> Result<Vec<StoredTheme>, StoreError> {
        Ok(sqlx::query_as(&format!("{SELECT_THEMES} WHERE $1::int8[] IS NULL OR t.id = ANY($1) ORDER BY t.id"))
            .bind(ids)
            .fetch_all(self.pool())
            .await?)
    }

    /// A theme's history, oldest first, from both sides (a split off it, a merge into it).
    pub async fn theme_history(&self, id: i64) -> Result<Vec<StoredThemeEvent>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT seq, at, kind, other FROM theme_events WHERE theme = $1 \
             UNION ALL \
             SELECT seq, at, CASE kind WHEN 'split' THEN 'split_off' ELSE 'absorbed' END, theme FROM theme_events \
             WHERE other = $1 \
             ORDER BY 1",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?)
    }
}
