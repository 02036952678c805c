//! Deleting a comment through the real pipeline (tansu, `murmur worker` with the real models, `murmur sink`,
//! Postgres, the index, `murmur serve` over HTTP): a tombstone on the comments topic and an admin's
//! `DELETE /v1/comments/{source}/{id}` each remove the comment from SQL, BM25, semantic and hybrid search,
//! comment lookup and the trend counts (rollups equal a recount), and a replay of the older messages does not
//! bring either back.

mod common;

use std::time::{Duration, Instant};

use common::pipeline::{assert_rollups_equal_raw, count};
use common::{create_topics, free_port, fresh_database, keyed, produce, producer, role_env, Processes};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use serde_json::{json, Value};
use sqlx::PgPool;

const ADMIN_KEY: &str = "deletion-admin-key-0123456789";

/// (id, text): the first two are deleted, the rest stay.
const COMMENTS: [(&str, &str); 8] = [
    ("t1", "The airline lost my suitcase on the flight to Denver"),
    ("t2", "My espresso machine leaks water all over the kitchen counter"),
    ("k1", "The new phone battery lasts two full days"),
    ("k2", "Customer support answered my refund question quickly"),
    ("k3", "This laptop keyboard feels cheap and rattles"),
    ("k4", "The hotel breakfast was cold and the coffee bitter"),
    ("k5", "Great concert last night, the band was amazing"),
    ("k6", "The delivery arrived three days late and the box was crushed"),
];

fn comment(id: &str, text: &str) -> Value {
    json!({"id": id, "source": "twitter", "author": "someone", "text": text,
           "created_at": "2026-11-20T12:00:00Z", "tags": ["acme"]})
}

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn get(&self, path: &str) -> (u16, Value) {
        let response =
            self.client.get(format!("{}{path}", self.base)).header("x-api-key", ADMIN_KEY).send().await.expect("API");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The ids a search returns, in order.
    async fn search(&self, mode: &str, q: &str) -> Vec<String> {
        let (status, body) = self.get(&format!("/v1/search?mode={mode}&limit=20&q={}", q.replace(' ', "+"))).await;
        assert_eq!(status, 200, "{mode} {q}: {body}");
        body["hits"].as_array().expect("hits").iter().filter_map(|h| h["id"].as_str().map(str::to_owned)).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_and_an_api_delete_remove_a_comment_everywhere_and_a_replay_does_not_bring_it_back() {
    let run = format!("dl{}x{}", std::process::id(), chrono::Utc::now().timestamp_millis());
    let topics = [format!("{run}.comments"), format!("{run}.enriched"), format!("{run}.dlq")];
    // One partition: the order of the topic is the order of processing, so "a later comment is stored" means
    // "the replays before it were handled".
    create_topics(&topics, 1).await;
    let database_url = fresh_database("it_deletion").await;
    let work = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut env = role_env(&run, &topics, &database_url, &work.path().join("index"), port);
    env.push(("MURMUR_API_KEYS", format!("admin:{ADMIN_KEY}")));
    let mut procs = Processes(Vec::new());
    procs.spawn("worker", &["worker"], &env, work.path());
    procs.spawn("sink", &["sink"], &env, work.path());
    procs.spawn("serve", &["serve"], &env, work.path());
    let api = Api { base: format!("http://127.0.0.1:{port}"), client: reqwest::Client::new() };

    let originals: Vec<Value> = COMMENTS.iter().map(|(id, text)| comment(id, text)).collect();
    produce(&producer(), &topics[0], &keyed(&originals)).await;
    let pool = PgPool::connect_lazy(&database_url).expect("pool");
    wait_until("8 comments stored and searchable", &mut procs, || async {
        let rows = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM comments").fetch_one(&pool).await.unwrap_or(0);
        rows == 8 && api.get("/v1/search?q=*").await.1["total"] == 8
    })
    .await;
    // Before: each is found every way.
    let (semantic_t1, semantic_t2) = ("my baggage went missing at the airport", "coffee maker dripping water");
    assert_eq!(api.search("bm25", "suitcase").await, ["t1"]);
    assert_eq!(api.search("bm25", "espresso").await, ["t2"]);
    assert_eq!(api.search("semantic", semantic_t1).await.first().map(String::as_str), Some("t1"));
    assert_eq!(api.search("semantic", semantic_t2).await.first().map(String::as_str), Some("t2"));
    assert_eq!(api.search("hybrid", "lost suitcase").await.first().map(String::as_str), Some("t1"));

    // t1 by a tombstone on the comments topic, t2 by the API (admin only).
    let tombstone: FutureRecord<'_, str, [u8]> = FutureRecord::to(&topics[0]).key("twitter/t1");
    producer().send(tombstone, Timeout::After(Duration::from_secs(30))).await.map_err(|(e, _)| e).expect("tombstone");
    let url = format!("{}/v1/comments/twitter/t2", api.base);
    let refused = api.client.delete(&url).send().await.expect("API");
    assert_eq!(refused.status().as_u16(), 401, "deleting needs a key");
    let bad = api.client.delete(format!("{}/v1/comments/Twitter/t2", api.base)).header("x-api-key", ADMIN_KEY);
    let bad = bad.send().await.expect("API");
    assert_eq!(bad.status().as_u16(), 400);
    let bad: Value = bad.json().await.expect("JSON");
    assert!(bad["error"]["message"].as_str().unwrap_or("").starts_with("source \"Twitter\""), "{bad}");
    let accepted = api.client.delete(&url).header("x-api-key", ADMIN_KEY).send().await.expect("API");
    assert_eq!(accepted.status().as_u16(), 202);
    let accepted: Value = accepted.json().await.expect("JSON");
    assert_eq!(accepted, json!({"source": "twitter", "id": "t2", "stored": true}));

    wait_until("both gone from Postgres and the index", &mut procs, || async {
        let rows = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM comments").fetch_one(&pool).await.unwrap_or(0);
        rows == 6 && api.get("/v1/search?q=*").await.1["total"] == 6
    })
    .await;
    let assert_gone = |when: &'static str| {
        let (api, pool) = (&api, &pool);
        async move {
            for id in ["t1", "t2"] {
                let stored = format!("SELECT count(*) FROM comments WHERE id = '{id}'");
                assert_eq!(count(pool, &stored).await, 0, "{when}: {id} in SQL");
                assert_eq!(api.get(&format!("/v1/comments/twitter/{id}")).await.0, 404, "{when}: {id} looked up");
            }
            assert!(api.search("bm25", "suitcase OR espresso").await.is_empty(), "{when}: BM25");
            let remaining = count(pool, "SELECT count(*) FROM comments").await;
            for (q, id) in [(semantic_t1, "t1"), (semantic_t2, "t2")] {
                let semantic = api.search("semantic", q).await;
                assert_eq!(semantic.len() as i64, remaining, "{when}: semantic ranks what is left: {semantic:?}");
                assert!(!semantic.iter().any(|h| h == id), "{when}: {id} in semantic search");
                let hybrid = api.search("hybrid", q).await;
                assert!(!hybrid.is_empty() && !hybrid.iter().any(|h| h == id), "{when}: {id} in hybrid search");
            }
            let window = "from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z";
            let (status, timeline) = api.get(&format!("/v1/trends/timeline?{window}&tag=acme")).await;
            assert_eq!(status, 200, "{timeline}");
            assert_eq!(timeline["total"]["comments"], remaining, "{when}: trend counts: {timeline}");
            assert_rollups_equal_raw(pool).await;
        }
    };
    assert_gone("after the deletions").await;
    assert_eq!(count(&pool, "SELECT count(*) FROM deletions").await, 2, "both keys remembered");

    // The older messages again (a producer's retry, a replay from an earlier offset), then a new comment.
    let replay =
        vec![originals[0].clone(), originals[1].clone(), comment("k7", "A brand new comment after the replay")];
    produce(&producer(), &topics[0], &keyed(&replay)).await;
    wait_until("the comment after the replay stored", &mut procs, || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM comments WHERE id = 'k7'")
            .fetch_one(&pool)
            .await
            .unwrap_or(0)
            == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await; // an index commit, had one of them been written
    assert_eq!(count(&pool, "SELECT count(*) FROM comments").await, 7);
    assert_gone("after the replay").await;

    let metrics = api.client.get(format!("{}/metrics", api.base)).send().await.expect("metrics");
    let metrics = metrics.text().await.expect("text");
    assert!(metrics.contains("murmur_deletion_requests_total 1"), "{metrics}");
}

/// Polls `done` every 300 ms for up to three minutes, the processes running.
async fn wait_until<F, Fut>(what: &str, procs: &mut Processes, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(180);
    while !done().await {
        procs.assert_running();
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
