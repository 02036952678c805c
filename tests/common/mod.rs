//! What the end-to-end tests share: the broker, fresh databases, the `murmur` processes, producing and
//! waiting for the pipeline's stages, and a browser.
#![allow(dead_code)] // each test binary uses its own part

pub mod browser;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use sqlx::Connection;

pub fn brokers() -> String {
    std::env::var("MURMUR_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Kills the child processes when the test ends, pass or fail.
pub struct Processes(pub Vec<(String, Child, PathBuf)>);

impl Processes {
    pub fn spawn(&mut self, role: &str, args: &[&str], env: &[(&str, String)], logs: &Path) {
        let log = logs.join(format!("{role}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_murmur"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("MURMUR_LOG", "info,murmur_ingest=debug,tantivy=warn,sqlx=warn,rdkafka=warn")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("murmur binary starts");
        self.0.push((role.to_owned(), child, log));
    }

    /// Ends one process (as a crash would) and waits for it.
    pub fn stop(&mut self, role: &str) {
        if let Some(at) = self.0.iter().position(|(r, _, _)| r == role) {
            let (_, mut child, _) = self.0.remove(at);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn assert_running(&mut self) {
        for (role, child, log) in &mut self.0 {
            if let Ok(Some(status)) = child.try_wait() {
                let tail = std::fs::read_to_string(&*log).unwrap_or_default();
                panic!("murmur {role} exited with {status}:\n{tail}");
            }
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (role, child, log) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!("--- murmur {role} log: {}", log.display());
                eprintln!("{}", std::fs::read_to_string(&*log).unwrap_or_default());
            }
        }
    }
}

pub async fn fresh_database(name: &str) -> String {
    let admin_url = std::env::var("MURMUR_TEST_ADMIN_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("postgres reachable (infra/postgres.sh)");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await.expect("drop");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create");
    let (base, _) = admin_url.rsplit_once('/').expect("admin url names a database");
    format!("{base}/{name}")
}

/// Produces payloads and returns the highest offset written per partition.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    payloads: &[(Option<String>, Vec<u8>)],
) -> HashMap<i32, i64> {
    let sends = payloads.iter().map(|(key, payload)| {
        let mut record = FutureRecord::to(topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        producer.send(record, Timeout::After(Duration::from_secs(30)))
    });
    let mut last = HashMap::new();
    for result in futures::future::join_all(sends).await {
        let delivery = result.map_err(|(e, _)| e).expect("broker accepts the message");
        let entry = last.entry(delivery.partition).or_insert(delivery.offset);
        *entry = (*entry).max(delivery.offset);
    }
    last
}

pub fn consumer(group: &str) -> StreamConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer")
}

/// Waits until `group` has committed past every offset in `last` (it has finished that work).
pub async fn wait_committed(group: &str, topic: &str, last: &HashMap<i32, i64>, what: &str, procs: &mut Processes) {
    let probe = consumer(group);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        procs.assert_running();
        let mut list = TopicPartitionList::new();
        for partition in last.keys() {
            list.add_partition(topic, *partition);
        }
        let committed = probe.committed_offsets(list, Timeout::After(Duration::from_secs(10))).expect("offsets");
        let done = last.iter().all(|(partition, offset)| {
            matches!(committed.find_partition(topic, *partition).map(|p| p.offset()), Some(Offset::Offset(o)) if o > *offset)
        });
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.expect("API answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// The environment of a test's `murmur` roles: its own topics (comments, enriched, DLQ), consumer groups,
/// database, index folder and HTTP port, the real models.
pub fn role_env(
    run: &str,
    topics: &[String; 3],
    database_url: &str,
    index: &Path,
    port: u16,
) -> Vec<(&'static str, String)> {
    vec![
        ("MURMUR_KAFKA_BROKERS", brokers()),
        ("MURMUR_TOPIC_COMMENTS", topics[0].clone()),
        ("MURMUR_TOPIC_ENRICHED", topics[1].clone()),
        ("MURMUR_TOPIC_DLQ", topics[2].clone()),
        ("MURMUR_WORKER_GROUP", format!("{run}-worker")),
        ("MURMUR_SINK_GROUP", format!("{run}-sink")),
        ("MURMUR_DATABASE_URL", database_url.to_owned()),
        ("MURMUR_INDEX_DIR", index.display().to_string()),
        ("MURMUR_MODEL_DIR", repo_path(".cache/models/all-MiniLM-L6-v2").display().to_string()),
        ("MURMUR_SENTIMENT_HEAD", repo_path("models/sentiment").display().to_string()),
        ("MURMUR_NER_HEAD", repo_path("models/ner").display().to_string()),
        ("MURMUR_PSEUDONYM_KEY", format!("{run}-pseudonym-key")),
        ("MURMUR_LISTEN", format!("127.0.0.1:{port}")),
    ]
}

/// Creates fresh topics on the broker.
pub async fn create_topics(topics: &[String], partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers()).create().expect("admin client");
    let new: Vec<NewTopic> = topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
    for result in admin.create_topics(&new, &AdminOptions::new()).await.expect("broker reachable (infra/kafka.sh)") {
        result.expect("topic created");
    }
}

/// A producer for the test's own messages.
pub fn producer() -> FutureProducer {
    ClientConfig::new().set("bootstrap.servers", brokers()).set("linger.ms", "5").create().expect("producer")
}

/// Comments as (key, payload) messages, keyed `source/id` as murmur's producer keys them.
pub fn keyed(comments: &[Value]) -> Vec<(Option<String>, Vec<u8>)> {
    comments
        .iter()
        .map(|c| {
            let key = format!("{}/{}", c["source"].as_str().unwrap_or(""), c["id"].as_str().unwrap_or(""));
            (Some(key), c.to_string().into_bytes())
        })
        .collect()
}
