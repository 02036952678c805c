//! `murmur produce` as a user runs it, against the real broker: comments piped on standard input (`-`), as
//! JSON Lines and as CSV, arrive on the topic keyed `source/id`, byte for byte.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;

use common::{brokers, consumer};

/// Runs `murmur produce - <extra>` onto `topic` with `input` on its standard input; its stderr.
fn produce_stdin(topic: &str, input: &str, extra: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_murmur"))
        .args(["produce", "-", "--partitions", "1"])
        .args(extra)
        .env("MURMUR_KAFKA_BROKERS", brokers())
        .env("MURMUR_TOPIC_COMMENTS", topic)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("murmur binary starts");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    let output = child.wait_with_output().expect("murmur produce ends");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "murmur produce - failed: {stderr}");
    stderr
}

/// The first `n` messages of `topic`: (key, payload).
async fn read_topic(topic: &str, n: usize) -> Vec<(String, String)> {
    let reader: StreamConsumer = consumer(&format!("{topic}-reader"));
    reader.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    while out.len() < n {
        let message = tokio::time::timeout(Duration::from_secs(30), reader.recv())
            .await
            .expect("messages arrive within 30 s")
            .expect("a message");
        let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
        out.push((text(message.key()), text(message.payload())));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_piped_on_stdin_reach_the_topic() {
    let run = format!("produce-stdin-{}", std::process::id());

    let lines = [
        r#"{"source":"app","id":"1","text":"Love the new update","created_at":"2026-11-01T10:00:00Z"}"#,
        r#"{"source":"app","id":"2","text":"Crashes on start","created_at":"2026-11-01T10:01:00Z"}"#,
    ];
    let topic = format!("{run}-jsonl");
    let stderr = produce_stdin(&topic, &format!("{}\n\n{}\n", lines[0], lines[1]), &[]);
    assert!(stderr.contains("done: 2 messages"), "{stderr}");
    let got = read_topic(&topic, 2).await;
    assert_eq!(got, vec![("app/1".to_owned(), lines[0].to_owned()), ("app/2".to_owned(), lines[1].to_owned())]);

    let topic = format!("{run}-csv");
    let csv = "id,source,text,created_at\n9,store,\"Fast, cheap\",2026-11-02T08:00:00Z\n";
    produce_stdin(&topic, csv, &["--format", "csv"]);
    let got = read_topic(&topic, 1).await;
    assert_eq!(got[0].0, "store/9");
    let comment: serde_json::Value = serde_json::from_str(&got[0].1).expect("a JSON comment");
    assert_eq!(comment["text"], "Fast, cheap");
}
