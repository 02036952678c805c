//! What the end-to-end tests share: the broker, fresh databases, the `murmur` processes, producing and
//! waiting for the pipeline's stages, and a browser.
#![allow(dead_code)] // each test binary uses its own part

pub mod browser;
pub mod in_process;
pub mod pipeline;
pub mod services;

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

    /// Sends `signal` (`KILL`, `TERM`, `STOP`, `CONT`) to a process, as `kill -SIGNAL` would.
    pub fn signal(&self, role: &str, signal: &str) {
        assert!(send_signal(self.pid(role), signal), "kill -{signal} {role}");
    }

    /// SIGTERM, then waits up to `limit` for the process to exit; its exit status (`None`: still running).
    pub fn terminate(&mut self, role: &str, limit: Duration) -> Option<std::process::ExitStatus> {
        self.signal(role, "TERM");
        let at = self.0.iter().position(|(r, _, _)| r == role).expect("role running");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0[at].1.try_wait() {
                self.0.remove(at);
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn pid(&self, role: &str) -> u32 {
        self.0.iter().find(|(r, _, _)| r == role).map(|(_, child, _)| child.id()).expect("role running")
    }

    /// The log a role has written so far.
    pub fn log(&self, role: &str) -> String {
        self.0
            .iter()
            .find(|(r, _, _)| r == role)
            .map(|(_, _, log)| std::fs::read_to_string(log).unwrap_or_default())
            .unwrap_or_default()
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

/// `kill -SIGNAL pid` for `KILL`, `TERM`, `STOP` and `CONT`; false if there is no such process.
#[allow(unsafe_code)]
pub fn send_signal(pid: u32, signal: &str) -> bool {
    let number = match signal {
        "KILL" => libc::SIGKILL,
        "TERM" => libc::SIGTERM,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        other => panic!("no signal {other} here"),
    };
    let pid = libc::pid_t::try_from(pid).expect("a pid");
    // SAFETY: kill(2) only sends a signal; no memory is shared.
    unsafe { libc::kill(pid, number) == 0 }
}

/// Resident memory of a process, in MiB (`VmRSS`).
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// A fresh database `murmur_test_<name>` with no tables (murmur's processes migrate it); its URL.
pub async fn fresh_database(name: &str) -> String {
    murmur_store::testing::empty_database(name).await.expect("postgres reachable (infra/postgres.sh)")
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
    consumer_of(&brokers(), group)
}

pub fn consumer_of(brokers: &str, group: &str) -> StreamConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
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
        if committed_past(&probe, topic, last) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Offsets the probe's group has committed in `topic`, per partition (absent: none yet).
pub fn committed_offsets(probe: &StreamConsumer, topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let committed = probe.committed_offsets(list, Timeout::After(Duration::from_secs(10))).expect("offsets");
    committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

fn committed_past(probe: &StreamConsumer, topic: &str, last: &HashMap<i32, i64>) -> bool {
    let partitions = last.keys().max().map_or(0, |p| p + 1);
    let committed = committed_offsets(probe, topic, partitions);
    last.iter().all(|(partition, offset)| committed.get(partition).is_some_and(|o| o > offset))
}

/// A consumed message's headers, values as text.
pub fn headers_of(message: &impl rdkafka::Message) -> HashMap<String, String> {
    use rdkafka::message::Headers;
    message
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// An HTTP client that sends `key` with every request (`Authorization: Bearer`), as reads need once a server
/// has keys; a request's own key header takes precedence.
pub fn client_with_key(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).expect("a header-safe key");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder().default_headers(headers).build().expect("HTTP client")
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
        ("MURMUR_TASK_MODEL", repo_path("models/enrichment").display().to_string()),
        ("MURMUR_PSEUDONYM_KEY", format!("{run}-pseudonym-key")),
        ("MURMUR_LISTEN", format!("127.0.0.1:{port}")),
        // The tests' own bursts are not what they test (api/tests/http.rs tests the limits).
        ("MURMUR_RATE_LIMIT", "0".into()),
    ]
}

/// Creates fresh topics on the broker.
pub async fn create_topics(topics: &[String], partitions: i32) {
    create_topics_on(&brokers(), topics, partitions).await;
}

pub async fn create_topics_on(brokers: &str, topics: &[String], partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin client");
    let new: Vec<NewTopic> = topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
    for result in admin.create_topics(&new, &AdminOptions::new()).await.expect("broker reachable (infra/kafka.sh)") {
        result.expect("topic created");
    }
}

/// A producer for the test's own messages.
pub fn producer() -> FutureProducer {
    producer_on(&brokers())
}

/// Retries for up to two minutes, so a broker restart delays messages instead of failing them.
pub fn producer_on(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .create()
        .expect("producer")
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
