//! `murmur-bench segmentation`: how BM25 should cut Chinese, Japanese and Korean text, measured on lingua's
//! test sentences (shipped in the `lingua-*-language-model` crates: 729 Chinese, 412 Japanese, 1,000 Korean).
//! murmur indexes these scripts a character (a Hangul syllable) at a time and turns a query's word into a
//! phrase of its characters; the peers are word segmenters, jieba-rs (Chinese: its default and its search mode,
//! which adds the dictionary words inside long words) and TinySegmenter (Japanese), and for Korean the words
//! between spaces murmur indexed before (a Korean word carries its particles: `배터리가`).
//!
//! Queries are the segmenters' own words (2 characters or more, in 2 sentences or more), which favours them;
//! for Korean, the words between spaces without their last syllable (mostly a particle): `배터리` of `배터리가`.
//! A query finds a sentence when the query's tokens, cut by the same analyser, appear in the sentence's tokens
//! at the same offsets (a phrase); the truth is whether the sentence holds the query's characters. Every
//! analyser here finds only sentences that hold the query, so the measure that separates them is recall: the
//! occurrences a segmenter misses are those it cut differently in the sentence than in the query.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;

#[derive(Args)]
pub struct SegmentationArgs {
    /// The folder holding the `lingua-<language>-language-model-<version>` crates (their `testdata/`): cargo's
    /// registry sources, e.g. `$CARGO_HOME/registry/src/<index>`.
    #[arg(long)]
    pub testdata: PathBuf,
    /// Test sentences per language at most.
    #[arg(long, default_value_t = 1000)]
    pub lines: usize,
    /// Missed occurrences listed per segmenter.
    #[arg(long, default_value_t = 6)]
    pub examples: usize,
}

/// A token: its text and its character range in the analysed text.
type Token = (String, usize, usize);

/// How an analyser cuts a text.
type Cut<'a> = Box<dyn Fn(&str) -> Vec<Token> + 'a>;

/// An analyser under test.
struct Analyser<'a> {
    name: &'static str,
    cut: Cut<'a>,
}

fn murmur(text: &str) -> Vec<Token> {
    let chars: BTreeMap<usize, usize> = text.char_indices().enumerate().map(|(n, (byte, _))| (byte, n)).collect();
    let char_at = |byte: usize| chars.get(&byte).copied().unwrap_or_else(|| text.chars().count());
    murmur_search::terms(text)
        .into_iter()
        .map(|(term, range)| (term, char_at(range.start), char_at(range.end)))
        .collect()
}

/// Words of an unspaced script only (punctuation, digits and Latin words are not what is compared).
fn is_cjk_word(word: &str) -> bool {
    word.chars().count() >= 2
        && word.chars().all(|c| {
            matches!(u32::from(c), 0x3041..=0x3096 | 0x309D..=0x309F | 0x30A1..=0x30FA | 0x30FC..=0x30FF
                | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7A3)
        })
}

/// Sequential words as `(word, start, end)` in characters.
fn spans<'w>(words: impl IntoIterator<Item = &'w str>) -> Vec<Token> {
    let mut at = 0;
    words
        .into_iter()
        .map(|w| {
            let n = w.chars().count();
            at += n;
            (w.to_lowercase(), at - n, at)
        })
        .collect()
}

/// Runs of letters and digits, as murmur cut every script before.
fn spaced_words(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut start = None;
    for (n, c) in text.chars().chain(std::iter::once(' ')).enumerate() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(n),
            (false, Some(from)) => {
                out.push((text.chars().skip(from).take(n - from).collect::<String>().to_lowercase(), from, n));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Whether `query`'s tokens appear in `doc`'s at the same relative offsets.
fn finds(doc: &[Token], query: &[Token]) -> bool {
    let Some(first) = query.first() else { return false };
    let present: HashSet<(&str, usize, usize)> = doc.iter().map(|(t, s, e)| (t.as_str(), *s, *e)).collect();
    doc.iter().filter(|(t, _, _)| *t == first.0).any(|(_, start, _)| {
        query.iter().all(|(t, s, e)| {
            let (s, e) = (start + s - first.1, start + e - first.1);
            present.contains(&(t.as_str(), s, e))
        })
    })
}

fn sentences(root: &Path, language: &str, lines: usize) -> anyhow::Result<Vec<String>> {
    let dir = crate::measure::lingua_crate_dir(root, language)?;
    let path = dir.join("testdata").join("sentences.txt");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().filter(|l| !l.trim().is_empty()).take(lines).map(str::to_owned).collect())
}

/// The distinct `words` of 2 characters or more, of these scripts only, that 2 `lines` or more hold.
fn queries(words: impl IntoIterator<Item = String>, lines: &[String]) -> Vec<String> {
    let mut queries: Vec<String> = words
        .into_iter()
        .filter(|t| is_cjk_word(t))
        .collect::<HashSet<_>>()
        .into_iter()
        .filter(|q| lines.iter().filter(|l| l.contains(q.as_str())).count() >= 2)
        .collect();
    queries.sort();
    queries
}

/// Recall of each analyser on `queries` (what `source` says they are), with timings.
fn measure(
    name: &str,
    lines: &[String],
    analysers: &[Analyser<'_>],
    queries: &[String],
    source: &str,
    examples: usize,
) {
    let mut cut: Vec<Vec<Vec<Token>>> = Vec::new();
    let mut micros = Vec::new();
    for analyser in analysers {
        let started = Instant::now();
        cut.push(lines.iter().map(|l| (analyser.cut)(l)).collect());
        micros.push(1e6 * started.elapsed().as_secs_f64() / lines.len().max(1) as f64);
    }
    let mut occurrences = 0usize;
    let mut found = vec![0usize; analysers.len()];
    let mut complete = vec![0usize; analysers.len()];
    let mut missed: Vec<Vec<(String, String)>> = vec![Vec::new(); analysers.len()];
    for q in queries {
        let holding: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains(q.as_str())).collect();
        occurrences += holding.len();
        for (a, analyser) in analysers.iter().enumerate() {
            let query = (analyser.cut)(q);
            let hits: Vec<usize> = holding.iter().copied().filter(|&i| finds(&cut[a][i], &query)).collect();
            found[a] += hits.len();
            complete[a] += usize::from(hits.len() == holding.len());
            for &i in holding.iter().filter(|i| !hits.contains(i)) {
                if missed[a].len() < examples {
                    missed[a].push((q.clone(), context(&lines[i], q)));
                }
            }
        }
    }
    println!(
        "\n{name}: {} sentences, {} queries ({source}), {occurrences} sentences holding one",
        lines.len(),
        queries.len()
    );
    println!("\n| analyser | occurrences found (recall) | queries with every occurrence found | terms per sentence | µs per sentence |");
    println!("|---|---|---|---|---|");
    for (a, analyser) in analysers.iter().enumerate() {
        let terms = cut[a].iter().map(Vec::len).sum::<usize>() as f64 / lines.len().max(1) as f64;
        println!(
            "| {} | {:.3} | {:.3} | {terms:.1} | {:.1} |",
            analyser.name,
            found[a] as f64 / occurrences.max(1) as f64,
            complete[a] as f64 / queries.len().max(1) as f64,
            micros[a]
        );
    }
    for (a, analyser) in analysers.iter().enumerate().filter(|(a, _)| !missed[*a].is_empty()) {
        println!("\n{} misses, e.g.:", analyser.name);
        for (q, around) in &missed[a] {
            println!(
                "  {q}: …{around}… cut as {:?}",
                (analyser.cut)(around).iter().map(|t| t.0.as_str()).collect::<Vec<_>>()
            );
        }
    }
}

/// A few characters either side of `q`'s first occurrence in `line`.
fn context(line: &str, q: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let at = line.find(q).map_or(0, |byte| line[..byte].chars().count());
    let (from, to) = (at.saturating_sub(4), (at + q.chars().count() + 4).min(chars.len()));
    chars[from..to].iter().collect()
}

pub fn segmentation(args: SegmentationArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let jieba = jieba_rs::Jieba::new();
    eprintln!("jieba-rs dictionary loaded in {:.1} s", started.elapsed().as_secs_f64());
    let jieba_words = |mode: jieba_rs::TokenizeMode| {
        let jieba = &jieba;
        move |text: &str| -> Vec<Token> {
            jieba.tokenize(text, mode, true).into_iter().map(|t| (t.word.to_lowercase(), t.start, t.end)).collect()
        }
    };
    let chinese = [
        Analyser { name: "murmur: characters, phrase queries", cut: Box::new(murmur) },
        Analyser { name: "jieba-rs words", cut: Box::new(jieba_words(jieba_rs::TokenizeMode::Default)) },
        Analyser { name: "jieba-rs search mode", cut: Box::new(jieba_words(jieba_rs::TokenizeMode::Search)) },
    ];
    let lines = sentences(&args.testdata, "chinese", args.lines)?;
    let words = lines.iter().flat_map(|l| (chinese[1].cut)(l)).map(|t| t.0);
    let asked = queries(words.collect::<Vec<_>>(), &lines);
    measure("Chinese", &lines, &chinese, &asked, "jieba-rs's words", args.examples);

    let japanese = [
        Analyser { name: "murmur: characters, phrase queries", cut: Box::new(murmur) },
        Analyser {
            name: "TinySegmenter words",
            cut: Box::new(|text: &str| spans(tinysegmenter::tokenize(text).iter().map(String::as_str))),
        },
    ];
    let lines = sentences(&args.testdata, "japanese", args.lines)?;
    let words = lines.iter().flat_map(|l| (japanese[1].cut)(l)).map(|t| t.0);
    let asked = queries(words.collect::<Vec<_>>(), &lines);
    measure("Japanese", &lines, &japanese, &asked, "TinySegmenter's words", args.examples);

    let korean = [
        Analyser { name: "murmur: syllables, phrase queries", cut: Box::new(murmur) },
        Analyser { name: "words between spaces (murmur before)", cut: Box::new(spaced_words) },
    ];
    let lines = sentences(&args.testdata, "korean", args.lines)?;
    let stems = lines.iter().flat_map(|l| spaced_words(l)).filter_map(|(word, _, _)| {
        let syllables: Vec<char> = word.chars().collect();
        (syllables.len() >= 3).then(|| syllables[..syllables.len() - 1].iter().collect::<String>())
    });
    let asked = queries(stems.collect::<Vec<_>>(), &lines);
    measure("Korean", &lines, &korean, &asked, "words between spaces less their last syllable", args.examples);
    Ok(())
}
