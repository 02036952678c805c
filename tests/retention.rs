//! Retention on real components (a real broker, `murmur worker` with stub models, `murmur sink`, PostgreSQL
//! and the index): with `MURMUR_RETENTION_DAYS=5`, comments created more than five days ago leave Postgres and
//! the index while newer ones keep arriving, and exactly the newer ones stay; by default the rollups keep the
//! old comments' counts, with `MURMUR_RETENTION_DROP_ROLLUPS` they lose them (rollups equal a recount);
//! `MURMUR_MINUTE_ROLLUP_DAYS` drops minute rows past its horizon and keeps hours and days. (That ingest keeps
//! its rate while retention runs is measured in `murmur-bench retention`, not here.)

mod common;

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, TimeDelta, Utc};
use common::brokers;
use common::pipeline::{assert_rollups_equal_raw, count, fold_rollups, indexed, Messages, Pipeline};
use serde_json::json;
use sqlx::PgPool;

const OLD: usize = 3_000;
const NEW: usize = 3_000;

/// `n` comments from `days` ago (a second apart), ids `prefix0…`.
fn comments(prefix: &str, n: usize, days: i64) -> Messages {
    let start = Utc::now() - TimeDelta::days(days);
    (0..n)
        .map(|i| {
            let created = (start + TimeDelta::seconds(i as i64)).to_rfc3339_opts(SecondsFormat::Secs, true);
            let comment = json!({"id": format!("{prefix}{i}"), "source": "twitter", "author": format!("a{}", i % 50),
                                 "text": format!("comment {i} about the acme phone"), "created_at": created,
                                 "tags": ["acme"]});
            (Some(format!("twitter/{prefix}{i}")), comment.to_string().into_bytes())
        })
        .collect()
}

async fn scenario(name: &str, drop_rollups: bool) -> (Pipeline, PgPool) {
    let database_url = common::fresh_database(name).await;
    let mut pipeline = Pipeline::new(name, brokers(), database_url.clone(), 2).await;
    pipeline.start("worker", None);
    // The first sink stores everything (no retention); the second, started once the old comments are in,
    // runs retention while new comments keep coming.
    let sink = pipeline.start("sink", Some("s0"));
    pipeline.produce_paced(comments("old", OLD, 10), 1, Duration::ZERO).await.expect("produced");
    let pool = PgPool::connect(&database_url).await.expect("connect");
    wait(&pipeline, &pool, OLD as i64, "the old comments stored").await;
    pipeline.procs.stop(&sink);
    let mut settings = vec![
        ("MURMUR_RETENTION_DAYS", "5".to_owned()),
        ("MURMUR_RETENTION_EVERY_SECONDS", "1".to_owned()),
        ("MURMUR_MINUTE_ROLLUP_DAYS", "3".to_owned()),
        ("MURMUR_KAFKA_OPTIONS", format!("group.instance.id={}-s0", pipeline.run)),
    ];
    if drop_rollups {
        settings.push(("MURMUR_RETENTION_DROP_ROLLUPS", "1".to_owned()));
    }
    pipeline.start_sink_with(settings);
    pipeline.produce_paced(comments("new", NEW, 1), 10, Duration::from_millis(200)).await.expect("produced");
    wait(&pipeline, &pool, NEW as i64, "exactly the new comments left").await;
    (pipeline, pool)
}

/// Waits until Postgres and the index hold `n` comments, then a little longer (nothing more changes).
async fn wait(pipeline: &Pipeline, pool: &PgPool, n: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        // Until the sink has migrated the database, there is no table to count.
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM comments").fetch_one(pool).await.unwrap_or(-1);
        let docs = indexed(&pipeline.index_dir());
        if rows == n && docs == n as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "{what}: {rows} rows, {docs} documents");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(pool, "SELECT count(*) FROM comments").await, n, "{what}");
    assert_eq!(indexed(&pipeline.index_dir()), n as u64, "{what}: documents");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_exactly_the_comments_past_the_window_while_ingest_goes_on() {
    let (_kept, pool) = scenario("retention_keep", false).await;
    assert_eq!(count(&pool, "SELECT count(*) FROM comments WHERE id LIKE 'old%'").await, 0);
    fold_rollups(&pool).await;
    let day_totals = "SELECT coalesce(sum(comments), 0)::int8 FROM rollups WHERE kind = 'all' AND grain = 'day'";
    assert_eq!(count(&pool, day_totals).await, (OLD + NEW) as i64, "the trends keep the deleted comments' counts");
    let old_minutes = "SELECT count(*) FROM rollups WHERE grain = 'minute' AND bucket < now() - interval '3 days'";
    assert_eq!(count(&pool, old_minutes).await, 0, "minute rows past their horizon are gone");
    let old_hours = "SELECT coalesce(sum(comments), 0)::int8 FROM rollups \
                     WHERE kind = 'all' AND grain = 'hour' AND bucket < now() - interval '3 days'";
    assert_eq!(count(&pool, old_hours).await, OLD as i64, "hours stay");

    let (_dropped, pool) = scenario("retention_drop", true).await;
    fold_rollups(&pool).await;
    assert_eq!(count(&pool, day_totals).await, NEW as i64, "the trends lost the deleted comments' counts");
    assert_rollups_equal_raw(&pool).await;
}
