//! The NER head: IOB2 tags per word from the shared encoder's pass, decoded into entity spans.
//!
//! A word (as the tokenizer's pre-tokenizer splits text) is read at its first sub-token, as the concatenated
//! hidden states of the encoder's last `layers` layers, plus the word's casing and shape, which the uncased
//! encoder cannot see ("apple" and "Apple" are one token to it). A projection and a bidirectional LSTM over
//! the sentence give per-word tag scores; decoding is Viterbi under the IOB2 constraint (an `I-X` only after
//! `B-X` or `I-X`), so every decoded sequence is a well-formed set of spans. Stored as `head.json` +
//! `head.safetensors` beside a model card.
//!
//! Optionally (`tuned_layers` > 0) the head carries its own fine-tuned copy of the encoder's top blocks: it
//! runs them on the shared pass's hidden states from below those blocks, so NER gets a partly fine-tuned
//! encoder for the cost of those blocks only, while the embedding and sentiment keep the shared one.

use std::path::Path;

use murmur_core::{Entity, EntityLabel};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, RNN};
use tch::{Device, Kind, Tensor};

use crate::bert::{BertConfig, BertLayers};
use crate::encoder::{EncodedBatch, Word};
use crate::metrics::chunks;
use crate::{head_files, EnrichError};

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
pub struct NerHeadConfig {
    /// The encoder whose hidden states the head reads; a head only fits its own encoder.
    pub encoder: String,
    /// The encoder's hidden size.
    pub dim: i64,
    /// How many of the encoder's last layers are concatenated per word.
    pub layers: usize,
    /// Width of the projection before the LSTM.
    pub projection: i64,
    /// LSTM units per direction; 0 for no LSTM (tags from the projection alone).
    pub hidden: i64,
    pub tags: Vec<String>,
    /// The encoder's top blocks the head fine-tuned and carries (0: the shared encoder as is).
    #[serde(default)]
    pub tuned_layers: usize,
    /// The encoder's shape, needed to build the tuned blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder_config: Option<BertConfig>,
}

impl NerHeadConfig {
    /// Width of a word's input features.
    pub fn input_dim(&self) -> i64 {
        self.dim * self.layers as i64 + SHAPE_FEATURES as i64
    }

    /// Of the `layers` read per word, how many come from the shared encoder as is (the rest from the tuned
    /// blocks).
    pub fn frozen_layers(&self) -> usize {
        self.layers.saturating_sub(self.tuned_layers)
    }
}

pub struct NerHead {
    vs: nn::VarStore,
    config: NerHeadConfig,
    branch: Option<BertLayers>,
    projection: nn::Linear,
    lstm: Option<(nn::LSTM, nn::LSTM)>,
    output: nn::Linear,
}

/// What the head reads of an encoder pass, per batch row (padding zero):
pub struct HeadInput {
    /// With tuned layers: the hidden states below them `[batch, tokens, dim]` and the token mask.
    pub tokens: Option<(Tensor, Tensor)>,
    /// Each word's first-token position `[batch, words]`.
    pub positions: Tensor,
    /// The shared encoder's word features `[batch, words, frozen_layers × dim]`.
    pub frozen: Tensor,
    /// `[batch, words, SHAPE_FEATURES]`.
    pub shapes: Tensor,
    pub lengths: Vec<i64>,
}

impl NerHead {
    /// A freshly initialised head (initialisation follows libtorch's seed, see `tch::manual_seed`).
    ///
    /// Panics when `tuned_layers` > 0 without `encoder_config` (see [`NerHead::load`], which checks).
    pub fn new(config: NerHeadConfig) -> Self {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let branch = match (&config.encoder_config, config.tuned_layers) {
            (_, 0) => None,
            (Some(encoder), n) => Some(BertLayers::trainable(&(&root / "branch").set_group(1), encoder, n)),
            (None, _) => panic!("a NER head with tuned layers needs the encoder's config"),
        };
        let tags = config.tags.len() as i64;
        let projection = nn::linear(&root / "projection", config.input_dim(), config.projection, Default::default());
        let (lstm, output) = if config.hidden > 0 {
            let lstm = |name: &str| nn::lstm(&root / name, config.projection, config.hidden, Default::default());
            let output = nn::linear(&root / "output", 2 * config.hidden, tags, Default::default());
            (Some((lstm("forward"), lstm("backward"))), output)
        } else {
            (None, nn::linear(&root / "output", config.projection, tags, Default::default()))
        };
        Self { vs, config, branch, projection, lstm, output }
    }

    /// The fine-tuned copy of the encoder's top blocks, when the head has one.
    pub fn branch_mut(&mut self) -> Option<&mut BertLayers> {
        self.branch.as_mut()
    }

    pub fn config(&self) -> &NerHeadConfig {
        &self.config
    }

    pub(crate) fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    pub(crate) fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    /// What the head reads of an encoder pass over `texts` (one per batch row).
    pub fn input(&self, batch: &EncodedBatch, texts: &[&str]) -> HeadInput {
        head_input(batch, texts, &self.config)
    }

    /// Tag logits `[batch, words, tags]`; `train` enables dropout. Positions past a text's length are
    /// padding and never influence real ones (the backward LSTM reads each text reversed within its length).
    pub fn logits(&self, input: &HeadInput, train: bool) -> Tensor {
        let mut parts = vec![input.frozen.shallow_clone()];
        if let (Some(branch), Some((tokens, mask))) = (&self.branch, &input.tokens) {
            let states = branch.forward(tokens, mask);
            let read = self.config.layers.min(states.len());
            let dim = self.config.dim;
            let index = input.positions.unsqueeze(-1).expand([-1, -1, dim], false);
            parts.extend(states[states.len() - read..].iter().map(|s| s.gather(1, &index, false)));
        }
        parts.push(input.shapes.shallow_clone());
        let features = Tensor::cat(&parts, 2);
        let x = self.projection.forward(&features.dropout(0.2, train)).gelu("none");
        let Some((forward, backward)) = &self.lstm else {
            return self.output.forward(&x.dropout(0.2, train));
        };
        let reverse = reversal_index(&input.lengths, x.size()[1], x.size()[2]);
        let (ahead, _) = forward.seq(&x);
        let (behind, _) = backward.seq(&x.gather(1, &reverse, false));
        let behind = behind.gather(1, &reversal_index(&input.lengths, x.size()[1], behind.size()[2]), false);
        self.output.forward(&Tensor::cat(&[ahead, behind], 2).dropout(0.2, train))
    }

    /// The best IOB2 tag sequence of each text and each tag's probability.
    pub fn decode(&self, input: &HeadInput) -> Result<Vec<Vec<(usize, f32)>>, EnrichError> {
        let log_probs = tch::no_grad(|| self.logits(input, false).log_softmax(-1, Kind::Float));
        let rows = Vec::<Vec<Vec<f32>>>::try_from(&log_probs)?;
        let allowed = transitions(&self.config.tags);
        Ok(rows.into_iter().zip(&input.lengths).map(|(row, &n)| viterbi(&row[..n as usize], &allowed)).collect())
    }

    /// The entities of each text of an encoder pass, as character spans of `texts` (one per batch row).
    pub fn predict(&self, batch: &EncodedBatch, texts: &[&str]) -> Result<Vec<Vec<Entity>>, EnrichError> {
        let decoded = self.decode(&self.input(batch, texts))?;
        Ok(decoded
            .iter()
            .zip(&batch.words)
            .zip(texts)
            .map(|((tags, words), text)| self.spans(text, words, tags))
            .collect())
    }

    fn spans(&self, text: &str, words: &[Word], tags: &[(usize, f32)]) -> Vec<Entity> {
        let names: Vec<String> = tags.iter().map(|&(t, _)| self.config.tags[t].clone()).collect();
        chunks(&names)
            .into_iter()
            .filter_map(|chunk| {
                let label = EntityLabel::parse(&chunk.kind)?;
                // A span starts at the name: a leading `@`, `#`, quote or retweet marker (`RT`) is not part of
                // it ("RT @united" names United). Spans of markers alone are dropped.
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

    pub fn save(&self, dir: &Path) -> Result<(), EnrichError> {
        head_files::save(dir, &self.config, &self.vs)
    }

    pub fn load(dir: &Path) -> Result<Self, EnrichError> {
        let config: NerHeadConfig = head_files::read_config(dir)?;
        if config.tags != NER_TAGS {
            return Err(EnrichError::Unsupported(format!("NER tags {:?}", config.tags)));
        }
        if config.tuned_layers > 0 && config.encoder_config.is_none() {
            return Err(EnrichError::Unsupported("NER head with tuned layers but no encoder_config".into()));
        }
        let mut head = Self::new(config);
        head_files::load_weights(dir, &mut head.vs)?;
        Ok(head)
    }
}

/// Splits an encoder pass into what a head of `config` reads (see [`HeadInput`]).
pub(crate) fn head_input(batch: &EncodedBatch, texts: &[&str], config: &NerHeadConfig) -> HeadInput {
    let n = batch.hidden_states.len();
    let shared = &batch.hidden_states[..n - config.tuned_layers.min(n)];
    let frozen_states = &shared[shared.len().saturating_sub(config.frozen_layers())..];
    let (rows, width) = (batch.words.len(), batch.words.iter().map(Vec::len).max().unwrap_or(0).max(1));
    let mut positions = vec![0i64; rows * width];
    let mut shapes = vec![0f32; rows * width * SHAPE_FEATURES];
    for (r, (words, text)) in batch.words.iter().zip(texts).enumerate() {
        for (w, word) in words.iter().enumerate() {
            positions[r * width + w] = word.first_token as i64;
            let shape = word_shape(text.get(word.start..word.end).unwrap_or(""), w == 0);
            shapes[(r * width + w) * SHAPE_FEATURES..][..SHAPE_FEATURES].copy_from_slice(&shape);
        }
    }
    let positions = Tensor::from_slice(&positions).view([rows as i64, width as i64]);
    let lengths: Vec<i64> = batch.words.iter().map(|w| w.len() as i64).collect();
    let cpu = |t: &Tensor| t.to_device(Device::Cpu).to_kind(Kind::Float);
    let frozen = if frozen_states.is_empty() {
        Tensor::zeros([rows as i64, width as i64, 0], (Kind::Float, Device::Cpu))
    } else {
        let hidden = cpu(&Tensor::cat(frozen_states, 2));
        let index = positions.unsqueeze(-1).expand([-1, -1, hidden.size()[2]], false);
        let valid = Tensor::arange(width as i64, (Kind::Int64, Device::Cpu))
            .unsqueeze(0)
            .lt_tensor(&Tensor::from_slice(&lengths).unsqueeze(1))
            .unsqueeze(-1)
            .to_kind(Kind::Float);
        hidden.gather(1, &index, false) * valid
    };
    let tokens = (config.tuned_layers > 0)
        .then(|| (cpu(shared.last().expect("tuned layers < encoder layers")), batch.mask.to_device(Device::Cpu)));
    let shapes = Tensor::from_slice(&shapes).view([rows as i64, width as i64, SHAPE_FEATURES as i64]);
    HeadInput { tokens, positions, frozen, shapes, lengths }
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
    fn reversal_stays_within_each_length() {
        let index = reversal_index(&[3, 1], 4, 1).view([2, 4]);
        let rows = Vec::<Vec<i64>>::try_from(&index).expect("ints");
        assert_eq!(rows, vec![vec![2, 1, 0, 3], vec![0, 1, 2, 3]]);
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
