//! `murmur-bench pipeline`: the real pipeline, models included, in this process over the broker (as
//! `bench plumbing` runs it, with the models in place of the stub). First its capacity: a backlog produced
//! before it starts, drained through the models into Postgres and the index, against the peer measured in the
//! same run, the models alone on the same texts in the same batches. Then its latency: comments offered at a
//! steady fraction of that capacity, each timed from the moment it was produced to the index commit that made
//! it searchable.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use murmur_core::Enricher;
use murmur_ingest::queue::Producer;

use clap::Args;
use murmur_cli::{home_path, KafkaArgs, ModelArgs, DEMO_CORPUS};

use crate::plumbing::{comments, corpus_texts, delete_topics, fresh_topics, InProcess, Setup};

#[derive(Args)]
pub struct PipelineArgs {
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

pub async fn pipeline(args: PipelineArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rate_fraction > 0.0 && args.rate_fraction <= 1.0, "--rate-fraction must be in (0, 1]");
    anyhow::ensure!(args.backlog > 0 && args.seconds > 0, "--backlog and --seconds must be positive");
    let texts = corpus_texts(&args.corpus)?;
    let kafka = args.kafka.config();
    let (run, topics) = fresh_topics(&kafka, args.partitions).await?;
    let models = args.model.load()?;
    let model_id = models.model_id().to_owned();

    // The peer: the models alone, on the backlog's texts in the worker's batches.
    let backlog_texts: Vec<&str> = texts.iter().cycle().take(args.backlog).map(String::as_str).collect();
    let started = Instant::now();
    for batch in backlog_texts.chunks(args.worker_batch.max(1)) {
        models.enrich(batch).map_err(|e| anyhow::anyhow!("the models failed: {e}"))?;
    }
    let models_rate = args.backlog as f64 / started.elapsed().as_secs_f64();
    eprintln!("the models alone: {models_rate:.0} comments/s");

    // Capacity: the backlog, all produced before the pipeline starts.
    let records = comments(&texts, args.backlog, chrono::Duration::hours(1), &topics.comments);
    let producer = kafka.producer()?;
    producer.send_all(&records).await?;
    let setup = Setup {
        kafka: &kafka,
        run: &run,
        topics: &topics,
        worker_batch: args.worker_batch,
        sink_batch: 2000,
        stamp_index: true,
    };
    let pipeline = InProcess::start(setup, Box::new(models)).await?;
    // Timed from the first comment the worker reads: joining the consumer groups is not the pipeline's pace.
    while pipeline.consumed() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let keys: Vec<String> = records.iter().map(key_of).collect::<anyhow::Result<_>>()?;
    let drained = wait_searchable(&pipeline, &keys, Duration::from_secs(3600)).await?;
    let capacity = args.backlog as f64 / (drained - started).as_secs_f64();
    eprintln!("the pipeline drained {} comments at {capacity:.0} comments/s", args.backlog);

    // Latency at a steady rate below capacity: each tick produces what is due by then.
    let rate = capacity * args.rate_fraction;
    let total = (rate * args.seconds as f64).round().max(1.0) as usize;
    let steady =
        comments(&texts, args.backlog + total, chrono::Duration::hours(1), &topics.comments).split_off(args.backlog);
    let mut produced_at: Vec<(String, Instant)> = Vec::with_capacity(total);
    let (started, mut sent) = (Instant::now(), 0);
    while sent < total {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let due = ((started.elapsed().as_secs_f64() * rate) as usize).min(total);
        if due > sent {
            let now = Instant::now();
            producer.send_all(&steady[sent..due]).await?;
            for record in &steady[sent..due] {
                produced_at.push((key_of(record)?, now));
            }
            sent = due;
        }
    }
    let offered_seconds = started.elapsed().as_secs_f64();
    let keys: Vec<String> = produced_at.iter().map(|(k, _)| k.clone()).collect();
    wait_searchable(&pipeline, &keys, Duration::from_secs(600)).await?;
    let mut latencies: Vec<f64> = produced_at
        .iter()
        .filter_map(|(key, at)| pipeline.index.durable_at(key).map(|done| (done - *at).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    pipeline.stop().await?;
    delete_topics(&kafka, &topics).await;

    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "pipeline with the models ({model_id}), {} partitions, worker batches of {}, this process",
        args.partitions, args.worker_batch
    );
    println!("| measure | comments/s | vs the models alone |");
    println!("|---|---|---|");
    println!("| the models alone ({} comments) | {models_rate:.1} | 1.00× |", args.backlog);
    println!(
        "| the pipeline, a backlog of {} (Kafka → models → Postgres + index) | {capacity:.1} | {:.2}× |",
        args.backlog,
        capacity / models_rate
    );
    println!(
        "| steady offered rate ({:.0}% of capacity, {total} comments over {offered_seconds:.0} s) | {:.1} | {:.2}× |",
        args.rate_fraction * 100.0,
        total as f64 / offered_seconds,
        total as f64 / offered_seconds / models_rate
    );
    println!();
    println!("latency from produce to searchable (index commit) at the steady rate, ms:");
    println!("| p50 | p95 | p99 | max |");
    println!("|---|---|---|---|");
    println!("| {:.0} | {:.0} | {:.0} | {:.0} |", pct(0.5), pct(0.95), pct(0.99), pct(1.0));
    Ok(())
}

fn key_of(record: &murmur_ingest::queue::Record) -> anyhow::Result<String> {
    let key = record.key.as_deref().context("a benchmark comment without a key")?;
    Ok(String::from_utf8_lossy(key).into_owned())
}

/// Waits until every key is searchable; returns when the last one became so.
async fn wait_searchable(pipeline: &InProcess, keys: &[String], limit: Duration) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + limit;
    loop {
        let stamps: Option<Vec<Instant>> = keys.iter().map(|k| pipeline.index.durable_at(k)).collect();
        if let Some(stamps) = stamps {
            return stamps.into_iter().max().context("no comments to wait for");
        }
        anyhow::ensure!(Instant::now() < deadline, "not all {} comments searchable after {limit:?}", keys.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
