//! Near-duplicate clusters as the writer keeps them (migration 0010; the rule is `murmur_core::duplicates`):
//! each new comment of a batch is compared with the originals of the window that share a MinHash band key
//! with it, and with the batch's earlier originals; the first that it copies is its `duplicate_of`. New
//! originals join the window's index. A comment already stored keeps what it was (a replay is not a copy of
//! itself).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use murmur_core::duplicates::Shingles;
use murmur_core::EnrichedComment;
use sqlx::PgConnection;

use crate::StoreError;

/// How long an original stays a candidate, in days.
pub const COPY_WINDOW_DAYS: i32 = 7;
/// Each writer prunes the window's index once per this many batches (candidates older than the window are
/// ignored before that).
const PRUNE_EVERY: u64 = 256;

/// Counts a writer's batches, to prune the window now and then.
#[derive(Default)]
pub(crate) struct PruneClock(AtomicU64);

/// An original of the window that shares a band key with some comment of the batch.
#[derive(sqlx::FromRow)]
struct Candidate {
    source: String,
    id: String,
    text: String,
    bands: Vec<i64>,
}

/// For each comment of the batch, the `source/id` of the comment it copies (`None` for an original, or for
/// one already stored, whose row keeps its own); adds the batch's new originals to the window's index.
pub(crate) async fn find_copies(
    tx: &mut PgConnection,
    batch: &[EnrichedComment],
    clock: &PruneClock,
) -> Result<Vec<Option<String>>, StoreError> {
    if clock.0.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
        sqlx::query("DELETE FROM copy_bands WHERE seen_at < now() - make_interval(days => $1)")
            .bind(COPY_WINDOW_DAYS)
            .execute(&mut *tx)
            .await?;
    }
    let sources: Vec<&str> = batch.iter().map(|e| e.comment.source.as_str()).collect();
    let ids: Vec<&str> = batch.iter().map(|e| e.comment.id.as_str()).collect();
    let stored: HashSet<(String, String)> = sqlx::query_as(
        "SELECT c.source, c.id FROM comments c JOIN UNNEST($1::text[], $2::text[]) AS k(source, id) \
         ON (c.source, c.id) = (k.source, k.id)",
    )
    .bind(&sources)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    // The new comments long enough to be copies, with their band keys.
    let fresh: Vec<(usize, Shingles, [i64; murmur_core::duplicates::BANDS])> = batch
        .iter()
        .enumerate()
        .filter(|(_, e)| !stored.contains(&(e.comment.source.clone(), e.comment.id.clone())))
        .filter_map(|(i, e)| {
            let own = Shingles::of(&e.comment.text)?;
            let bands = own.bands();
            Some((i, own, bands))
        })
        .collect();
    let mut out = vec![None; batch.len()];
    if fresh.is_empty() {
        return Ok(out);
    }
    let wanted: Vec<i64> = fresh.iter().flat_map(|(_, _, bands)| bands.iter().copied()).collect();
    let candidates: Vec<Candidate> = sqlx::query_as(
        "SELECT b.source, b.id, c.text, array_agg(b.band) AS bands \
         FROM copy_bands b JOIN comments c ON (c.source, c.id) = (b.source, b.id) \
         WHERE b.band = ANY($1) AND b.seen_at >= now() - make_interval(days => $2) GROUP BY b.source, b.id, c.text ORDER BY min(b.seen_at), b.source, b.id",
    )
    .bind(&wanted)
    .bind(COPY_WINDOW_DAYS)
    .fetch_all(&mut *tx)
    .await?;
    let mut shingles: HashMap<usize, Option<Shingles>> = HashMap::new();
    // The batch's originals so far: (key, shingles, bands).
    let mut originals: Vec<(String, Shingles, [i64; murmur_core::duplicates::BANDS])> = Vec::new();
    for (i, own, bands) in fresh {
        let shares = |other: &[i64]| bands.iter().any(|b| other.contains(b));
        let earlier = candidates.iter().enumerate().find(|(k, c)| {
            shares(&c.bands)
                && shingles.entry(*k).or_insert_with(|| Shingles::of(&c.text)).as_ref().is_some_and(|s| s.is_copy(&own))
        });
        let copied = match earlier {
            Some((_, c)) => Some(format!("{}/{}", c.source, c.id)),
            None => originals.iter().find(|(_, s, b)| shares(b) && s.is_copy(&own)).map(|(key, _, _)| key.clone()),
        };
        match copied {
            Some(key) => out[i] = Some(key),
            None => {
                let c = &batch[i].comment;
                originals.push((format!("{}/{}", c.source, c.id), own, bands));
            }
        }
    }
    let mut rows: (Vec<i64>, Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new(), Vec::new());
    for (key, _, bands) in &originals {
        let (source, id) = key.split_once('/').unwrap_or((key, ""));
        for band in bands {
            rows.0.push(*band);
            rows.1.push(source);
            rows.2.push(id);
        }
    }
    sqlx::query("INSERT INTO copy_bands (band, source, id) SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[])")
        .bind(&rows.0)
        .bind(&rows.1)
        .bind(&rows.2)
        .execute(&mut *tx)
        .await?;
    Ok(out)
}
