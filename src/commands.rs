//! The production roles: worker, sink and API as separate processes around Kafka and Postgres.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use murmur_api::admin::AdminState;
use murmur_api::{ApiKeys, AppState, EnrichService, LagProbe};
use murmur_core::{CommentStore, Enricher};
use murmur_enrich::{
    select_device, DeviceRequest, EncoderOptions, Heads, ModelStack, Precision, SentenceEncoder, StubEnricher,
    TaskModel,
};
use murmur_ingest::kafka::{KafkaConfig, KafkaProducer};
use murmur_ingest::load::{self, InputFormat, TextEncoding};
use murmur_ingest::queue::{Producer, Record};
use murmur_ingest::schema::{Limits, Validator};
use murmur_ingest::sink::{Sink, SinkConfig};
use murmur_ingest::worker::{Worker, WorkerConfig};
use murmur_ingest::{PipelineStats, Pseudonymizer, Topics};
use murmur_search::{Access, SearchIndex};
use murmur_store::Postgres;
use murmur_trends::{ReportSpec, Scheduler, Slice, Trends};
use tokio_util::sync::CancellationToken;

use crate::cli::{
    AdminArgs, DatabaseArgs, DeviceChoice, Encoding, EnrichApiArgs, FileFormat, HttpArgs, KafkaArgs, ModelArgs,
    PrecisionChoice, ProduceArgs, ReindexArgs, ReportArgs, ReportCommandArgs, ReportFormat, ServeArgs, SinkArgs,
    SinkStore, TopicArgs, WorkerArgs, ASSETS_HINT,
};

pub async fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let key = args.privacy.pseudonym_key.as_deref().context(
        "the worker needs --pseudonym-key (MURMUR_PSEUDONYM_KEY): the secret that turns author ids into pseudonyms",
    )?;
    let validator = Validator::new(
        Pseudonymizer::new(key.as_bytes()),
        Limits { max_text_bytes: args.privacy.max_text_bytes, ..Limits::default() },
    );
    let kafka = kafka_config(&args.kafka);
    let topics = topics(&args.kafka.topics);
    ensure_topics(&kafka, &topics, args.partitions).await?;
    let config = WorkerConfig {
        topics,
        max_batch: args.batch_size,
        redaction: args.privacy.redact_pii,
        ..WorkerConfig::default()
    };
    // The admin port answers (not ready) while the models load.
    let admin = start_admin("worker", &args.admin)?;
    if args.stub_enrichment {
        tracing::warn!("stub enrichment: comments get no real sentiment, entities or embeddings (plumbing runs only)");
        run_worker(StubEnricher, validator, &kafka, &args.group, config, admin).await
    } else {
        let models = load_models(&args.model)?;
        run_worker(models, validator, &kafka, &args.group, config, admin).await
    }
}

/// Joins the group once the enricher is ready, and runs until a signal.
async fn run_worker<E: Enricher>(
    enricher: E,
    validator: Validator,
    kafka: &KafkaConfig,
    group: &str,
    config: WorkerConfig,
    admin: AdminState,
) -> anyhow::Result<()> {
    let producer: Arc<dyn Producer> = Arc::new(kafka.producer()?);
    let consumer = kafka.consumer(group, &config.topics.comments)?;
    let stats = Arc::clone(&admin.stats);
    let shutdown = shutdown_on_signal();
    let worker = Worker::new(validator, Arc::new(Mutex::new(enricher)), producer, config, Arc::clone(&stats));
    let reporter = tokio::spawn(report_progress(Arc::clone(&stats), shutdown.clone()));
    admin.ready.store(true, Ordering::Relaxed);
    worker.run(consumer, shutdown.clone()).await?;
    shutdown.cancel();
    reporter.await.ok();
    Ok(())
}

/// The role's counters, and its admin port where `--admin-listen` asks for one (served until the process
/// ends).
fn start_admin(role: &'static str, args: &AdminArgs) -> anyhow::Result<AdminState> {
    let admin = AdminState::new(role, Arc::new(PipelineStats::default()));
    if let Some(addr) = args.admin_listen {
        let (server, bound) = murmur_api::admin::bind_admin(admin.clone(), addr)
            .with_context(|| format!("binding the admin port {addr} (--admin-listen)"))?;
        tokio::spawn(server);
        tracing::info!(role, addr = %bound, "admin port: /metrics, /healthz, /readyz");
    }
    Ok(admin)
}

pub async fn sink(args: SinkArgs) -> anyhow::Result<()> {
    let admin = start_admin("sink", &args.admin)?;
    let kafka = kafka_config(&args.kafka);
    let topics = topics(&args.kafka.topics);
    ensure_topics(&kafka, &topics, args.partitions).await?;
    let mut stores: Vec<Arc<dyn CommentStore>> = Vec::new();
    if args.stores.contains(&SinkStore::Postgres) {
        stores.push(Arc::new(connect(&args.database).await?));
    }
    if args.stores.contains(&SinkStore::Index) {
        let index = SearchIndex::open(&args.index.index_dir, Access::Write, args.index.options())
            .with_context(|| format!("opening the index in {}", args.index.index_dir.display()))?;
        stores.push(Arc::new(index));
    }
    anyhow::ensure!(!stores.is_empty(), "MURMUR_SINK_STORES names no store: give postgres, index or both");
    let producer: Arc<dyn Producer> = Arc::new(kafka.producer()?);
    let consumer = kafka.consumer(&args.group, &topics.enriched)?;
    let stats = Arc::clone(&admin.stats);
    let shutdown = shutdown_on_signal();
    let config = SinkConfig { topics, max_batch: args.batch_size, ..SinkConfig::default() };
    let reporter = tokio::spawn(report_progress(Arc::clone(&stats), shutdown.clone()));
    admin.ready.store(true, Ordering::Relaxed);
    Sink::new(stores, producer, config, stats).run(consumer, shutdown.clone()).await?;
    shutdown.cancel();
    reporter.await.ok();
    Ok(())
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let postgres = connect(&args.database).await?;
    let index = SearchIndex::open(&args.index.index_dir, Access::Read, args.index.options())
        .with_context(|| format!("opening the index in {}", args.index.index_dir.display()))?;
    let enrich = enrich_service(&args.enrich, &args.model)?;
    let keys = api_keys(&args.http)?;
    // The encoder serves semantic and hybrid search whatever the keys; say what it is there for.
    match (enrich.is_some(), keys.allow_writes()) {
        (true, true) => tracing::info!("encoder loaded: semantic and hybrid search, POST /v1/enrich"),
        (true, false) => tracing::info!(
            "encoder loaded for semantic and hybrid search; POST /v1/enrich needs a write key and MURMUR_API_KEYS \
             has none"
        ),
        (false, _) => {
            tracing::info!("encoder off (--no-enrich): semantic and hybrid search and POST /v1/enrich answer 503")
        }
    }
    let mut state = AppState::new(postgres, index, enrich, keys);
    state.rate_limiter = args.http.rate_limiter()?;
    let kafka = KafkaConfig { brokers: args.kafka.kafka_brokers.clone(), options: args.kafka.kafka_options.clone() };
    state.lag = Some(Arc::new(KafkaLag {
        kafka,
        stages: vec![
            (args.worker_group.clone(), args.kafka.topics.topic_comments.clone()),
            (args.sink_group.clone(), args.kafka.topics.topic_enriched.clone()),
        ],
    }));
    let shutdown = shutdown_on_signal();
    let scheduler = start_scheduler(&state, &args.reports, shutdown.clone())?;
    let (server, addr) = murmur_api::bind(state, args.http.listen, args.http.http_workers)
        .with_context(|| format!("binding {}", args.http.listen))?;
    tracing::info!(url = %format!("http://{addr}"), "API listening");
    server.await?;
    shutdown.cancel();
    if let Some(scheduler) = scheduler {
        scheduler.await.ok();
    }
    Ok(())
}

pub fn api_keys(http: &HttpArgs) -> anyhow::Result<ApiKeys> {
    ApiKeys::parse(&http.api_keys).map_err(|e| anyhow::anyhow!("MURMUR_API_KEYS: {e}"))
}

/// The report scheduler beside the API, unless its tick is 0.
pub fn start_scheduler(
    state: &AppState,
    args: &ReportArgs,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(options) = args.scheduler() else { return Ok(None) };
    let scheduler = Scheduler::new(state.trends.clone(), options)?;
    Ok(Some(tokio::spawn(scheduler.run(shutdown))))
}

/// Where the pipeline's stages stand in their topics, for `/metrics`.
struct KafkaLag {
    kafka: KafkaConfig,
    /// (group, topic)
    stages: Vec<(String, String)>,
}

impl LagProbe for KafkaLag {
    fn progress(&self) -> Vec<(String, String, i64, i64)> {
        self.stages
            .iter()
            .filter_map(|(group, topic)| match self.kafka.progress(group, topic, Duration::from_secs(1)) {
                Ok(p) => Some((group.clone(), topic.clone(), p.committed, p.lag)),
                Err(e) => {
                    tracing::debug!(%group, %topic, error = %e, "consumer lag unavailable");
                    None
                }
            })
            .collect()
    }
}

pub async fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let format = match args.format {
        FileFormat::Auto => InputFormat::from_path(&args.file),
        FileFormat::Jsonl => InputFormat::Jsonl,
        FileFormat::Csv => InputFormat::Csv,
    };
    let encoding = match args.encoding {
        Encoding::Utf8 => TextEncoding::Utf8,
        Encoding::Latin1 => TextEncoding::Latin1,
    };
    let payloads = load::read_payloads(&args.file, format, encoding)?;
    let kafka = kafka_config(&args.kafka);
    let topic = args.kafka.topics.topic_comments.clone();
    kafka.ensure_topics(&[topic.as_str()], args.partitions).await?;
    let producer: KafkaProducer = kafka.producer()?;
    let total = payloads.len();
    let started = std::time::Instant::now();
    let mut sent = 0;
    for chunk in payloads.chunks(1000) {
        let records: Vec<Record> = chunk
            .iter()
            .map(|p| Record { topic: topic.clone(), key: p.key.clone(), payload: p.bytes.clone(), headers: Vec::new() })
            .collect();
        producer.send_all(&records).await?;
        sent += chunk.len();
        eprintln!("produced {sent}/{total} to {topic}");
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("done: {total} messages in {secs:.1}s ({:.0}/s)", total as f64 / secs.max(1e-9));
    Ok(())
}

/// `murmur report --once`: one report now, stored and written out; without `--once`, the scheduler alone.
pub async fn report(args: ReportCommandArgs) -> anyhow::Result<()> {
    let postgres = connect(&args.database).await?;
    let index = SearchIndex::open(&args.index.index_dir, Access::Read, args.index.options())
        .with_context(|| format!("opening the index in {}", args.index.index_dir.display()))?;
    let trends = Trends::new(postgres.clone(), index);
    if !args.once {
        let options = args.reports.scheduler().context("the scheduler needs MURMUR_SCHEDULER_TICK_MS > 0")?;
        let shutdown = shutdown_on_signal();
        eprintln!("running report schedules until Ctrl-C");
        Scheduler::new(trends, options)?.run(shutdown).await;
        return Ok(());
    }
    let slices = if args.slices.is_empty() {
        vec![Slice::default()]
    } else {
        args.slices.iter().map(|s| Slice::parse_one(s)).collect::<Result<_, _>>()?
    };
    let spec = ReportSpec { slices, window: Some(args.window.clone()), ..ReportSpec::default() };
    let tz: chrono_tz::Tz = args
        .tz
        .parse()
        .map_err(|_| anyhow::anyhow!("--tz {:?} is not an IANA time zone like Europe/Paris", args.tz))?;
    let length = murmur_trends::parse_length(&args.window)?;
    let end = args.end.unwrap_or_else(chrono::Utc::now);
    let report = trends.report(&args.name, &spec, end, length, tz).await?;
    let stored = report.to_new_report(&spec, None)?;
    let id = postgres.insert_report(&stored).await?;
    let body = match args.format {
        ReportFormat::Html => stored.html.unwrap_or_default(),
        ReportFormat::Csv => stored.csv.unwrap_or_default(),
        ReportFormat::Json => serde_json::to_string_pretty(&stored.json)?,
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "report {id} ({} – {}) stored and written to {}",
                report.window.from,
                report.window.to,
                path.display()
            );
        }
        None => print!("{body}"),
    }
    Ok(())
}

pub async fn migrate(args: DatabaseArgs) -> anyhow::Result<()> {
    connect(&args).await?;
    eprintln!("migrations applied");
    Ok(())
}

/// Rebuilds the search index (text and vectors) from Postgres into a new generation beside the one in service,
/// then switches to it; running APIs keep answering from the old one until then.
pub async fn reindex(args: ReindexArgs) -> anyhow::Result<()> {
    let postgres = connect(&args.database).await?;
    let total = postgres.count_comments().await?;
    let root = &args.index.index_dir;
    let mut rebuild = tokio::task::block_in_place(|| SearchIndex::rebuild(root, args.index.options()))
        .with_context(|| format!("starting a rebuild of the index in {}", root.display()))?;
    let bar = ProgressBar::new(total.max(0) as u64).with_style(
        ProgressStyle::with_template("{msg:>10} {bar:40} {pos}/{len} comments [{elapsed}<{eta}] {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("reindex");
    let started = std::time::Instant::now();
    let mut after: Option<(String, String)> = None;
    let mut next_report = 0;
    loop {
        let page = postgres
            .enriched_page(after.as_ref().map(|(s, i)| (s.as_str(), i.as_str())), args.page_size.max(1) as i64)
            .await
            .context("reading comments from Postgres")?;
        let Some(last) = page.last() else { break };
        after = Some((last.comment.source.clone(), last.comment.id.clone()));
        tokio::task::block_in_place(|| rebuild.add(&page))?;
        bar.inc(page.len() as u64);
        if rebuild.docs() >= next_report {
            tracing::info!(indexed = rebuild.docs(), of = total, "reindexing");
            next_report += 100_000;
        }
    }
    bar.finish_and_clear();
    let docs = rebuild.docs();
    tracing::info!(docs, seconds = started.elapsed().as_secs_f32(), "text indexed; building the vector graph");
    let path = tokio::task::block_in_place(|| rebuild.finish())?;
    eprintln!(
        "reindexed {docs} comments into {} in {:.1}s; it is now in service",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Connects and applies pending migrations (idempotent, serialised by Postgres advisory locks).
pub async fn connect(args: &DatabaseArgs) -> anyhow::Result<Postgres> {
    let postgres = Postgres::connect(&args.database_url, args.database_pool).await.with_context(|| {
        format!("connecting to Postgres at {} (infra/postgres.sh starts one)", redact(&args.database_url))
    })?;
    postgres.migrate().await.context("applying migrations")?;
    if let Some(changed) = postgres
        .rederive_entities(ENTITY_RULES, murmur_enrich::social::with_mentions)
        .await
        .context("re-deriving stored entities by today's rules")?
    {
        tracing::info!(changed, "stored entities re-derived: mentions read by rule, one name per entity");
    }
    Ok(postgres)
}

/// The entity rules stored comments were last re-derived by (see `Postgres::rederive_entities`): mentions
/// (`@handle`, `#hashtag`) read by rule, and names one per entity however written. A new rule gets a new
/// name. Search facets come from the index: `murmur reindex` rebuilds them.
const ENTITY_RULES: &str = "entities-2026-12-mentions-and-names";

/// The model thread behind `POST /v1/enrich`, unless turned off.
pub fn enrich_service(api: &EnrichApiArgs, model: &ModelArgs) -> anyhow::Result<Option<EnrichService>> {
    if api.no_enrich {
        return Ok(None);
    }
    let models = load_models(model)?;
    let service = EnrichService::start(Box::new(models), api.enrich_queue, api.enrich_max_texts)
        .context("starting the enrichment thread")?;
    Ok(Some(service))
}

/// The encoder and its heads, as the worker runs them.
pub fn load_models(args: &ModelArgs) -> anyhow::Result<ModelStack> {
    let encoder = load_encoder(args)?;
    let heads = Heads { sentiment: !args.no_sentiment, emotion: !args.no_emotion, ner: !args.no_ner };
    let tasks = if heads.sentiment || heads.emotion || heads.ner {
        let model = TaskModel::load(&args.task_model, encoder.device()).with_context(|| {
            format!(
                "loading the task model from {} (set --task-model or MURMUR_HOME, or --no-sentiment --no-emotion --no-ner to run without)",
                args.task_model.display()
            )
        })?;
        for (off, what) in [(args.no_sentiment, "sentiment"), (args.no_emotion, "emotion"), (args.no_ner, "entities")] {
            if off {
                tracing::warn!(task = what, "disabled: comments are stored without it");
            }
        }
        Some((model, heads))
    } else {
        None
    };
    Ok(ModelStack::new(encoder, tasks)?)
}

pub fn load_encoder(args: &ModelArgs) -> anyhow::Result<SentenceEncoder> {
    let device = select_device(match args.device {
        DeviceChoice::Auto => DeviceRequest::Auto,
        DeviceChoice::Cpu => DeviceRequest::Cpu,
        DeviceChoice::Cuda => DeviceRequest::Cuda,
    })?;
    let max_batch_tokens = args.max_batch_tokens.unwrap_or_else(|| EncoderOptions::default_batch_tokens(device));
    let precision = match args.precision {
        PrecisionChoice::Auto => Precision::Auto,
        PrecisionChoice::F32 => Precision::F32,
        PrecisionChoice::Bf16 => Precision::Bf16,
    };
    let kind = precision.resolve(device)?;
    let options = EncoderOptions { device, max_batch_tokens, threads: args.threads, kind };
    SentenceEncoder::load(&args.model_dir, options)
        .with_context(|| format!("loading the encoder from {} ({ASSETS_HINT})", args.model_dir.display()))
}

fn kafka_config(args: &KafkaArgs) -> KafkaConfig {
    KafkaConfig { brokers: args.kafka_brokers.clone(), options: args.kafka_options.clone() }
}

pub fn topics(args: &TopicArgs) -> Topics {
    Topics { comments: args.topic_comments.clone(), enriched: args.topic_enriched.clone(), dlq: args.topic_dlq.clone() }
}

async fn ensure_topics(kafka: &KafkaConfig, topics: &Topics, partitions: i32) -> anyhow::Result<()> {
    kafka
        .ensure_topics(&[&topics.comments, &topics.enriched, &topics.dlq], partitions)
        .await
        .with_context(|| format!("creating topics on {} (is the broker up? see infra/kafka.sh)", kafka.brokers))
}

/// Cancelled on SIGINT or SIGTERM: stages finish or abandon (uncommitted) their batch and return.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
        tracing::info!("shutting down");
        trigger.cancel();
    });
    token
}

/// Logs the counters every ten seconds while they move, and once more at stop (the totals).
async fn report_progress(stats: Arc<PipelineStats>, shutdown: CancellationToken) {
    let totals = || {
        (
            PipelineStats::get(&stats.consumed),
            PipelineStats::get(&stats.enriched),
            PipelineStats::get(&stats.dead_lettered),
            PipelineStats::get(&stats.stored),
        )
    };
    let mut last = (0, 0, 0, 0);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
        let now = totals();
        if now != last {
            tracing::info!(consumed = now.0, enriched = now.1, dead_lettered = now.2, stored = now.3, "progress");
            last = now;
        }
    }
    let now = totals();
    tracing::info!(consumed = now.0, enriched = now.1, dead_lettered = now.2, stored = now.3, "totals at stop");
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
