//! Near-duplicate clusters on the real Postgres: the copy finder records each copy with the first-seen
//! original, across batches and across a restart of the finder; one finder leads at a time; the rollups count
//! a cluster once (`Duplicates::Once`) and every copy with `Include`, both equal to a recount of the raw rows,
//! also after a copy is re-enriched or its text edited.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use murmur_core::testing::Fixture;
use murmur_core::{EnrichedComment, SentimentLabel};
use murmur_store::{CopyFinder, CopyFinderOptions, CopyProgress, Dim, Duplicates, Grain, Original, Postgres};

const BATTERY: &str = "the new phone battery dies before lunch every single day, not happy";
const REFUND: &str = "Globex finally sent my refund after two weeks of emails, order 4411";
const CREW: &str = "great support from the airline crew on my flight home last night";

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().expect("valid") + TimeDelta::minutes(minute)
}

fn comment(id: &str, text: &str, minute: i64, sentiment: SentimentLabel, tag: &str) -> EnrichedComment {
    Fixture::new("twitter", id, text, at(minute)).sentiment(sentiment).tags([tag]).build()
}

fn options() -> CopyFinderOptions {
    CopyFinderOptions { tick: Duration::from_millis(50), ..CopyFinderOptions::default() }
}

/// Waits until every stored comment was compared.
async fn drained(postgres: &Postgres) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while postgres.copies_queued().await.expect("queue") > 0 {
        assert!(Instant::now() < deadline, "the copy finder did not drain its queue in 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn original_of(postgres: &Postgres, id: &str) -> Option<String> {
    let key = ("twitter".to_owned(), id.to_owned());
    let clusters = postgres.clusters(std::slice::from_ref(&key)).await.expect("clusters");
    clusters.get(&key).expect("stored").duplicate_of.as_ref().map(|Original { id, .. }| id.clone())
}

/// Comments, negative, neutral and positive over the whole day, all comments and tag `t`, as the rollups count
/// them and as a recount of the raw rows gives them (copies left out for `Once`).
async fn assert_counts_equal_recount(postgres: &Postgres) {
    for duplicates in [Duplicates::Once, Duplicates::Include] {
        for dim in [Dim::All, Dim::Tag("t".into())] {
            for grain in [Grain::Minute, Grain::Hour, Grain::Day] {
                let rows = postgres
                    .rollup_series(std::slice::from_ref(&dim), None, duplicates, grain, at(0), at(24 * 60))
                    .await
                    .expect("series");
                let rolled: Vec<(DateTime<Utc>, i64, i64, i64, i64)> =
                    rows.into_iter().map(|(_, b, c)| (b, c.comments, c.negative, c.neutral, c.positive)).collect();
                let keep = match duplicates {
                    Duplicates::Once => "NOT EXISTS (SELECT 1 FROM copies k WHERE k.source = c.source AND k.id = c.id)",
                    Duplicates::Include => "true",
                };
                let tag = match &dim {
                    Dim::Tag(t) => format!("'{t}' = ANY(c.tags)"),
                    _ => "true".into(),
                };
                let raw: Vec<(DateTime<Utc>, i64, i64, i64, i64)> = sqlx::query_as(&format!(
                    "SELECT date_trunc($1, c.created_at, 'UTC'), count(*), \
                     count(*) FILTER (WHERE c.sentiment = 'negative'), count(*) FILTER (WHERE c.sentiment = 'neutral'), \
                     count(*) FILTER (WHERE c.sentiment = 'positive') FROM comments c \
                     WHERE {keep} AND {tag} GROUP BY 1 ORDER BY 1"
                ))
                .bind(grain.as_str())
                .fetch_all(postgres.pool())
                .await
                .expect("recount");
                assert_eq!(rolled, raw, "{duplicates:?} {dim:?} by {grain:?}: rollups against a recount");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_are_found_across_batches_and_restarts_and_counted_once() {
    let postgres = murmur_store::testing::fresh_database("copies").await.expect("database");
    use SentimentLabel::{Negative, Neutral, Positive};
    postgres
        .upsert_batch(&[
            comment("a", BATTERY, 0, Negative, "t"),
            comment("b", REFUND, 1, Positive, "t"),
            comment("a-rt", &format!("RT @jo: {BATTERY}"), 2, Negative, "t"),
            comment("b-template", &REFUND.replace("4411", "9"), 3, Neutral, "u"),
            comment("short-1", "thanks so much", 4, Positive, "t"),
            comment("short-2", "thanks so much", 5, Positive, "t"),
        ])
        .await
        .expect("first batch");
    let (progress, finder) = CopyFinder::spawn(postgres.clone(), options());
    drained(&postgres).await;
    assert!(progress.leading.load(Ordering::Relaxed), "the only finder leads");
    assert_eq!(original_of(&postgres, "a-rt").await.as_deref(), Some("a"), "a retweet copies its original");
    assert_eq!(original_of(&postgres, "b-template").await.as_deref(), Some("b"), "a template varies a number");
    assert_eq!(original_of(&postgres, "short-2").await, None, "three words are nobody's copy");
    assert_eq!(original_of(&postgres, "a").await, None, "an original copies nothing");

    // A later batch: copies of earlier originals, and a new original.
    postgres
        .upsert_batch(&[
            comment("a-quote", &format!("{BATTERY} 😡 @maker"), 60, Positive, "t"),
            comment("c", CREW, 61, Positive, "t"),
        ])
        .await
        .expect("second batch");
    drained(&postgres).await;
    assert_eq!(original_of(&postgres, "a-quote").await.as_deref(), Some("a"));
    assert_eq!(original_of(&postgres, "c").await, None);
    assert_counts_equal_recount(&postgres).await;

    // A restarted finder rebuilds its originals from Postgres, and a second one waits for the lock.
    finder.abort();
    let (first, _first_task) = CopyFinder::spawn(postgres.clone(), options());
    let (second, _second_task) = CopyFinder::spawn(postgres.clone(), options());
    let deadline = Instant::now() + Duration::from_secs(30);
    let leaders = |a: &Arc<CopyProgress>, b: &Arc<CopyProgress>| {
        [a, b].iter().filter(|p| p.leading.load(Ordering::Relaxed)).count()
    };
    while leaders(&first, &second) == 0 {
        assert!(Instant::now() < deadline, "no finder took the lock after the first stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    postgres
        .upsert_batch(&[comment("c-rt", &format!("RT @crew: {CREW}"), 120, Negative, "t")])
        .await
        .expect("third batch");
    drained(&postgres).await;
    assert_eq!(original_of(&postgres, "c-rt").await.as_deref(), Some("c"), "found after a restart");
    assert_eq!(leaders(&first, &second), 1, "one finder leads at a time");
    let key = ("twitter".to_owned(), "a".to_owned());
    let clusters = postgres.clusters(std::slice::from_ref(&key)).await.expect("clusters");
    assert_eq!(clusters[&key].cluster_size, 3, "a, its retweet and its quote");

    // Re-enriched with another tag and sentiment, a copy stays a copy and its counts move; with its text
    // edited into something new, it is compared again and becomes an original.
    postgres.upsert_batch(&[comment("a-rt", &format!("RT @jo: {BATTERY}"), 2, Positive, "u")]).await.expect("update");
    drained(&postgres).await;
    assert_eq!(original_of(&postgres, "a-rt").await.as_deref(), Some("a"));
    assert_counts_equal_recount(&postgres).await;
    postgres
        .upsert_batch(&[comment("a-quote", "my order arrived broken and nobody answers the phone", 60, Negative, "t")])
        .await
        .expect("edit");
    drained(&postgres).await;
    assert_eq!(original_of(&postgres, "a-quote").await, None, "an edited copy is compared again");
    assert_counts_equal_recount(&postgres).await;

    let all = |d| postgres.rollup_series(&[Dim::All], None, d, Grain::Day, at(0), at(24 * 60));
    let once: i64 = all(Duplicates::Once).await.expect("once").iter().map(|r| r.2.comments).sum();
    let include: i64 = all(Duplicates::Include).await.expect("include").iter().map(|r| r.2.comments).sum();
    assert_eq!((once, include), (6, 9), "9 comments stored, 3 of them copies");
}
