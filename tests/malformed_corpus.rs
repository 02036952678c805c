//! Hostile input through the real pipeline (tansu broker, `murmur worker` with the real models, `murmur sink`,
//! Postgres, the index): every kind of bad message the wire format refuses goes to the DLQ, unchanged (cut
//! to 900 KB when larger), with a reason that names the problem; every odd but valid comment (zalgo, emoji
//! floods, a 98 KB text, a 99 KB word, mixed scripts, a 256-byte id, an id sent twice with different text) is
//! stored exactly as sent, the last version winning. Nothing crashes: both processes are still running at the
//! end and stop cleanly on SIGTERM.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{
    consumer, create_topics, free_port, fresh_database, headers_of, produce, role_env, wait_committed, Processes,
};
use murmur_search::SearchIndex;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, Message};
use serde_json::{json, Value};
use sqlx::PgPool;

const PARTITIONS: i32 = 2;

fn at(id: &str, text: &str) -> Value {
    json!({"id": id, "source": "fuzz", "text": text, "created_at": "2026-10-02T12:00:00Z"})
}

/// Messages the wire format refuses, each with a word its DLQ reason must contain.
fn refused() -> Vec<(&'static str, Vec<u8>)> {
    let base = r#""source":"fuzz","created_at":"2026-10-02T12:00:00Z""#;
    let raw = |s: String| s.into_bytes();
    let with = |id: &str, extra: Value| {
        let mut comment = at(id, "a fine text");
        for (k, v) in extra.as_object().into_iter().flatten() {
            comment[k] = v.clone();
        }
        comment.to_string().into_bytes()
    };
    let mut invalid_utf8 = raw(format!(r#"{{"id":"r-utf8",{base},"text":"broken "#));
    invalid_utf8.extend_from_slice(&[0xC3, 0x28, 0xA0, 0xFF, b'"', b'}']);
    let mut nested = String::from(
        r#"{"id":"r-deep","source":"fuzz","text":"deep","created_at":"2026-10-02T12:00:00Z","metadata":{"a":"#,
    );
    nested.push_str(&"[".repeat(300));
    nested.push_str(&"]".repeat(300));
    nested.push_str("}}");
    let future = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    vec![
        ("JSON", raw(format!(r#"{{"id":"r-cut",{base},"text":"unterminated"#))),
        ("JSON", b"plainly not json".to_vec()),
        ("JSON", b"[1, 2, 3]".to_vec()),
        // An empty message is a tombstone; without a key it names no comment.
        ("a tombstone needs the key", Vec::new()),
        ("JSON", b"null".to_vec()),
        ("JSON", raw(format!(r#"{{"id":"r-surrogate",{base},"text":"lone \ud800 surrogate"}}"#))),
        ("recursion limit", nested.into_bytes()),
        ("UTF-8", invalid_utf8),
        ("invalid type", raw(format!(r#"{{"id":7,{base},"text":"numeric id"}}"#))),
        ("invalid type", with("r-tags", json!({"tags": "acme"}))),
        ("invalid type", with("r-text-null", json!({"text": null}))),
        ("invalid type", with("r-date", json!({"created_at": 1_700_000_000}))),
        ("invalid type", with("r-meta-array", json!({"metadata": [1, 2]}))),
        ("missing field `text`", raw(format!(r#"{{"id":"r-no-text",{base}}}"#))),
        ("unknown field", with("r-unknown", json!({"colour": "red"}))),
        ("text is empty", with("r-empty", json!({"text": ""}))),
        ("text is empty", with("r-blank", json!({"text": " \n\t\u{3000} "}))),
        ("over the limit", with("r-1mb", json!({"text": "ä".repeat(500_000)}))),
        ("metadata is", with("r-meta", json!({"metadata": {"blob": "x".repeat(64 * 1024)}}))),
        ("NUL", with("r-nul", json!({"text": "nul \u{0} inside"}))),
        ("NUL", with("r-nul-meta", json!({"metadata": {"k": "v\u{0}"}}))),
        ("source", with("r-source", json!({"source": "Not A Slug"}))),
        ("id must be", with("r-ctl\u{7}", json!({}))),
        ("id must be", with(&"i".repeat(300), json!({}))),
        ("in the future", with("r-future", json!({"created_at": future}))),
        ("schema version", with("r-schema", json!({"schema": 2}))),
        ("tags", with("r-tags-many", json!({"tags": (0..100).map(|i| format!("t{i}")).collect::<Vec<_>>()}))),
        ("url", with("r-url", json!({"url": "javascript:alert(1)"}))),
        ("lang", with("r-lang", json!({"lang": "en_US; DROP TABLE"}))),
        ("author", with("r-author", json!({"author": "a".repeat(300)}))),
    ]
}

/// Odd but valid comments: stored exactly as sent. (id, text).
fn odd() -> Vec<(String, String)> {
    let zalgo: String = "battery zalgo"
        .chars()
        .flat_map(|c| {
            std::iter::once(c).chain((0..25).map(|k| char::from_u32(0x0300 + (k * 7) % 0x70).unwrap_or('\u{301}')))
        })
        .collect();
    vec![
        ("zalgo".into(), zalgo),
        ("emoji-flood".into(), format!("{} battery {}", "🔋😡".repeat(2500), "👍🏽".repeat(1000))),
        ("long-text".into(), "the battery drains overnight and nobody answers. ".repeat(2000)),
        ("long-word".into(), "w".repeat(99_000)),
        ("scripts".into(), "السلام عليكم 你好 こんにちは Привет שלום ✓ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢".into()),
        ("controls".into(), "tabs\tand\r\nnewlines and a bell \u{7} and zero-width\u{200b}joiners\u{200d}".into()),
        ("only-emoji".into(), "😡😡😡".into()),
        ("x".repeat(256), "the longest id there may be".into()),
        ("html".into(), "<script>alert('x')</script> & \"quotes\" 'single' </b>".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_dead_lettered_with_reasons_or_stored_exactly_and_nothing_crashes() {
    let run = format!("fz{}x{}", std::process::id(), chrono::Utc::now().timestamp_millis());
    let topics = [format!("{run}.comments"), format!("{run}.enriched"), format!("{run}.dlq")];
    create_topics(&topics, PARTITIONS).await;
    let database_url = fresh_database("it_malformed").await;
    let work = tempfile::tempdir().expect("tempdir");
    let env = role_env(&run, &topics, &database_url, &work.path().join("index"), free_port());
    let mut procs = Processes(Vec::new());
    procs.spawn("worker", &["worker"], &env, work.path());
    procs.spawn("sink", &["sink"], &env, work.path());

    // Messages of over 1 MB need a producer that allows them.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", common::brokers())
        .set("message.max.bytes", "4000000")
        .create()
        .expect("producer");
    let refused = refused();
    let odd = odd();
    let mut messages: Vec<(Option<String>, Vec<u8>)> = refused.iter().map(|(_, m)| (None, m.clone())).collect();
    let key = |id: &str| Some(format!("fuzz/{id}"));
    messages.push((key("dup"), at("dup", "the first version").to_string().into_bytes()));
    messages.extend(odd.iter().map(|(id, text)| (key(id), at(id, text).to_string().into_bytes())));
    messages.push((key("dup"), at("dup", "the second version wins").to_string().into_bytes()));
    let produced = produce(&producer, &topics[0], &messages).await;
    wait_committed(&format!("{run}-worker"), &topics[0], &produced, "the worker", &mut procs).await;

    // Stored: the odd comments and the last version of the duplicate, byte for byte, in Postgres and the index.
    let stored = odd.len() + 1;
    let pool = PgPool::connect(&database_url).await.expect("connect");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        procs.assert_running();
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM comments").fetch_one(&pool).await.expect("count");
        let docs = SearchIndex::committed_documents(&work.path().join("index")).unwrap_or(0);
        if rows == stored as i64 && docs == stored as u64 {
            break;
        }
        assert!(rows <= stored as i64, "{rows} rows: something refused was stored");
        assert!(Instant::now() < deadline, "{rows} rows, {docs} documents of {stored}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let texts: HashMap<String, String> =
        sqlx::query_as("SELECT id, text FROM comments").fetch_all(&pool).await.expect("texts").into_iter().collect();
    for (id, text) in &odd {
        assert_eq!(texts.get(id), Some(text), "{id} stored as sent");
    }
    assert_eq!(texts["dup"], "the second version wins");
    let enriched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM comments WHERE model = 'all-MiniLM-L6-v2' AND (sentiment IS NOT NULL) = (skipped IS NULL)",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(enriched, stored as i64, "every stored comment went through the real models");
    let skipped: Vec<String> =
        sqlx::query_scalar("SELECT id FROM comments WHERE skipped = 'language'").fetch_all(&pool).await.expect("ids");
    assert_eq!(skipped, ["scripts"], "only the text in scripts the heads never learned is left unread");

    // Dead-lettered: every refused message, once per delivery, unchanged or cut to 900 KB, with its reason.
    let reader = consumer(&format!("{run}-dlq"));
    reader.subscribe(&[&topics[2]]).expect("subscribe");
    let mut dead: Vec<(Vec<u8>, HashMap<String, String>)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while dead.len() < refused.len() {
        assert!(Instant::now() < deadline, "{} of {} refused messages in the DLQ", dead.len(), refused.len());
        let Ok(message) = tokio::time::timeout(Duration::from_secs(2), reader.recv()).await else { continue };
        let message = message.expect("receive");
        let headers = headers_of(&message);
        dead.push((message.payload().unwrap_or_default().to_vec(), headers));
    }
    for (needle, payload) in &refused {
        let found = dead.iter().find(|(bytes, headers)| match headers.get("murmur-truncated-from") {
            Some(length) => payload.starts_with(bytes) && *length == payload.len().to_string(),
            None => bytes == payload,
        });
        let shown = String::from_utf8_lossy(&payload[..payload.len().min(120)]).into_owned();
        let (_, headers) = found.unwrap_or_else(|| panic!("not in the DLQ: {shown}"));
        let reason = headers.get("murmur-reason").cloned().unwrap_or_default();
        assert!(reason.contains(needle), "reason for {shown:?} is {reason:?}, expected it to mention {needle:?}");
        assert!(headers.get("murmur-origin").is_some_and(|o| o.starts_with(&topics[0])));
    }
    let cut = dead.iter().filter(|(_, h)| h.contains_key("murmur-truncated-from")).count();
    assert_eq!(cut, 1, "only the 1 MB message is cut");

    for role in ["worker", "sink"] {
        let status = procs.terminate(role, Duration::from_secs(30)).expect("stops on SIGTERM");
        assert!(status.success(), "{role} exits 0 after the hostile input: {status}");
    }
}
