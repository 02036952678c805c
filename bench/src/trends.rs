//! `murmur-bench trends`: the trend queries at scale. Loads `--comments` (default 1,000,000) generated
//! comments into a throwaway database through the sink's own write path (so the rollups are maintained as in
//! production), then times each trend query (p50/p99 over varied windows and slices) against the same answer
//! computed from the raw rows in the same run, checks both answers are equal, and prints a table. Also times
//! the write path with and without rollup maintenance.
//!
//! The comments: 90 days of traffic in arrival order (as a sink consumes a stream) from 4 sources; 0–2 of 20
//! brand tags (skewed: the first brands are the most talked about); 0–3 entity mentions drawn from 20,000 names
//! with a heavy tail (a few names are in many
//! comments, most in a handful), of four types; a sentiment (10% without); texts of tweet length. Embeddings
//! are 8-wide: no trend query reads them, and a 384-wide vector per comment would only slow the load.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Duration as TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use murmur_core::hash::Rng;
use murmur_core::testing::Fixture;
use murmur_core::{EnrichedComment, EntityLabel, SentimentLabel};
use murmur_search::{Access, IndexOptions, SearchIndex};
use murmur_store::testing::{self, raw_series};
use murmur_store::{Counts, Postgres};
use murmur_trends::{
    spike_episodes, spike_window, spikes_from, Bucketing, EntityQuery, Slice, SpikeParams, Trends, Unit, Window,
};

use clap::Args;

use crate::measure::percentile;

#[derive(Args)]
pub struct TrendsArgs {
    /// Comments loaded (into the throwaway database murmur_test_bench_trends).
    #[arg(long, default_value_t = 1_000_000)]
    pub comments: usize,
    /// Timed answers from the rollups per query kind.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Timed answers from the raw rows per query kind (slow: seconds each at a million comments).
    #[arg(long, default_value_t = 10)]
    pub raw_queries: usize,
    /// Comments written with and without rollup maintenance to compare the write path (0: skip).
    #[arg(long, default_value_t = 50_000)]
    pub write_sample: usize,
    /// Query the database a previous run loaded instead of loading it again (when it holds the comments).
    #[arg(long)]
    pub reuse: bool,
}

const SOURCES: [&str; 4] = ["twitter", "reddit", "app-store", "support"];
const BRANDS: usize = 20;
const NAMES: usize = 20_000;
const DAYS: i64 = 90;
const BATCH: usize = 2_000;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default()
}

fn brand(k: usize) -> String {
    format!("brand{k:02}")
}

/// Comment `i` of `total` spread over the days in arrival order (as a stream is consumed), with up to two
/// minutes of jitter; deterministic in `i` and the seed.
fn comment(i: usize, total: usize, rng: &mut Rng) -> EnrichedComment {
    let spacing = DAYS as f64 * 86_400.0 / total.max(1) as f64;
    let at = start() + TimeDelta::milliseconds((i as f64 * spacing * 1000.0) as i64 + rng.below(120_000) as i64);
    let skewed = |rng: &mut Rng, n: usize, power: i32| {
        let u = rng.unit();
        ((u.powi(power) * n as f64) as usize).min(n - 1)
    };
    let mut tags: Vec<String> = (0..rng.below(3)).map(|_| brand(skewed(rng, BRANDS, 2))).collect();
    tags.sort();
    tags.dedup();
    let mut text = format!("comment {i}: ");
    while text.len() < 90 + rng.below(60) {
        text.push_str(["the battery ", "support was ", "shipping took ", "love the ", "screen is "][rng.below(5)]);
    }
    let mentions: Vec<(EntityLabel, String)> = (0..rng.below(4))
        .map(|_| {
            let k = skewed(rng, NAMES, 4);
            (EntityLabel::ALL[k % 4], format!("Name{k}"))
        })
        .collect();
    let label = match rng.below(10) {
        0 => None,
        1..=4 => Some(SentimentLabel::Negative),
        5..=7 => Some(SentimentLabel::Neutral),
        _ => Some(SentimentLabel::Positive),
    };
    let source = SOURCES[rng.below(SOURCES.len())];
    let embedding = (0..8).map(|_| rng.normal()).collect();
    let mut fixture = Fixture::new(source, format!("b{i}"), text, at).tags(tags).model("bench").embedding(embedding);
    for (label, name) in &mentions {
        fixture = fixture.mention(*label, name);
    }
    if let Some(label) = label {
        fixture = fixture.sentiment(label);
    }
    fixture.build()
}

async fn load(postgres: &Postgres, from: usize, n: usize, total: usize, seed: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let mut last = Instant::now();
    let mut done = 0;
    while done < n {
        let batch: Vec<EnrichedComment> =
            (0..BATCH.min(n - done)).map(|k| comment(from + done + k, total, &mut rng)).collect();
        postgres.upsert_batch(&batch).await?;
        done += batch.len();
        if last.elapsed() >= Duration::from_secs(10) || done == n {
            let rate = done as f64 / started.elapsed().as_secs_f64();
            eprintln!("  stored {done}/{n} ({rate:.0} comments/s)");
            last = Instant::now();
        }
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Folds the rollup log (the deltas the writes logged) into the rollups; returns the comments folded a
/// second, `comments` being how many wrote them.
async fn fold(postgres: &Postgres, comments: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let deltas = postgres.fold_rollups().await?;
    let rate = comments as f64 / started.elapsed().as_secs_f64();
    eprintln!("  folded {deltas} rollup deltas of {comments} comments ({rate:.0} comments/s)");
    Ok(rate)
}

/// Entity counts from the raw rows, most mentioned first (ties by key), at most `limit`.
async fn raw_entities(
    postgres: &Postgres,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: usize,
) -> anyhow::Result<Vec<(String, i64)>> {
    let all = testing::raw_entities(postgres, from, to).await?;
    Ok(all.into_iter().take(limit).map(|(key, c)| (key, c.comments)).collect())
}

fn nonzero(points: &[murmur_trends::Point]) -> Vec<(DateTime<Utc>, Counts)> {
    points.iter().filter(|p| p.counts.comments > 0).map(|p| (p.start, p.counts)).collect()
}

struct Row {
    name: &'static str,
    rollups: Vec<Duration>,
    raw: Vec<Duration>,
    equal: bool,
}

/// Times `n` answers from the rollups and the first `raw_n` from the raw rows, on the same parameters, and
/// compares each pair.
async fn kind<P, T, G, A, AF, B, BF>(
    name: &'static str,
    (n, raw_n): (usize, usize),
    rng: &mut Rng,
    mut params: G,
    rollups: A,
    raw: B,
) -> anyhow::Result<Row>
where
    P: Clone,
    T: PartialEq + std::fmt::Debug,
    G: FnMut(&mut Rng) -> anyhow::Result<P>,
    A: Fn(P) -> AF,
    AF: Future<Output = anyhow::Result<T>>,
    B: Fn(P) -> BF,
    BF: Future<Output = anyhow::Result<T>>,
{
    let mut row = Row { name, rollups: Vec::new(), raw: Vec::new(), equal: true };
    for i in 0..n {
        let p = params(rng)?;
        let started = Instant::now();
        let got = rollups(p.clone()).await?;
        row.rollups.push(started.elapsed());
        if i < raw_n {
            let started = Instant::now();
            let expected = raw(p).await?;
            row.raw.push(started.elapsed());
            if got != expected {
                row.equal = false;
                eprintln!("  {name}: answers differ\n    rollups: {got:?}\n    raw: {expected:?}");
            }
        }
    }
    eprintln!("  {name}: measured");
    Ok(row)
}

/// A random window of `days` ending within the data, at a minute that is not on an hour.
fn window(rng: &mut Rng, days: i64) -> anyhow::Result<Window> {
    let latest = (DAYS - days) as usize;
    let end = start() + TimeDelta::days(days + rng.below(latest) as i64) + TimeDelta::minutes(rng.below(1440) as i64);
    Ok(Window::new(end - TimeDelta::days(days), end)?)
}

fn slice_of_tag(b: &str) -> Slice {
    Slice { tag: Some(b.to_owned()), ..Slice::default() }
}

pub async fn trends(args: TrendsArgs) -> anyhow::Result<()> {
    let postgres =
        murmur_store::testing::fresh_database("bench_trends").await.context("creating the bench database")?;
    let dir = tempfile::tempdir()?;
    let index = SearchIndex::open(dir.path(), Access::ReadWrite, IndexOptions::default())?;
    let trends = Trends::new(postgres.clone(), index);
    eprintln!("loading {} comments through the sink's write path (rollup deltas logged on write)", args.comments);
    let load_rate = load(&postgres, 0, args.comments, args.comments, 42).await?;
    let load_fold_rate = fold(&postgres, args.comments).await?;
    sqlx::query("VACUUM ANALYZE").execute(postgres.pool()).await?;
    let sizes: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM rollups), \
         pg_total_relation_size('rollups'), pg_total_relation_size('comments')",
    )
    .fetch_one(postgres.pool())
    .await?;

    let counts = (args.queries, args.raw_queries.min(args.queries));
    let mut rng = Rng::new(7);
    let (t, pg) = (&trends, &postgres);
    let hours = Bucketing { unit: Unit::Hour, tz: Tz::UTC };
    let days = Bucketing { unit: Unit::Day, tz: Tz::UTC };
    let paris = Bucketing { unit: Unit::Hour, tz: chrono_tz::Europe::Paris };
    let mut rows = Vec::new();

    rows.push(
        kind(
            "timeline: all comments, 7 days by hour",
            counts,
            &mut rng,
            |r| window(r, 7),
            |w| async move { Ok(nonzero(&t.timeline(&Slice::default(), w, hours).await?.points)) },
            |w| async move {
                let b = (hours.start(w.from), w.to);
                Ok(raw_series(pg, "true", "hour", "UTC", b.0, hours.next(hours.start(b.1 - TimeDelta::minutes(1))))
                    .await?)
            },
        )
        .await?,
    );
    rows.push(
        kind(
            "timeline: one brand, 90 days by day",
            counts,
            &mut rng,
            |r| Ok(brand(r.below(BRANDS))),
            |b| async move {
                let w = Window::new(start(), start() + TimeDelta::days(DAYS))?;
                Ok(nonzero(&t.timeline(&slice_of_tag(&b), w, days).await?.points))
            },
            |b| async move {
                let condition = format!("'{b}' = ANY(c.tags)");
                Ok(raw_series(pg, &condition, "day", "UTC", start(), start() + TimeDelta::days(DAYS)).await?)
            },
        )
        .await?,
    );
    rows.push(
        kind(
            "timeline: one entity, 7 days by hour, Europe/Paris",
            counts,
            &mut rng,
            |r| Ok((window(r, 7)?, r.below(200))),
            |(w, k)| async move {
                let slice =
                    Slice { entity: Some(format!("{}:name{k}", EntityLabel::ALL[k % 4].as_str())), ..Slice::default() };
                Ok(nonzero(&t.timeline(&slice, w, paris).await?.points))
            },
            |(w, k)| async move {
                let condition = format!(
                    "EXISTS (SELECT 1 FROM jsonb_array_elements(c.entities) m WHERE m->>'label' = '{}' \
                     AND m->>'name' = 'name{k}')",
                    EntityLabel::ALL[k % 4].as_str()
                );
                let from = paris.start(w.from);
                let to = paris.next(paris.start(w.to - TimeDelta::minutes(1)));
                Ok(raw_series(pg, &condition, "hour", "Europe/Paris", from, to).await?)
            },
        )
        .await?,
    );
    rows.push(
        kind(
            "share of voice: 5 brands, 30 days by day",
            counts,
            &mut rng,
            |r| Ok((window(r, 30)?, r.below(BRANDS - 5))),
            |(w, first)| async move {
                let slices: Vec<Slice> = (first..first + 5).map(|k| slice_of_tag(&brand(k))).collect();
                let series = t.share_of_voice(&slices, w, days).await?;
                Ok(series.iter().map(|s| s.comments).collect::<Vec<i64>>())
            },
            |(w, first)| async move {
                let mut out = Vec::new();
                for k in first..first + 5 {
                    let condition = format!("'{}' = ANY(c.tags)", brand(k));
                    let to = days.next(days.start(w.to - TimeDelta::minutes(1)));
                    let series = raw_series(pg, &condition, "day", "UTC", days.start(w.from), to).await?;
                    out.push(series.iter().map(|(_, c)| c.comments).sum());
                }
                Ok(out)
            },
        )
        .await?,
    );
    rows.push(
        kind(
            "top 20 entities, 7 days (hour edges)",
            counts,
            &mut rng,
            |r| window(r, 7),
            |w| async move {
                let top = t.top_entities(&EntityQuery { limit: 20, ..EntityQuery::default() }, w).await?;
                Ok(top
                    .iter()
                    .map(|e| (format!("{}:{}", e.label.map_or("", |l| l.as_str()), e.name), e.counts.comments))
                    .collect())
            },
            |w| async move {
                let w = w.for_entities();
                // Counted by name (the default ranking), ties by name as the rollups break them; each
                // generated name has one type, so its entity count is its name count.
                let mut all = raw_entities(pg, w.from, w.to, usize::MAX).await?;
                all.sort_by(|a, b| b.1.cmp(&a.1).then(name_of(&a.0).cmp(name_of(&b.0))));
                all.truncate(20);
                Ok(all)
            },
        )
        .await?,
    );
    rows.push(
        kind(
            "trending entities, 7 days vs the 7 before, min 20",
            counts,
            &mut rng,
            |r| window(r, 7),
            |w| async move {
                let list = t.trending_entities(&EntityQuery { limit: 20, ..EntityQuery::default() }, w, 20).await?;
                Ok(list
                    .iter()
                    .map(|e| (e.name.clone(), e.counts.comments, e.previous.unwrap_or(0)))
                    .collect::<Vec<_>>())
            },
            |w| async move {
                let w = w.for_entities();
                let now = raw_entities(pg, w.from, w.to, usize::MAX).await?;
                let before = raw_entities(pg, w.previous().from, w.previous().to, usize::MAX).await?;
                let before: std::collections::HashMap<String, i64> = before.into_iter().collect();
                let mut list: Vec<(String, i64, i64)> = now
                    .into_iter()
                    .map(|(key, c)| {
                        let p = before.get(&key).copied().unwrap_or(0);
                        (key, c, p)
                    })
                    .filter(|(_, c, p)| *c >= 20 && c > p)
                    .collect();
                let score = |c: i64, p: i64| (c - p) as f64 / ((c + p) as f64).sqrt();
                list.sort_by(|a, b| score(b.1, b.2).total_cmp(&score(a.1, a.2)).then(name_of(&a.0).cmp(name_of(&b.0))));
                list.truncate(20);
                Ok(list.into_iter().map(|(key, c, p)| (name_of(&key).to_owned(), c, p)).collect())
            },
        )
        .await?,
    );
    rows.push(
        kind(
            "spikes: one brand, 7 days by hour",
            counts,
            &mut rng,
            |r| Ok((window(r, 7)?, brand(r.below(BRANDS)))),
            |(w, b)| async move {
                let (timeline, spikes) = t.spikes(&slice_of_tag(&b), w, hours, SpikeParams::default(), 0).await?;
                Ok((nonzero(&timeline.points), spikes.len()))
            },
            |(w, b)| async move {
                let condition = format!("'{b}' = ANY(c.tags)");
                // The same history the service reads: the window widened back for the seasonal baseline.
                let read = spike_window(w, hours, SpikeParams::default());
                let to = hours.next(hours.start(w.to - TimeDelta::minutes(1)));
                let series = raw_series(pg, &condition, "hour", "UTC", hours.start(read.from), to).await?;
                let starts = hours.starts(read.from, read.to)?;
                let full: Vec<Counts> = starts
                    .iter()
                    .map(|at| series.iter().find(|(b, _)| b == at).map_or_else(Counts::default, |(_, c)| *c))
                    .collect();
                let shown_from = hours.start(w.from);
                let first = starts.partition_point(|s| *s < shown_from);
                let found = spikes_from(&full, first, SpikeParams::default(), Unit::Hour.season());
                let shown: Vec<_> = series.into_iter().filter(|(at, _)| *at >= shown_from).collect();
                Ok((shown, spike_episodes(&found).len()))
            },
        )
        .await?,
    );

    // The write path's cost of keeping rollups: the same kind of batches with the rollup triggers off. (The
    // comments without rollups stay out of the rollups: the database is for benchmarks only.)
    let sample = args.write_sample;
    let mut writes = Writes { logged: f64::NAN, folded: f64::NAN, bare: f64::NAN };
    if sample > 0 && !args.reuse {
        writes.logged = load(&postgres, args.comments, sample, args.comments, 43).await?;
        writes.folded = fold(&postgres, sample).await?;
        sqlx::query("ALTER TABLE comments DISABLE TRIGGER USER").execute(postgres.pool()).await?;
        writes.bare = load(&postgres, args.comments + sample, sample, args.comments, 44).await?;
        remove_from(&postgres, args.comments + sample).await?;
        sqlx::query("ALTER TABLE comments ENABLE TRIGGER USER").execute(postgres.pool()).await?;
        remove_from(&postgres, args.comments).await?;
    }
    print(&args, (load_rate, load_fold_rate), writes, sizes, &rows);
    Ok(())
}

/// Deletes the comments numbered `first` and up (what the write-path measurement added), so a later
/// `--reuse` finds the database as loaded.
async fn remove_from(postgres: &Postgres, first: usize) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM comments WHERE substr(id, 2)::int8 >= $1")
        .bind(first as i64)
        .execute(postgres.pool())
        .await?;
    Ok(())
}

fn name_of(key: &str) -> &str {
    key.split_once(':').map_or(key, |(_, name)| name)
}

/// Comments a second of the write-path sample: written with the rollup deltas logged, their deltas folded,
/// and written with the triggers off (the peer).
struct Writes {
    logged: f64,
    folded: f64,
    bare: f64,
}

fn print(args: &TrendsArgs, load: (f64, f64), writes: Writes, sizes: (i64, i64, i64), rows: &[Row]) {
    println!();
    println!("trend queries at {} comments ({} days, {} brands, {} entity names)", args.comments, DAYS, BRANDS, NAMES);
    println!(
        "load (sink upsert, rollup deltas logged, batches of {BATCH}): {:.0} comments/s; then folded at {:.0} comments/s",
        load.0, load.1
    );
    if writes.logged > 0.0 && writes.bare > 0.0 {
        // One after the other on the same cores: what the rollups cost in all, wherever the fold runs.
        let both = 1.0 / (1.0 / writes.logged + 1.0 / writes.folded);
        println!(
            "write path on {} more comments: {:.0} comments/s with the rollup log, {:.0} without ({:.2}× slower with); \
             folding their deltas {:.0} comments/s; writing and folding one after the other {:.0} comments/s \
             ({:.2}× slower than without)",
            args.write_sample,
            writes.logged,
            writes.bare,
            writes.bare / writes.logged,
            writes.folded,
            both,
            writes.bare / both
        );
    } else {
        println!("write path: not measured (--write-sample 0 or --reuse)");
    }
    println!(
        "rollups: {} rows, {:.0} MB; raw comments (with their enrichment and embedding): {:.0} MB",
        sizes.0,
        sizes.1 as f64 / 1e6,
        sizes.2 as f64 / 1e6
    );
    println!();
    println!("| query | rollups p50 / p99 ms | raw rows p50 / p99 ms | raw / rollups (p50) | same answer |");
    println!("|---|---|---|---|---|");
    for row in rows {
        let mut a = row.rollups.clone();
        let mut b = row.raw.clone();
        a.sort();
        b.sort();
        println!(
            "| {} | {:.2} / {:.2} | {:.1} / {:.1} | {:.0}× | {} |",
            row.name,
            percentile(&a, 0.5),
            percentile(&a, 0.99),
            percentile(&b, 0.5),
            percentile(&b, 0.99),
            percentile(&b, 0.5) / percentile(&a, 0.5),
            if row.equal { "yes" } else { "NO" }
        );
    }
}
