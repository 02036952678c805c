//! The production roles: worker, sink and API as separate processes around Kafka and Postgres.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use murmur_api::admin::AdminState;
use murmur_api::{AppState, KafkaLag};
use murmur_cli::{connect, shutdown_on_signal, DatabaseArgs};
use murmur_core::{CommentStore, Enricher, ModelQueue};
use murmur_enrich::StubEnricher;
use murmur_ingest::kafka::{KafkaConfig, KafkaProducer};
use murmur_ingest::load::{self, InputFormat, TextEncoding};
use murmur_ingest::queue::{Producer, Record};
use murmur_ingest::schema::{Limits, Validator};
use murmur_ingest::sink::{Sink, SinkConfig};
use murmur_ingest::worker::{Worker, WorkerConfig};
use murmur_ingest::{PipelineStats, Pseudonymizer};
use murmur_search::{Access, SearchIndex};
use murmur_store::{Rematcher, RollupFolder};
use murmur_trends::{ReportSpec, Scheduler, Slice, Trends};
use tokio_util::sync::CancellationToken;

use crate::cli::{
    AdminArgs, Encoding, FileFormat, ProduceArgs, ReindexArgs, ReportCommandArgs, ReportFormat, ServeArgs, SinkArgs,
    SinkStore, WorkerArgs,
};

pub async fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let key = args.privacy.pseudonym_key.as_deref().context(
        "the worker needs --pseudonym-key (MURMUR_PSEUDONYM_KEY): the secret that turns author ids into pseudonyms",
    )?;
    let validator = Validator::new(
        Pseudonymizer::new(key.as_bytes()),
        Limits { max_text_bytes: args.privacy.max_text_bytes, ..Limits::default() },
    );
    let kafka = args.kafka.config();
    let topics = args.kafka.topics.topics();
    args.kafka.ensure_topics(args.partitions).await?;
    let config = WorkerConfig {
        topics,
        max_batch: args.batch_size,
        redaction: args.privacy.redact_pii,
        ..WorkerConfig::default()
    };
    // The admin port answers (not ready) while the models load.
    let admin = start_admin("worker", &kafka, &args.group, &config.topics.comments, &args.admin)?;
    let enricher: Box<dyn Enricher> = if args.stub_enrichment {
        tracing::warn!("stub enrichment: comments get no real sentiment, entities or embeddings (plumbing runs only)");
        Box::new(StubEnricher)
    } else {
        Box::new(args.model.load()?)
    };
    // One batch waits while the model works on the one before.
    let model = ModelQueue::start(enricher, 1, args.batch_size).context("starting the model thread")?;
    run_worker(model, validator, &kafka, &args.group, config, admin).await
}

/// Joins the group once the model is ready, and runs until a signal.
async fn run_worker(
    model: ModelQueue,
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
    let worker = Worker::new(validator, model, producer, config, Arc::clone(&stats));
    let reporter = tokio::spawn(report_progress(Arc::clone(&stats), shutdown.clone()));
    admin.ready.store(true, Ordering::Relaxed);
    worker.run(consumer, shutdown.clone()).await?;
    shutdown.cancel();
    reporter.await.ok();
    Ok(())
}

/// The stage's counters, readiness and consumer lag (its `group` on `topic`), served on the role's admin port
/// where `--admin-listen` asks for one (until the process ends).
fn start_admin(
    role: &'static str,
    kafka: &KafkaConfig,
    group: &str,
    topic: &str,
    args: &AdminArgs,
) -> anyhow::Result<AdminState> {
    let mut admin = AdminState::new(role, Arc::new(PipelineStats::default()));
    admin.lag = Some(Arc::new(KafkaLag::new(kafka.clone(), vec![(group.to_owned(), topic.to_owned())])));
    if let Some(addr) = args.admin_listen {
        let (server, bound) = murmur_api::admin::bind_admin(admin.clone(), addr)
            .with_context(|| format!("binding the admin port {addr} (--admin-listen)"))?;
        tokio::spawn(server);
        tracing::info!(role, addr = %bound, "admin port: /metrics, /healthz, /readyz");
    }
    Ok(admin)
}

pub async fn sink(args: SinkArgs) -> anyhow::Result<()> {
    let kafka = args.kafka.config();
    let topics = args.kafka.topics.topics();
    let admin = start_admin("sink", &kafka, &args.group, &topics.enriched, &args.admin)?;
    args.kafka.ensure_topics(args.partitions).await?;
    let mut stores: Vec<Arc<dyn CommentStore>> = Vec::new();
    let mut folder = None;
    // Postgres remembers what was deleted, also for a sink that writes only the index.
    let postgres = connect(&args.database).await?;
    if args.stores.contains(&SinkStore::Postgres) {
        // The rollup deltas this sink logs are folded beside it (reads fold what is left).
        folder = Some(RollupFolder::spawn(postgres.clone()));
        stores.push(Arc::new(postgres.clone()));
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
    let retention = args.retention.retention();
    let expiring =
        retention.enabled().then(|| tokio::spawn(retention.run(stores.clone(), Arc::clone(&stats), shutdown.clone())));
    admin.ready.store(true, Ordering::Relaxed);
    Sink::new(stores, Arc::new(postgres), producer, config, stats).run(consumer, shutdown.clone()).await?;
    shutdown.cancel();
    reporter.await.ok();
    if let Some(expiring) = expiring {
        expiring.await.ok();
    }
    if let Some(folder) = folder {
        folder.abort();
    }
    Ok(())
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let postgres = connect(&args.database).await?;
    let index = SearchIndex::open(&args.index.index_dir, Access::Read, args.index.options())
        .with_context(|| format!("opening the index in {}", args.index.index_dir.display()))?;
    let enrich = if args.enrich.no_enrich { None } else { Some(args.enrich.serve(&args.model)?) };
    let keys = args.http.keys()?;
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
    args.brands.load(&postgres).await?;
    let (rematcher, rematching) = Rematcher::spawn(postgres.clone());
    let mut state = AppState::new(postgres, index, enrich, keys);
    state.rate_limiter = args.http.rate_limiter()?;
    state.rematcher = Some(rematcher);
    state.lag = Some(Arc::new(KafkaLag::new(
        args.kafka.config(),
        vec![
            (args.worker_group.clone(), args.kafka.topics.topic_comments.clone()),
            (args.sink_group.clone(), args.kafka.topics.topic_enriched.clone()),
        ],
    )));
    let copy_finder = args.copies.spawn(state.trends.postgres());
    state.copy_finder = copy_finder.as_ref().map(|(progress, _)| Arc::clone(progress));
    let themer = args.themes.spawn(state.trends.postgres());
    state.themer = themer.as_ref().map(|(progress, _)| Arc::clone(progress));
    let shutdown = shutdown_on_signal();
    let pushing = args.push.start(&state.trends, &shutdown)?;
    // Deletions go to the sinks as tombstones on the enriched topic.
    let tombstones: Arc<dyn Producer> = Arc::new(args.kafka.config().producer()?);
    let eraser = args.erasure.start(
        &mut state,
        tombstones,
        &args.kafka.topics.topic_enriched,
        args.pseudonym_key.as_deref(),
        &shutdown,
    )?;
    let (server, addr) = murmur_api::bind(state, args.http.listen, args.http.http_workers)
        .with_context(|| format!("binding {}", args.http.listen))?;
    tracing::info!(url = %format!("http://{addr}"), "API listening");
    server.await?;
    shutdown.cancel();
    eraser.await.ok();
    rematching.abort();
    for (_, task) in copy_finder.into_iter() {
        task.abort();
    }
    for (_, task) in themer.into_iter() {
        task.abort();
    }
    for task in pushing {
        task.await.ok();
    }
    Ok(())
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
    let kafka = args.kafka.config();
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
        let options = args.push.scheduler().context("the scheduler needs MURMUR_SCHEDULER_TICK_MS > 0")?;
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
