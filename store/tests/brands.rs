//! The brand catalogue on the real Postgres: changes, matching at write time, and re-matching the stored
//! comments after a change while a writer keeps storing comments; afterwards the rollups equal a recount.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use chrono::{DateTime, TimeDelta, Utc};
use murmur_core::testing::Fixture;
use murmur_core::{Brand, BrandMatcher, EnrichedComment, SentimentLabel};
use murmur_store::{BrandChange, Postgres, RematchProgress};

fn brand(name: &str, aliases: &[&str], exclusions: &[&str], group: &str) -> Brand {
    Brand {
        name: name.into(),
        aliases: aliases.iter().map(|s| (*s).to_owned()).collect(),
        exclusions: exclusions.iter().map(|s| (*s).to_owned()).collect(),
        group: Some(group.into()),
        ..Brand::default()
    }
}

const TEXTS: [&str; 6] = [
    "my iPhone froze again",
    "apple pie for dessert",
    "United lost my bag, Delta did not",
    "flying delta tomorrow",
    "the united states of coffee",
    "nothing to see here",
];

fn comment(i: usize, at: DateTime<Utc>) -> EnrichedComment {
    let sentiment = [SentimentLabel::Negative, SentimentLabel::Positive][i % 2];
    Fixture::new("s", format!("c{i}"), format!("{} #{i}", TEXTS[i % TEXTS.len()]), at + TimeDelta::minutes(i as i64))
        .sentiment(sentiment)
        .build()
}

/// Comments per brand and group key by the rollups (day grain, all sources).
async fn rolled(postgres: &Postgres) -> BTreeMap<String, i64> {
    postgres.fold_rollups().await.expect("fold");
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT kind, key, sum(comments)::bigint FROM rollups WHERE grain = 'day' \
         AND kind IN ('brand', 'brand_group') GROUP BY 1, 2 HAVING sum(comments) <> 0",
    )
    .fetch_all(postgres.pool())
    .await
    .expect("rollups");
    rows.into_iter().map(|(kind, key, n)| (format!("{kind}:{key}"), n)).collect()
}

/// The same counts recomputed from every stored comment's text with `catalogue`.
async fn recount(postgres: &Postgres, catalogue: &[Brand]) -> BTreeMap<String, i64> {
    let matcher = BrandMatcher::new(catalogue).expect("compiles");
    let texts: Vec<String> =
        sqlx::query_scalar("SELECT text FROM comments").fetch_all(postgres.pool()).await.expect("texts");
    let mut counts = BTreeMap::new();
    for text in texts {
        let hits = matcher.find(&text, Some(&[]));
        for key in hits
            .brands
            .iter()
            .map(|b| format!("brand:{b}"))
            .chain(hits.groups.iter().map(|g| format!("brand_group:{g}")))
        {
            *counts.entry(key).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_changes_rematch_stored_comments_while_ingest_goes_on() {
    let postgres = murmur_store::testing::fresh_database("brands").await.expect("postgres (infra/postgres.sh)");
    let apple = brand("Apple", &["iphone"], &["apple pie"], "Tech");
    assert_eq!(postgres.put_brand(&apple, true).await.expect("put"), BrandChange::Created);
    assert_eq!(postgres.put_brand(&apple, true).await.expect("put"), BrandChange::Exists);
    assert_eq!(postgres.put_brand(&apple, false).await.expect("put"), BrandChange::Unchanged);
    let bad = Brand { name: "a:b".into(), ..Brand::default() };
    assert!(postgres.put_brand(&bad, false).await.is_err(), "an invalid brand is refused");

    // Comments stored now are matched at write time with the one-brand catalogue.
    let start = DateTime::parse_from_rfc3339("2026-11-02T08:00:00Z").expect("time").to_utc();
    let first: Vec<EnrichedComment> = (0..300).map(|i| comment(i, start)).collect();
    for chunk in first.chunks(50) {
        postgres.upsert_batch(chunk).await.expect("store");
    }
    assert_eq!(rolled(&postgres).await, recount(&postgres, std::slice::from_ref(&apple)).await);
    assert_eq!(rolled(&postgres).await["brand:apple"], 50, "iPhone comments count, apple pie ones do not");

    // The catalogue changes (airlines added, Apple's exclusion dropped) while a writer keeps storing new
    // comments and re-storing old ones; one pass re-matches what was stored before the change.
    let writer = {
        let postgres = postgres.clone();
        tokio::spawn(async move {
            for round in 0..20 {
                let batch: Vec<EnrichedComment> = (300 + round * 30..330 + round * 30)
                    .map(|i| comment(i, start))
                    .chain((round * 10..round * 10 + 10).map(|i| comment(i, start)))
                    .collect();
                postgres.upsert_batch(&batch).await.expect("store while re-matching");
            }
        })
    };
    let catalogue = vec![
        brand("Apple", &["iphone"], &[], "Tech"),
        brand("United Airlines", &["united"], &["united states"], "Airlines"),
        brand("Delta", &[], &[], "Airlines"),
    ];
    for b in &catalogue {
        postgres.put_brand(b, false).await.expect("change");
    }
    let progress = RematchProgress::default();
    let changed = postgres.rematch_brands(&progress).await.expect("re-match").expect("a pass was due");
    writer.await.expect("writer");
    assert!(changed > 0, "stored comments moved to the new brands");
    assert!(progress.scanned.load(Ordering::Relaxed) >= 300);
    assert_eq!(postgres.rematch_brands(&progress).await.expect("re-match"), None, "nothing left to do");
    let catalogue_now = postgres.brand_catalogue().await.expect("catalogue");
    assert_eq!(catalogue_now.rematched_version, catalogue_now.version);
    assert_eq!(catalogue_now.brands.len(), 3);

    let counts = rolled(&postgres).await;
    assert_eq!(counts, recount(&postgres, &catalogue).await, "rollups equal a recount");
    assert_eq!(counts["brand:apple"], 300, "apple pie counts too now: 2 of the 6 texts, 900 comments");
    assert_eq!(counts["brand:united airlines"], 150, "'united states' stays excluded");
    assert_eq!(counts["brand_group:airlines"], 300, "a comment naming two airlines counts once for the group");
    let stored = postgres.get_comment("s", "c2", false).await.expect("read").expect("present");
    assert_eq!(stored.brands, ["delta", "united airlines"]);

    // Removing a brand takes its counts away once re-matched.
    assert!(postgres.delete_brand("delta").await.expect("delete"));
    assert!(!postgres.delete_brand("delta").await.expect("delete"), "already gone");
    postgres.rematch_brands(&progress).await.expect("re-match").expect("a pass was due");
    let counts = rolled(&postgres).await;
    assert!(!counts.contains_key("brand:delta"));
    assert_eq!(counts, recount(&postgres, &catalogue[..2]).await);
}
