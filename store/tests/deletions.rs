//! Deletions and erasures against the real Postgres: a deleted comment leaves every table and rollup and its
//! key is remembered; an erasure finds its author's comments page by page, counts each once, and forgets the
//! author's arrivals while its window lasts.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use murmur_core::{Comment, CommentId, EnrichedComment, Enrichment};
use murmur_store::Postgres;

fn comment(id: &str, author: &str) -> EnrichedComment {
    EnrichedComment::new(
        Comment {
            source: "twitter".into(),
            id: id.into(),
            author: Some(author.into()),
            text: format!("comment {id} by {author}"),
            created_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("date"),
            lang: None,
            url: None,
            tags: vec!["pixel".into()],
            metadata: serde_json::Map::new(),
        },
        Enrichment::embedding_only("m", vec![1.0, 0.0]),
    )
}

fn id(id: &str) -> CommentId {
    CommentId::new("twitter", id).expect("valid")
}

async fn scalar(store: &Postgres, sql: &str) -> i64 {
    store.fold_rollups().await.expect("fold");
    sqlx::query_scalar(sql).fetch_one(store.pool()).await.expect(sql)
}

#[tokio::test]
async fn a_deleted_comment_leaves_every_table_and_its_key_is_remembered() {
    let store = murmur_store::testing::fresh_database("st_deletions").await.expect("postgres");
    let batch = [comment("1", "a_x"), comment("2", "a_x"), comment("3", "a_y")];
    store.upsert_batch(&batch).await.expect("stored");
    assert_eq!(store.delete_comments(&[id("1"), id("9")]).await.expect("deleted"), 1, "one of the two was stored");
    assert_eq!(store.delete_comments(&[id("1")]).await.expect("again"), 0, "deleting twice is harmless");
    assert_eq!(scalar(&store, "SELECT count(*) FROM comments").await, 2);
    let rolled = "SELECT sum(comments)::int8 FROM rollups WHERE kind = 'tag' AND key = 'pixel' AND grain = 'day'";
    assert_eq!(scalar(&store, rolled).await, 2, "the rollups lost its count");
    assert_eq!(scalar(&store, "SELECT count(*) FROM deletions").await, 2, "both keys are remembered");
    let forgotten = store.forgotten_comments(&batch).await.expect("ledger");
    assert_eq!(forgotten, [true, false, false], "a replay of comment 1 is not stored again");
    // A key deleted before its comment ever arrived: the comment is not stored when it does.
    assert_eq!(store.forgotten_comments(&[comment("9", "a_z")]).await.expect("ledger"), [true]);
}

#[tokio::test]
async fn an_erasure_sweeps_its_authors_comments_twice_counts_each_once_and_forgets_arrivals() {
    let store = murmur_store::testing::fresh_database("st_erasures").await.expect("postgres");
    let mut batch: Vec<EnrichedComment> = (0..5).map(|i| comment(&format!("x{i}"), "a_x")).collect();
    batch.push(comment("y0", "a_y"));
    store.upsert_batch(&batch).await.expect("stored");

    let erasure = store.start_erasure("twitter", "a_x", Duration::from_secs(3600)).await.expect("recorded");
    assert_eq!((erasure.status.as_str(), erasure.comments), ("sweeping", 0));
    let arriving = [comment("x9", "a_x"), comment("y9", "a_y")];
    assert_eq!(store.forgotten_comments(&arriving).await.expect("ledger"), [true, false], "the author's arrivals");

    // First sweep, pages of 3: x0-x2, then x3-x4; the eraser remembers each page, then moves the cursor.
    let mut pages = Vec::new();
    loop {
        let now = store.next_erasure().await.expect("read").expect("work to do");
        let page = store.erasure_page(&now, 3).await.expect("page");
        let Some(last) = page.last() else {
            store.end_sweep(&now, Duration::ZERO).await.expect("ended");
            break;
        };
        store.remember_deleted(&page, Some(now.id)).await.expect("remembered");
        assert!(store.advance_erasure(&now, &last.id).await.expect("moved"));
        assert!(!store.advance_erasure(&now, &last.id).await.expect("read"), "a second eraser's move is refused");
        pages.push(page.into_iter().map(|c| c.id).collect::<Vec<_>>());
    }
    assert_eq!(pages, [vec!["x0", "x1", "x2"], vec!["x3", "x4"]]);
    let settling = store.erasure(erasure.id).await.expect("read").expect("present");
    assert_eq!((settling.status.as_str(), settling.comments), ("settling", 5));

    // The sinks have deleted three; a comment whose write was under way comes in late.
    store.delete_comments(&[id("x0"), id("x1"), id("x2")]).await.expect("deleted");
    store.upsert_batch(&[comment("x5", "a_x")]).await.expect("late");
    let now = store.next_erasure().await.expect("read").expect("settled (no wait)");
    assert!(store.resume_sweep(&now).await.expect("resumed"));
    let now = store.next_erasure().await.expect("read").expect("sweeping");
    let page = store.erasure_page(&now, 10).await.expect("page");
    let ids: Vec<&str> = page.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["x3", "x4", "x5"], "tombstoned but not yet deleted, and the late one");
    assert_eq!(store.remember_deleted(&page, Some(now.id)).await.expect("remembered"), 1, "only x5 is new");
    assert!(store.advance_erasure(&now, "x5").await.expect("moved"));
    let now = store.next_erasure().await.expect("read").expect("sweeping");
    assert!(store.erasure_page(&now, 10).await.expect("page").is_empty());
    store.end_sweep(&now, Duration::ZERO).await.expect("ended");
    let done = store.erasure(erasure.id).await.expect("read").expect("present");
    assert_eq!((done.status.as_str(), done.comments), ("done", 6), "each comment counted once");
    assert!(done.finished_at.is_some());
    assert!(store.next_erasure().await.expect("read").is_none());
    let audit = "SELECT count(*) FROM erasures WHERE row_to_json(erasures)::text LIKE '%a_y%'";
    assert_eq!(scalar(&store, audit).await, 0, "the audit row names only its own author's pseudonym");
}

#[tokio::test]
async fn a_deleted_comment_is_unquoted_from_stored_reports_and_alerts() {
    let store = murmur_store::testing::fresh_database("st_unquote").await.expect("postgres");
    store.upsert_batch(&[comment("1", "a_x"), comment("2", "a_y"), comment("3", "a_z")]).await.expect("stored");
    let quote =
        |id: &str| serde_json::json!({"source": "twitter", "id": id, "text": format!("comment {id} says <hi>")});
    let report = murmur_store::NewReport {
        schedule_id: None,
        name: "weekly".into(),
        window_from: Utc::now(),
        window_to: Utc::now(),
        json: serde_json::json!({"slices": [{"spikes": [{"examples": [quote("1"), quote("2"), quote("3")]}]}]}),
        html: Some("<li>comment 1 says &lt;hi&gt;</li><li>comment 2 says &lt;hi&gt;</li>".into()),
        csv: None,
        webhook: false,
    };
    let id = store.insert_report(&report).await.expect("stored report");
    // 1 deleted by a tombstone; 2 by an erasure (remembered as the erasure's first).
    let erasure = store.start_erasure("twitter", "a_y", Duration::from_secs(60)).await.expect("erasure");
    store.remember_deleted(&[CommentId::new("twitter", "2").expect("id")], Some(erasure.id)).await.expect("marked");
    store.delete_comments(&[CommentId::new("twitter", "1").expect("id")]).await.expect("deleted");
    store.delete_comments(&[CommentId::new("twitter", "2").expect("id")]).await.expect("deleted");
    let stored = store.report(id).await.expect("read").expect("present");
    let body = stored.body_json.expect("json");
    let texts: Vec<&str> = body["slices"][0]["spikes"][0]["examples"]
        .as_array()
        .expect("examples")
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(texts, ["removed", "removed at the author's request", "comment 3 says <hi>"]);
    assert_eq!(
        stored.body_html.as_deref(),
        Some("<li>removed</li><li>removed at the author&#39;s request</li>"),
        "the page too"
    );
    assert_eq!(scalar(&store, "SELECT count(*) FROM quotes").await, 1, "only comment 3's quote is left to find");

    let rule = store.create_alert_rule("acme", &serde_json::json!({}), 60).await.expect("rule");
    let alert = murmur_store::NewAlert {
        rule_id: rule.id,
        bucket_start: Utc::now(),
        bucket_end: Utc::now(),
        body: serde_json::json!({"examples": [quote("3")]}),
        text: "Acme volume 40 (expected 3)\n> comment 3 says <hi>".into(),
        webhook: false,
    };
    store.claim_alert(&alert).await.expect("stored").expect("claimed");
    store.delete_comments(&[CommentId::new("twitter", "3").expect("id")]).await.expect("deleted");
    let alerts = store.alerts(None, 10).await.expect("alerts");
    assert_eq!(alerts[0].body["examples"][0]["text"], "removed");
    assert_eq!(alerts[0].text, "Acme volume 40 (expected 3)\n> removed", "the chat line too");
    let texts = store.report(id).await.expect("read").expect("present").body_json.expect("json").to_string();
    assert!(texts.contains("\"removed\"") && !texts.contains("comment 3"), "and the report's quote of it: {texts}");
}
