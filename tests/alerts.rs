//! Push alerts end to end, across processes: comments go through Kafka, a worker and a sink into Postgres,
//! while two `murmur serve` processes evaluate the same rule. A flat stream fires nothing; a planted burst
//! fires once, within its bucket plus 10 s, delivered once (signed) to the rule's webhook and listed by both
//! servers. The enrichment is the stub, as in `tests/scale_out.rs`: what is tested is the path from a stored
//! comment to a delivered alert.

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::brokers;
use common::pipeline::{Messages, Pipeline};
use murmur_core::testing::unique_words;
use serde_json::{json, Value};

const ADMIN_KEY: &str = "alerts-admin-key-0123456789";
const SECRET: &str = "alerts-webhook-secret";
const BURST: usize = 60;

/// Comments naming Acme, one created at each of `stamps`, with ids `prefix0`, `prefix1`, …; `first` numbers
/// the first, so that no two comments of a test are copies of each other (each counts as an opinion).
fn acme(prefix: &str, first: u64, stamps: impl IntoIterator<Item = chrono::DateTime<Utc>>) -> Messages {
    stamps
        .into_iter()
        .enumerate()
        .map(|(i, at)| {
            let id = format!("{prefix}{i}");
            let words = unique_words(first + i as u64, 6);
            let comment = json!({
                "id": id, "source": "twitter", "text": format!("waiting on acme support again, {words}"),
                "created_at": at.to_rfc3339(),
            });
            (Some(format!("twitter/{id}")), comment.to_string().into_bytes())
        })
        .collect()
}

async fn call(client: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = client.request(method, url).header("x-api-key", ADMIN_KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_through_kafka_fires_its_rule_once_across_two_servers() {
    let database = common::fresh_database("alerts_e2e").await;
    let mut pipeline = Pipeline::new("alerts", brokers(), database.clone(), 2).await;
    pipeline.start("worker", None);
    pipeline.start("sink", None);
    let (hook, received) = murmur_trends::testing::webhook_receiver(SECRET.as_bytes(), 0).await;
    let settings = || {
        vec![
            ("MURMUR_API_KEYS", format!("admin:{ADMIN_KEY}")),
            ("MURMUR_NO_ENRICH", "1".into()),
            ("MURMUR_ALERT_TICK_MS", "500".into()),
            ("MURMUR_WEBHOOK_SECRET", SECRET.into()),
        ]
    };
    let (names, servers): (Vec<String>, Vec<String>) = (0..2).map(|_| pipeline.start_serve(settings())).unzip();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for server in &servers {
        while !client.get(format!("{server}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            pipeline.procs.assert_running();
            assert!(Instant::now() < deadline, "{server} never ready");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let (status, body) =
        call(&client, reqwest::Method::POST, &format!("{}/v1/brands", servers[0]), Some(json!({"name": "Acme"}))).await;
    assert_eq!(status, 201, "{body}");
    let rule = json!({
        "name": "Acme burst", "slice": {"brand": "Acme"}, "kind": "volume_spike", "bucket": "minute",
        "cooldown": "1h", "webhook": format!("http://{hook}/alert"),
    });
    let (status, body) =
        call(&client, reqwest::Method::POST, &format!("{}/v1/alerts/rules", servers[0]), Some(rule)).await;
    assert_eq!(status, 201, "{body}");

    // Half an hour of a flat stream, 5 comments a minute, up to the minute before this one.
    let now = Utc::now();
    let flat: Vec<_> =
        (1..=30).flat_map(|m| (0..5).map(move |k| now - chrono::Duration::seconds(60 * m + 11 * k))).collect();
    let history = flat.len() as i64;
    let producer = common::producer();
    common::produce(&producer, &pipeline.topics[0], &acme("flat", 0, flat)).await;
    common::pipeline::wait_for_rows(&database, history).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(received.lock().expect("lock").is_empty(), "a flat stream fired");

    // The burst: 60 comments now.
    let burst_at = Instant::now();
    common::produce(&producer, &pipeline.topics[0], &acme("burst", history as u64, vec![Utc::now(); BURST])).await;
    let limit = Duration::from_secs(60 + 10);
    while received.lock().expect("lock").is_empty() {
        pipeline.procs.assert_running();
        assert!(burst_at.elapsed() < limit, "no alert within a bucket plus 10 s of the burst");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = burst_at.elapsed();
    eprintln!("alert delivered {took:?} after the burst was produced");
    // Both servers keep evaluating for a few more ticks: nothing fires twice.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let bodies = received.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1, "delivered once across two servers: {bodies:?}");
    assert_eq!(bodies[0]["rule"], "Acme burst");
    let text = bodies[0]["text"].as_str().unwrap_or("");
    assert!(text.contains("comments about Acme in the minute from"), "{text}");
    assert!(bodies[0]["alert"]["value"].as_f64().is_some_and(|v| v >= 30.0), "{}", bodies[0]);
    for server in &servers {
        let (status, listed) = call(&client, reqwest::Method::GET, &format!("{server}/v1/alerts"), None).await;
        assert_eq!(status, 200, "{listed}");
        let alerts = listed["alerts"].as_array().cloned().unwrap_or_default();
        assert_eq!(alerts.len(), 1, "{server}: {listed}");
        assert_eq!(alerts[0]["webhook_status"], "delivered");
    }
    let claims: usize = names.iter().map(|name| pipeline.log(name).matches("alert fired").count()).sum();
    assert_eq!(claims, 1, "one server claimed the alert, once");
}
