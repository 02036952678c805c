//! Retention against ingest: the pipeline without the models (as `plumbing` runs it) ingests the same live
//! stream twice over a database and index that already hold as many comments past the retention window,
//! once with retention off and once with it deleting those old comments meanwhile (Postgres and the index,
//! rollups kept); the ingest rates are compared, alternating the two runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use murmur_cli::{home_path, KafkaArgs, DEMO_CORPUS};
use murmur_core::CommentStore;
use murmur_enrich::StubEnricher;
use murmur_ingest::kafka::KafkaConfig;
use murmur_ingest::queue::{Producer, Record};
use murmur_ingest::retention::Retention;
use murmur_ingest::PipelineStats;
use tokio_util::sync::CancellationToken;

use crate::plumbing::{corpus_texts, delete_topics, fresh_topics, InProcess, Setup};

#[derive(Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// New comments ingested in each run (and as many old ones stored before it).
    #[arg(long, default_value_t = 50_000)]
    pub comments: usize,
    /// Runs of each kind, alternated.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Where the comments' texts come from (real tweets, reused in turn).
    #[arg(long, env = "MURMUR_DEMO_CORPUS", default_value = DEMO_CORPUS, value_parser = home_path)]
    pub corpus: PathBuf,
}

/// `n` comments `days_ago` days before now (a millisecond apart), ids `prefix…`.
fn comments(texts: &[String], n: usize, days_ago: i64, prefix: &str, topic: &str) -> Vec<Record> {
    let start = chrono::Utc::now() - chrono::Duration::days(days_ago);
    (0..n)
        .map(|i| {
            let id = format!("{prefix}{i}");
            let comment = serde_json::json!({
                "id": id, "source": "twitter", "author": format!("author{}", i % 9973),
                "text": texts[i % texts.len()], "tags": ["acme"],
                "created_at": (start + chrono::Duration::milliseconds(i as i64)).to_rfc3339(),
            });
            Record {
                topic: topic.to_owned(),
                key: Some(format!("twitter/{id}").into_bytes()),
                payload: comment.to_string().into_bytes(),
                headers: Vec::new(),
            }
        })
        .collect()
}

/// One run: old comments stored first, then the new ones timed (with retention deleting the old ones when
/// `retention`). Returns (new comments/s, old comments retention removed meanwhile).
async fn run(
    kafka: &KafkaConfig,
    args: &RetentionArgs,
    texts: &[String],
    retention: bool,
) -> anyhow::Result<(f64, u64)> {
    let (run, topics) = fresh_topics(kafka, args.partitions).await?;
    let n = args.comments;
    let setup = Setup { kafka, run: &run, topics: &topics, worker_batch: 256, sink_batch: 2000, stamp_index: false };
    let pipeline = InProcess::start(setup, Box::new(StubEnricher)).await?;
    let producer = kafka.producer()?;
    let wait = |target: u64| {
        let pipeline = &pipeline;
        async move {
            let deadline = Instant::now() + Duration::from_secs(1800);
            while pipeline.stored() < target {
                anyhow::ensure!(Instant::now() < deadline, "only {} of {target} stored", pipeline.stored());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok(())
        }
    };
    for chunk in comments(texts, n, 400, "old", &topics.comments).chunks(20_000) {
        producer.send_all(chunk).await?;
    }
    wait(n as u64).await?;
    let stats = Arc::new(PipelineStats::default());
    let shutdown = CancellationToken::new();
    let expiring = retention.then(|| {
        let stores: Vec<Arc<dyn CommentStore>> = vec![pipeline.postgres.clone(), pipeline.index.clone()];
        let retention = Retention {
            comments: Some(Duration::from_secs(30 * 86_400)),
            every: Duration::from_secs(1),
            ..Retention::default()
        };
        tokio::spawn(retention.run(stores, Arc::clone(&stats), shutdown.clone()))
    });
    let started = Instant::now();
    for chunk in comments(texts, n, 0, "new", &topics.comments).chunks(20_000) {
        producer.send_all(chunk).await?;
    }
    wait(2 * n as u64).await?;
    pipeline.database.fold_rollups().await?;
    let seconds = started.elapsed().as_secs_f64();
    shutdown.cancel();
    if let Some(expiring) = expiring {
        expiring.await.ok();
    }
    pipeline.stop().await?;
    delete_topics(kafka, &topics).await;
    Ok((n as f64 / seconds, PipelineStats::get(&stats.expired)))
}

pub async fn retention(args: RetentionArgs) -> anyhow::Result<()> {
    let texts = corpus_texts(&args.corpus)?;
    let kafka = args.kafka.config();
    let mut rows = Vec::new();
    for round in 0..args.rounds.max(1) {
        for on in [false, true] {
            let (rate, removed) = run(&kafka, &args, &texts, on).await?;
            eprintln!(
                "round {round}: retention {} {rate:.0} comments/s, {removed} old removed",
                if on { "on" } else { "off" }
            );
            rows.push((on, rate, removed));
        }
    }
    let mean = |on: bool| {
        let rates: Vec<f64> = rows.iter().filter(|r| r.0 == on).map(|r| r.1).collect();
        rates.iter().sum::<f64>() / rates.len() as f64
    };
    println!(
        "retention: {} new comments ingested over {} old ones past a 30-day window, stub enrichment, {} partitions, \
         this process; runs alternated",
        args.comments, args.comments, args.partitions
    );
    println!("| run | ingest comments/s | old comments removed meanwhile |");
    println!("|---|---|---|");
    for (on, rate, removed) in &rows {
        println!("| retention {} | {rate:.0} | {removed} |", if *on { "on" } else { "off" });
    }
    let (off, on) = (mean(false), mean(true));
    println!("| mean: on against off | {:.2}× | |", on / off);
    Ok(())
}
