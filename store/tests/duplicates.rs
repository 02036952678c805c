//! Near-duplicate clusters on the real Postgres, through the writer: copies across batches and within one
//! name their first copy, short phrases never do, a replay changes nothing, the state survives a new
//! connection (a restarted sink), and originals older than the window are no longer matched.

use chrono::Utc;
use murmur_core::testing::Fixture;
use murmur_core::EnrichedComment;
use murmur_store::{Postgres, COPY_WINDOW_DAYS};

fn comment(id: &str, text: &str) -> EnrichedComment {
    Fixture::new("twitter", id, text, Utc::now()).build()
}

/// `duplicate_of` and the cluster size of each comment, as `GET /v1/comments/…` shows them.
async fn cluster(postgres: &Postgres, id: &str) -> (Option<String>, i64) {
    let stored = postgres.get_comment("twitter", id, false).await.expect("read").expect("stored");
    (stored.duplicate_of, stored.copies)
}

#[tokio::test]
async fn copies_name_their_first_copy_across_batches_restarts_and_within_the_window() {
    let postgres = murmur_store::testing::fresh_database("duplicates").await.expect("postgres (infra/postgres.sh)");
    let brady = "I made a #deflategate sad Einstein Brady for you http://t.co/abc";
    postgres
        .upsert_batch(&[
            comment("a1", brady),
            comment("u1", "my flight to boston was cancelled again, third time this month"),
            comment("s1", "thank you so much"),
        ])
        .await
        .expect("first batch");
    let second = [
        comment("a2", &format!("RT @fan: {brady}")),
        comment("a3", "I made a #deflategate sad Einstein Brady for you _ lol"),
        comment("s2", "Thank you so much!"),
        comment("u2", "Win a free iPhone 15, click now, offer ends at midnight"),
        comment("u3", "Win a free iPhone 16, click now, offer ends at midnight http://spam.example/x"),
    ];
    postgres.upsert_batch(&second).await.expect("second batch");
    let a1 = Some("twitter/a1".to_owned());
    assert_eq!(cluster(&postgres, "a2").await, (a1.clone(), 0));
    assert_eq!(cluster(&postgres, "a3").await, (a1.clone(), 0));
    assert_eq!(cluster(&postgres, "a1").await, (None, 2), "the first copy counts its cluster");
    assert_eq!(cluster(&postgres, "u3").await, (Some("twitter/u2".into()), 0), "a copy within one batch");
    assert_eq!(cluster(&postgres, "s2").await, (None, 0), "a short phrase is nobody's copy");
    assert_eq!(cluster(&postgres, "u1").await, (None, 0));
    let bands = |postgres: Postgres| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM copy_bands").fetch_one(postgres.pool()).await.expect("count")
    };
    let indexed = bands(postgres.clone()).await;
    assert_eq!(indexed, 3 * murmur_core::duplicates::BANDS as i64, "only originals (a1, u1, u2) are indexed");

    // A replay is not a copy of itself, and adds nothing.
    postgres.upsert_batch(&second).await.expect("replay");
    assert_eq!(cluster(&postgres, "a2").await, (a1.clone(), 0));
    assert_eq!(cluster(&postgres, "u2").await, (None, 1));
    assert_eq!(bands(postgres.clone()).await, indexed);

    // A restarted writer (a new connection) still knows the originals.
    let url_db = murmur_store::testing::database("duplicates", false).await.expect("reconnect");
    url_db.upsert_batch(&[comment("a4", &format!("RT @other: RT @fan: {brady}"))]).await.expect("after restart");
    assert_eq!(cluster(&url_db, "a4").await, (a1.clone(), 0));

    // Past the window an original is no longer matched: the next copy starts a cluster of its own.
    sqlx::query("UPDATE copy_bands SET seen_at = now() - make_interval(days => $1 + 1) WHERE id = 'a1'")
        .bind(COPY_WINDOW_DAYS)
        .execute(url_db.pool())
        .await
        .expect("age");
    url_db.upsert_batch(&[comment("a5", brady)]).await.expect("late copy");
    assert_eq!(cluster(&url_db, "a5").await, (None, 0));
}
