//! Erasing an author on real components: 100,000 comments through a real broker, `murmur worker` (stub
//! models: this breaks the plumbing, as `tests/faults.rs` does), `murmur sink` and `murmur serve` with
//! PostgreSQL and the index; one author wrote 500 of them on one source (and 50 more on another, which are
//! theirs under another pseudonym and stay). `POST /v1/erasure` removes exactly those 500 from Postgres, the
//! index and the rollups, also when the sink is killed with -9 in the middle and restarted; the author's
//! comments arriving after the request are erased on arrival; the audit row never holds the handle.
//! `MURMUR_ERASURE_COMMENTS` lowers the count for a quick local run.

mod common;

use std::time::{Duration, Instant};

use common::brokers;
use common::pipeline::{assert_rollups_equal_raw, count, indexed, tweets, wait_for_rows, Messages, Pipeline};
use serde_json::{json, Value};
use sqlx::PgPool;

const ADMIN_KEY: &str = "erasure-admin-key-0123456789";
const HANDLE: &str = "@erase.me";
const ERASED: usize = 500;
const ELSEWHERE: usize = 50;
const LATE: usize = 20;

fn comments_per_run() -> usize {
    std::env::var("MURMUR_ERASURE_COMMENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000)
}

fn message(source: &str, id: &str, author: &str, text: &str) -> (Option<String>, Vec<u8>) {
    let comment = json!({"id": id, "source": source, "author": author, "text": text,
                         "created_at": "2026-10-02T12:00:00Z", "tags": ["acme"]});
    (Some(format!("{source}/{id}")), comment.to_string().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_an_author_removes_exactly_their_comments_also_when_the_sink_is_killed_midway() {
    let n = comments_per_run();
    let tweets = tweets();
    let every = n / ERASED;
    let mut messages: Messages = (0..n)
        .map(|i| {
            let author = if i % every == 3 { HANDLE.to_owned() } else { format!("author{}", i % 997) };
            message("twitter", &format!("c{i}"), &author, &tweets[i % tweets.len()])
        })
        .collect();
    messages.extend((0..ELSEWHERE).map(|i| message("reviews", &format!("r{i}"), HANDLE, &tweets[i])));

    let database_url = common::fresh_database("it_erasure").await;
    let mut pipeline = Pipeline::new("erasure", brokers(), database_url.clone(), 4).await;
    pipeline.start("worker", Some("w0"));
    let mut sink = pipeline.start("sink", Some("s0"));
    let (_, base) = pipeline.start_serve(vec![
        ("MURMUR_API_KEYS", format!("admin:{ADMIN_KEY}")),
        ("MURMUR_NO_ENRICH", "1".into()),
        ("MURMUR_ERASURE_PAGE", "50".into()),
        ("MURMUR_ERASURE_SETTLE_SECONDS", "2".into()),
    ]);
    pipeline.produce_paced(messages, 20, Duration::from_millis(100)).await.expect("produced");
    wait_for_rows(&database_url, (n + ELSEWHERE) as i64).await;
    let pool = PgPool::connect(&database_url).await.expect("connect");
    let client = reqwest::Client::new();
    let post = |body: Value| client.post(format!("{base}/v1/erasure")).header("x-api-key", ADMIN_KEY).json(&body);

    // Bad requests say what is wrong.
    for (body, expected) in [
        (json!({"source": "twitter", "author": ""}), "author: expected 1-256 bytes"),
        (json!({"source": "Twitter", "author": HANDLE}), "source \"Twitter\""),
        (json!({"source": "twitter", "author": HANDLE, "handle": "x"}), "unknown field `handle`"),
    ] {
        let refused = post(body.clone()).send().await.expect("API");
        assert_eq!(refused.status().as_u16(), 400, "{body}");
        let refused: Value = refused.json().await.expect("JSON");
        assert!(refused["error"]["message"].as_str().unwrap_or("").contains(expected), "{body}: {refused}");
    }
    let missing = client.get(format!("{base}/v1/erasure/424242")).header("x-api-key", ADMIN_KEY).send().await;
    assert_eq!(missing.expect("API").status().as_u16(), 404);

    // A stored report quotes one of theirs (c3) and someone else's (c4).
    let quote = |id: &str| json!({"source": "twitter", "id": id, "text": tweets[id[1..].parse::<usize>().expect("n")]});
    let report: i64 = sqlx::query_scalar(
        "INSERT INTO reports (name, window_from, window_to, body_json) VALUES ('brief', now(), now(), $1) RETURNING id",
    )
    .bind(json!({"slices": [{"spikes": [{"examples": [quote("c3"), quote("c4")]}]}]}))
    .fetch_one(&pool)
    .await
    .expect("report");

    let accepted = post(json!({"source": "twitter", "author": HANDLE})).send().await.expect("API");
    assert_eq!(accepted.status().as_u16(), 202);
    let erasure: Value = accepted.json().await.expect("JSON");
    let (id, pseudonym) = (erasure["id"].as_i64().expect("id"), erasure["author"].as_str().expect("author").to_owned());
    assert!(pseudonym.starts_with("a_") && !pseudonym.contains("erase"), "{erasure}");
    let theirs = format!("SELECT count(*) FROM comments WHERE source = 'twitter' AND author = '{pseudonym}'");
    assert_eq!(count(&pool, &theirs).await, ERASED as i64, "the pseudonym is the one the worker stored");
    let status = || async {
        let url = format!("{base}/v1/erasure/{id}");
        let response = client.get(url).header("x-api-key", ADMIN_KEY).send().await.expect("API");
        response.json::<Value>().await.expect("JSON")
    };

    // Midway (some pages tombstoned or some comments deleted), the sink dies; the author writes on meanwhile.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (tombstoned, left) = (status().await["comments"].as_i64().unwrap_or(0), count(&pool, &theirs).await);
        if tombstoned >= 150 || left < ERASED as i64 {
            eprintln!("kill -9 of the sink with {tombstoned} comments tombstoned and {left} of {ERASED} left");
            break;
        }
        assert!(Instant::now() < deadline, "the erasure never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pipeline.procs.stop(&sink);
    let late: Messages = (0..LATE)
        .flat_map(|i| {
            [
                message("twitter", &format!("late{i}"), HANDLE, "still writing after the request"),
                message("twitter", &format!("other{i}"), "someone-else", "a comment by someone else"),
            ]
        })
        .collect();
    pipeline.produce_paced(late, 1, Duration::ZERO).await.expect("produced");
    tokio::time::sleep(Duration::from_secs(1)).await;
    sink = pipeline.start("sink", Some("s0"));

    let expected = (n + ELSEWHERE + LATE - ERASED) as i64;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        pipeline.procs.assert_running();
        let done = status().await;
        let rows = count(&pool, "SELECT count(*) FROM comments").await;
        let docs = indexed(&pipeline.index_dir());
        if done["status"] == "done" && rows == expected && docs == expected as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "{rows} rows, {docs} documents of {expected}; erasure {done}; {sink}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // nothing more arrives
    let done = status().await;
    assert_eq!((&done["status"], &done["comments"]), (&json!("done"), &json!(ERASED)), "{done}");
    assert!(done["finished_at"].is_string(), "{done}");
    assert_eq!(count(&pool, "SELECT count(*) FROM comments").await, expected);
    assert_eq!(indexed(&pipeline.index_dir()), expected as u64, "the index lost exactly the same");
    assert_eq!(count(&pool, &theirs).await, 0, "none of theirs on twitter, the late ones included");
    let elsewhere = "SELECT count(*) FROM comments WHERE source = 'reviews'";
    assert_eq!(count(&pool, elsewhere).await, ELSEWHERE as i64, "theirs on another source are not this erasure's");
    assert_eq!(count(&pool, "SELECT count(*) FROM comments WHERE id LIKE 'other%'").await, LATE as i64);
    let erased_keys = format!("SELECT count(*) FROM deletions WHERE erasure = {id}");
    assert_eq!(count(&pool, &erased_keys).await, ERASED as i64);
    let late_keys = "SELECT count(*) FROM deletions WHERE id LIKE 'late%'";
    assert_eq!(count(&pool, late_keys).await, LATE as i64, "the late ones are remembered too");
    let handle = format!("SELECT count(*) FROM erasures WHERE row_to_json(erasures)::text LIKE '%{}%'", &HANDLE[1..]);
    assert_eq!(count(&pool, &handle).await, 0, "the audit never holds the handle");
    assert_rollups_equal_raw(&pool).await;
    let quotes: Vec<String> = sqlx::query_scalar(
        "SELECT e ->> 'text' FROM reports, jsonb_array_elements(body_json #> '{slices,0,spikes,0,examples}') e \
         WHERE id = $1",
    )
    .bind(report)
    .fetch_all(&pool)
    .await
    .expect("quotes");
    assert_eq!(quotes, ["removed at the author's request", tweets[4].as_str()], "the stored report's quote of theirs");

    let metrics = client.get(format!("{base}/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("murmur_erasure_requests_total 1"), "{metrics}");
    assert!(metrics.contains(&format!("murmur_erased_comments_total {ERASED}")), "{metrics}");
}
