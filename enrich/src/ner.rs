//! The NER head: IOB2 tags per word, decoded into entity spans of names written in the text.
//!
//! A word (as the tokenizer's pre-tokenizer splits text) is read at its first sub-token, as the concatenated
//! hidden states of the task model's last `layers` layers, plus the word's casing and shape, which the
//! uncased encoder cannot see ("apple" and "Apple" are one token to it). A projection and, optionally, a
//! bidirectional LSTM over the sentence give per-word tag scores; decoding is Viterbi under the IOB2
//! constraint (an `I-X` only after `B-X` or `I-X`), so every decoded sequence is a well-formed set of spans.
//! Names that touch an `@handle` or `#hashtag` give way to the mention, read by rule
//! ([`crate::social::with_mentions`]).

use murmur_core::{Entity, EntityLabel};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, RNN};
use tch::{Kind, Tensor};

use crate::encoder::Word;
use crate::EnrichError;

/// IOB2 tags, in the order of the head's outputs.
pub const NER_TAGS: [&str; 9] = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"];

/// Casing and shape features per word (see [`word_shape`]).
pub const SHAPE_FEATURES: usize = 8;

/// What the uncased encoder cannot see: lower / Title / UPPER / mIxed case, digits, punctuation only, first
/// word of the text, non-ASCII.
pub fn word_shape(word: &str, first: bool) -> [f32; SHAPE_FEATURES] {
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    let uppers = word.chars().filter(|c| c.is_uppercase()).count();
    let starts_upper = word.chars().next().is_some_and(char::is_uppercase);
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    [
        flag(letters > 0 && uppers == 0),
        flag(starts_upper && (uppers == 1 || letters == 1)),
        flag(letters > 1 && uppers == letters),
        flag(uppers > 0 && !starts_upper || (starts_upper && uppers > 1 && uppers < letters)),
        flag(word.chars().any(|c| c.is_numeric())),
        flag(!word.chars().any(char::is_alphanumeric)),
        flag(first),
        flag(!word.is_ascii()),
    ]
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NerHeadConfig {
    /// How many of the task model's last layers are concatenated per word.
    pub layers: usize,
    /// Width of the projection before the LSTM.
    pub projection: i64,
    /// LSTM units per direction; 0 for no LSTM (tags from the projection alone).
    pub lstm: i64,
    pub tags: Vec<String>,
}

pub struct NerHead {
    config: NerHeadConfig,
    projection: nn::Linear,
    lstm: Option<(nn::LSTM, nn::LSTM)>,
    output: nn::Linear,
}

impl NerHead {
    pub fn new(path: &nn::Path, dim: i64, config: &NerHeadConfig) -> Self {
        let inputs = dim * config.layers as i64 + SHAPE_FEATURES as i64;
        let tags = config.tags.len() as i64;
        let projection = nn::linear(path / "projection", inputs, config.projection, Default::default());
        let (lstm, output) = if config.lstm > 0 {
            let lstm = |name: &str| nn::lstm(path / name, config.projection, config.lstm, Default::default());
            let output = nn::linear(path / "output", 2 * config.lstm, tags, Default::default());
            (Some((lstm("forward"), lstm("backward"))), output)
        } else {
            (None, nn::linear(path / "output", config.projection, tags, Default::default()))
        };
        Self { config: config.clone(), projection, lstm, output }
    }

    /// Tag logits `[batch, words, tags]` from word features `[batch, words, layers × dim + SHAPE_FEATURES]`;
    /// `train` enables dropout. Positions past a text's length are padding and never influence real ones
    /// (the backward LSTM reads each text reversed within its length).
    pub fn logits(&self, features: &Tensor, lengths: &[i64], train: bool) -> Tensor {
        let x = self.projection.forward(&features.dropout(0.2, train)).gelu("none");
        let Some((forward, backward)) = &self.lstm else {
            return self.output.forward(&x.dropout(0.2, train));
        };
        let device = x.device();
        let reverse = reversal_index(lengths, x.size()[1], x.size()[2]).to_device(device);
        let (ahead, _) = forward.seq(&x);
        let (behind, _) = backward.seq(&x.gather(1, &reverse, false));
        let back = reversal_index(lengths, x.size()[1], behind.size()[2]).to_device(device);
        let behind = behind.gather(1, &back, false);
        self.output.forward(&Tensor::cat(&[ahead, behind], 2).dropout(0.2, train))
    }

    /// The best IOB2 tag sequence of each text and each tag's probability.
    pub fn decode(&self, logits: &Tensor, lengths: &[i64]) -> Result<Vec<Vec<(usize, f32)>>, EnrichError> {
        let log_probs = logits.to_kind(Kind::Float).log_softmax(-1, Kind::Float).to_device(tch::Device::Cpu);
        let rows = Vec::<Vec<Vec<f32>>>::try_from(&log_probs)?;
        let allowed = transitions(&self.config.tags);
        Ok(rows.into_iter().zip(lengths).map(|(row, &n)| viterbi(&row[..n as usize], &allowed)).collect())
    }

    /// The names in `text` from its words' decoded tags, as character spans. A span starts at the name: a
    /// leading quote or retweet marker (`RT`) is not part of it.
    pub fn spans(&self, text: &str, words: &[Word], tags: &[(usize, f32)]) -> Vec<Entity> {
        let names: Vec<String> = tags.iter().map(|&(t, _)| self.config.tags[t].clone()).collect();
        chunks(&names)
            .into_iter()
            .filter_map(|chunk| {
                let label = EntityLabel::parse(&chunk.kind).filter(|l| !l.is_mention())?;
                let word = |w: &Word| text.get(w.start..w.end).unwrap_or("");
                let is_marker = |w: &str| !w.chars().any(char::is_alphanumeric) || w.eq_ignore_ascii_case("rt");
                let first = (chunk.start..chunk.end).find(|&w| !is_marker(word(&words[w])))?;
                let (start, end) = (words[first].start, words[chunk.end - 1].end);
                let score = tags[chunk.start..chunk.end].iter().map(|&(_, p)| p).sum::<f32>()
                    / (chunk.end - chunk.start) as f32;
                let start_char = text.get(..start)?.chars().count();
                let entity = text.get(start..end)?;
                Some(Entity {
                    label,
                    text: entity.to_owned(),
                    start: start_char,
                    end: start_char + entity.chars().count(),
                    score,
                })
            })
            .collect()
    }
}

/// An entity as conlleval sees it: type and word span `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Chunk {
    pub kind: String,
    pub start: usize,
    pub end: usize,
}

/// The entities of an IOB tag sequence, the way conlleval reads them: `B-X` starts an entity, so does an
/// `I-X` that follows `O` or another type (IOB1 and malformed IOB2); an entity ends before `O`, `B-` or a
/// change of type.
pub fn chunks(tags: &[String]) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize)> = None;
    for (i, tag) in tags.iter().enumerate() {
        let (prefix, kind) = match tag.split_once('-') {
            Some((p, k)) => (p, k),
            None => ("O", ""),
        };
        let continues = prefix == "I" && open.as_ref().is_some_and(|(k, _)| k == kind);
        if !continues {
            if let Some((kind, start)) = open.take() {
                out.push(Chunk { kind, start, end: i });
            }
            if prefix == "B" || prefix == "I" {
                open = Some((kind.to_owned(), i));
            }
        }
    }
    if let Some((kind, start)) = open {
        out.push(Chunk { kind, start, end: tags.len() });
    }
    out
}

/// For `gather` along dim 1: position `t` of row `r` reads `len_r − 1 − t` within the row's length and
/// itself beyond it. Applying it twice is the identity.
fn reversal_index(lengths: &[i64], width: i64, dim: i64) -> Tensor {
    let index: Vec<i64> =
        lengths.iter().flat_map(|&n| (0..width).map(move |t| if t < n { n - 1 - t } else { t })).collect();
    Tensor::from_slice(&index).view([lengths.len() as i64, width, 1]).expand([-1, -1, dim], false)
}

/// `allowed[from][to]` under IOB2, with `from == tags.len()` the start of the text.
fn transitions(tags: &[String]) -> Vec<Vec<bool>> {
    let start = tags.len();
    (0..=start)
        .map(|from| {
            tags.iter()
                .map(|to| match to.strip_prefix("I-") {
                    None => true,
                    Some(kind) => from < start && tags[from].get(2..) == Some(kind),
                })
                .collect()
        })
        .collect()
}

/// The most probable tag sequence under the allowed transitions, with each chosen tag's probability.
fn viterbi(log_probs: &[Vec<f32>], allowed: &[Vec<bool>]) -> Vec<(usize, f32)> {
    let Some(first) = log_probs.first() else { return Vec::new() };
    let tags = first.len();
    let start = allowed.len() - 1;
    let mut score: Vec<f32> = (0..tags).map(|t| if allowed[start][t] { first[t] } else { f32::NEG_INFINITY }).collect();
    let mut back: Vec<Vec<usize>> = Vec::with_capacity(log_probs.len());
    for row in &log_probs[1..] {
        let mut next = vec![f32::NEG_INFINITY; tags];
        let mut from = vec![0; tags];
        for to in 0..tags {
            for prev in 0..tags {
                let s = score[prev] + row[to];
                if allowed[prev][to] && s > next[to] {
                    next[to] = s;
                    from[to] = prev;
                }
            }
        }
        back.push(from);
        score = next;
    }
    let mut best = (0..tags).max_by(|&a, &b| score[a].total_cmp(&score[b])).unwrap_or(0);
    let mut path = vec![best; log_probs.len()];
    for (i, from) in back.iter().enumerate().rev() {
        best = from[best];
        path[i] = best;
    }
    path.iter().zip(log_probs).map(|(&t, row)| (t, row[t].exp())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> Vec<String> {
        NER_TAGS.iter().map(|t| (*t).to_owned()).collect()
    }

    fn split(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn viterbi_never_opens_with_inside_tags() {
        let allowed = transitions(&tags());
        // Per word, the argmax alone would read O, I-ORG, I-ORG: ill-formed.
        let mut rows = vec![vec![-5.0f32; 9]; 3];
        rows[0][0] = -0.1;
        rows[1][4] = -0.2;
        rows[1][3] = -0.4;
        rows[2][4] = -0.1;
        let path: Vec<usize> = viterbi(&rows, &allowed).into_iter().map(|(t, _)| t).collect();
        assert_eq!(path, vec![0, 3, 4], "O B-ORG I-ORG");
        let names: Vec<String> = path.iter().map(|&t| NER_TAGS[t].to_owned()).collect();
        assert_eq!(chunks(&names).len(), 1);
    }

    #[test]
    fn transitions_follow_iob2() {
        let allowed = transitions(&tags());
        let (o, b_per, i_per, i_org, start) = (0, 1, 2, 4, 9);
        assert!(allowed[b_per][i_per] && allowed[i_per][i_per] && allowed[o][b_per]);
        assert!(!allowed[o][i_per] && !allowed[b_per][i_org] && !allowed[start][i_per]);
    }

    #[test]
    fn chunks_follow_conlleval() {
        let c = chunks(&split("B-PER I-PER O I-ORG I-ORG B-ORG I-LOC"));
        let spans: Vec<(&str, usize, usize)> = c.iter().map(|c| (c.kind.as_str(), c.start, c.end)).collect();
        assert_eq!(spans, vec![("PER", 0, 2), ("ORG", 3, 5), ("ORG", 5, 6), ("LOC", 6, 7)]);
    }

    #[test]
    fn reversal_stays_within_each_length() {
        let index = reversal_index(&[3, 1], 4, 1).view([2, 4]);
        let rows = Vec::<Vec<i64>>::try_from(&index).expect("ints");
        assert_eq!(rows, vec![vec![2, 1, 0, 3], vec![0, 1, 2, 3]]);
    }

    #[test]
    fn spans_skip_markers() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let config = NerHeadConfig { layers: 1, projection: 4, lstm: 0, tags: tags() };
        let head = NerHead::new(&vs.root(), 4, &config);
        let text = "RT @united Delta rocks";
        let words =
            [(0, 2), (3, 4), (4, 10), (11, 16), (17, 22)].map(|(start, end)| Word { first_token: 0, start, end });
        // RT and @united tagged as ORG by a confused model, Delta rightly: the first span starts at the name.
        let tags = [(3, 0.9), (4, 0.9), (4, 0.9), (3, 0.8), (0, 0.9)];
        let entities = head.spans(text, &words, &tags);
        let found: Vec<(&str, usize, usize)> = entities.iter().map(|e| (e.text.as_str(), e.start, e.end)).collect();
        assert_eq!(found, vec![("united", 4, 10), ("Delta", 11, 16)]);
        let kept = crate::social::with_mentions(text, entities);
        assert!(kept.iter().all(|e| e.text != "united"), "the name inside @united gives way to the mention");
    }

    #[test]
    fn shapes() {
        assert_eq!(word_shape("google", false)[0], 1.0);
        assert_eq!(word_shape("Google", false)[1], 1.0);
        assert_eq!(word_shape("NASA", false)[2], 1.0);
        assert_eq!(word_shape("iPhone", false)[3], 1.0);
        assert_eq!(word_shape("McDonald", false)[3], 1.0);
        assert_eq!(word_shape("Pixel7", false)[4], 1.0);
        assert_eq!(word_shape(",", true)[5..7], [1.0, 1.0]);
        assert_eq!(word_shape("Zürich", false)[7], 1.0);
        assert_eq!(word_shape("A", false)[1..3], [1.0, 0.0], "a one-letter capital is Title, not UPPER");
    }
}
