//! The aspect head: the terms a comment judges ("battery", "customer service") and the sentiment toward each,
//! read from the task model's pass like the other heads.
//!
//! - **Terms** are tagged per word under IOB2 (`B-ASPECT`, `I-ASPECT`, `O`) by a tagger of the NER head's
//!   design ([`NerHead`]: the last layers of the task model at each word's first sub-token, word shapes, a
//!   bidirectional LSTM, Viterbi decoding).
//! - **Polarity** is read once per term: a learned marker vector is added to the term's tokens in the hidden
//!   state that enters the task model's top `polarity_layers` blocks, and the head's own fine-tuned copy of
//!   those blocks runs on it, so attention gathers what the text says about that term and not about another
//!   ("the battery dies fast but the screen is gorgeous"). The classifier reads the term's tokens, `[CLS]`
//!   and the mean of the text after those blocks; its softmax is calibrated by a temperature.
//!
//! The cost is the tagger plus `polarity_layers` blocks per term; texts without terms pay only the tagger.

use murmur_core::{aspect_name, Aspect, Entity, EntityLabel};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::bert::{BertConfig, BertLayers};
use crate::encoder::{mean_pool, Word};
use crate::ner::{chunks, NerHead, NerHeadConfig};
use crate::sentiment::{sentiments_at, SENTIMENT_CLASSES};
use crate::social;
use crate::EnrichError;

/// The term tagger's tags, in the order of its outputs.
pub const ASPECT_TAGS: [&str; 3] = ["O", "B-ASPECT", "I-ASPECT"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AspectHeadConfig {
    /// The term tagger (tags: [`ASPECT_TAGS`]).
    pub terms: NerHeadConfig,
    /// Top blocks of the task model the polarity reader carries its own copy of (run once per term).
    pub polarity_layers: usize,
    /// Width of the polarity classifier's hidden layer.
    pub polarity_hidden: i64,
    /// Polarity classes: [`SENTIMENT_CLASSES`].
    pub classes: Vec<String>,
    /// Logits are divided by it before the softmax (calibration, chosen on held-out data).
    pub temperature: f64,
}

impl AspectHeadConfig {
    pub(crate) fn check(&self, task_layers: usize) -> Result<(), String> {
        if self.terms.tags != ASPECT_TAGS || self.terms.layers == 0 || self.terms.layers > task_layers {
            return Err(format!("aspect tags {:?} reading {} layers", self.terms.tags, self.terms.layers));
        }
        if self.polarity_layers == 0 || self.polarity_layers >= task_layers {
            return Err(format!("an aspect polarity reader of {} blocks on {task_layers}", self.polarity_layers));
        }
        if self.classes != SENTIMENT_CLASSES || self.temperature.is_nan() || self.temperature <= 0.0 {
            return Err(format!("aspect classes {:?}, temperature {}", self.classes, self.temperature));
        }
        Ok(())
    }
}

/// A term to read the polarity of: its text's batch row and its tokens `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermTokens {
    pub row: usize,
    pub start: usize,
    pub end: usize,
}

impl TermTokens {
    /// The tokens of words `[first, end)` of a text with `tokens` real tokens (`[CLS]` … `[SEP]`).
    pub fn of_words(row: usize, words: &[Word], first: usize, end: usize, tokens: usize) -> Self {
        let stop = words.get(end).map_or(tokens.saturating_sub(1), |w| w.first_token);
        let start = words[first].first_token;
        Self { row, start, end: stop.max(start + 1) }
    }
}

/// A term the tagger found: words `[start, end)` and the mean probability of their tags.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FoundTerm {
    pub start: usize,
    pub end: usize,
    pub score: f32,
}

pub struct AspectHead {
    config: AspectHeadConfig,
    terms: NerHead,
    marker: Tensor,
    reader: BertLayers,
    /// What the reader's weights hold (the precision it runs at, the task branch's).
    reader_kind: Kind,
    hidden: nn::Linear,
    output: nn::Linear,
}

impl AspectHead {
    /// A fresh head under `path`; its reader (variables of group 1, they train at the branch's rate) is zero
    /// until filled (see [`AspectHead::reader_mut`]).
    pub fn new(path: &nn::Path, encoder: &BertConfig, config: &AspectHeadConfig) -> Self {
        let dim = encoder.hidden_size;
        Self {
            config: config.clone(),
            terms: NerHead::new(&(path / "terms"), dim, &config.terms),
            marker: path.var("marker", &[dim], nn::Init::Randn { mean: 0.0, stdev: 0.02 }),
            reader: BertLayers::trainable(&(path / "reader").set_group(1), encoder, config.polarity_layers),
            reader_kind: Kind::Float,
            hidden: nn::linear(path / "hidden", 3 * dim, config.polarity_hidden, Default::default()),
            output: nn::linear(
                path / "output",
                config.polarity_hidden,
                config.classes.len() as i64,
                Default::default(),
            ),
        }
    }

    pub fn config(&self) -> &AspectHeadConfig {
        &self.config
    }

    /// The polarity reader's blocks (filled from the task model's top blocks before training).
    pub fn reader_mut(&mut self) -> &mut BertLayers {
        &mut self.reader
    }

    /// Records the precision the reader's weights were cast to.
    pub(crate) fn set_reader_kind(&mut self, kind: Kind) {
        self.reader_kind = kind;
    }

    /// Tag logits `[batch, words, 3]` from word features as the NER head reads them.
    pub fn term_logits(&self, features: &Tensor, lengths: &[i64], train: bool) -> Tensor {
        self.terms.logits(features, lengths, train)
    }

    /// Each text's terms from tag logits (`texts` and their `words`, one per batch row). A term is never a
    /// mention: one that overlaps an `@handle` or `#hashtag` (the brand or a topic, read by rule) or holds no
    /// letter or digit is dropped.
    pub fn decode_terms(
        &self,
        logits: &Tensor,
        lengths: &[i64],
        texts: &[&str],
        words: &[Vec<Word>],
    ) -> Result<Vec<Vec<FoundTerm>>, EnrichError> {
        let decoded = self.terms.decode(logits, lengths)?;
        Ok(decoded
            .into_iter()
            .zip(texts.iter().zip(words))
            .map(|(tags, (text, words))| {
                let mentions = social::mentions(text);
                let names: Vec<String> = tags.iter().map(|&(t, _)| ASPECT_TAGS[t].to_owned()).collect();
                chunks(&names)
                    .into_iter()
                    .filter(|c| {
                        let (start, end) = (words[c.start].start, words[c.end - 1].end);
                        let written = text.get(start..end).unwrap_or("");
                        written.chars().any(char::is_alphanumeric)
                            && !mentions.iter().any(|m| m.start < end && start < m.end)
                    })
                    .map(|c| FoundTerm {
                        start: c.start,
                        end: c.end,
                        score: tags[c.start..c.end].iter().map(|&(_, p)| p).sum::<f32>() / (c.end - c.start) as f32,
                    })
                    .collect()
            })
            .collect())
    }

    /// Polarity logits `[terms, 3]`, one row per term, from the hidden state `below` (`[batch, seq, dim]`)
    /// that enters the task model's top `polarity_layers` blocks and the batch's `mask`.
    pub fn polarity_logits(&self, below: &Tensor, mask: &Tensor, terms: &[TermTokens], train: bool) -> Tensor {
        let device = below.device();
        let seq = below.size()[1];
        let rows: Vec<i64> = terms.iter().map(|t| t.row as i64).collect();
        let rows = Tensor::from_slice(&rows).to_device(device);
        let mut span = vec![0f32; terms.len() * seq as usize];
        for (i, t) in terms.iter().enumerate() {
            let end = t.end.min(seq as usize);
            span[i * seq as usize..][t.start.min(end)..end].fill(1.0);
        }
        let span = Tensor::from_slice(&span).view([terms.len() as i64, seq]).to_device(device);
        let mask = mask.index_select(0, &rows);
        let x = below.to_kind(self.reader_kind).index_select(0, &rows);
        let x = &x + span.unsqueeze(-1).to_kind(x.kind()) * self.marker.to_kind(x.kind());
        let top = self.reader.forward(&x, &mask).pop().unwrap_or(x).to_kind(Kind::Float);
        let span = span.unsqueeze(-1);
        let term = (&top * &span).sum_dim_intlist(1, false, Kind::Float)
            / span.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0);
        let features = Tensor::cat(&[term, top.select(1, 0), mean_pool(&top, &mask)], 1);
        let h = self.hidden.forward(&features.dropout(0.1, train)).gelu("none");
        self.output.forward(&h.dropout(0.1, train))
    }

    /// The aspects of one text from its words, found terms and their polarity logits (one row per term).
    /// See [`without_names`] for those that are names.
    pub fn aspects(
        &self,
        text: &str,
        words: &[Word],
        terms: &[FoundTerm],
        logits: &Tensor,
    ) -> Result<Vec<Aspect>, EnrichError> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let sentiments = sentiments_at(logits, self.config.temperature)?;
        Ok(terms
            .iter()
            .zip(sentiments)
            .filter_map(|(term, sentiment)| {
                let (start, end) = (words[term.start].start, words[term.end - 1].end);
                let written = text.get(start..end)?;
                let name = aspect_name(written);
                if name.is_empty() {
                    return None;
                }
                let start_char = text.get(..start)?.chars().count();
                Some(Aspect {
                    text: written.to_owned(),
                    start: start_char,
                    end: start_char + written.chars().count(),
                    name,
                    sentiment,
                    score: term.score,
                })
            })
            .collect())
    }
}

/// `aspects` less those written inside a person's, organisation's or place's name the NER head found in the
/// same text: "Apple" in "Apple's battery is awful" is the brand, not something judged about it. Products
/// (MISC: "iPhone") stay aspects.
pub fn without_names(mut aspects: Vec<Aspect>, entities: &[Entity]) -> Vec<Aspect> {
    let names = [EntityLabel::Per, EntityLabel::Org, EntityLabel::Loc];
    aspects.retain(|a| !entities.iter().any(|e| names.contains(&e.label) && e.start <= a.start && a.end <= e.end));
    aspects
}

#[cfg(test)]
mod tests {
    use murmur_core::{Sentiment, SentimentLabel};

    use super::*;

    #[test]
    fn names_of_people_organisations_and_places_are_not_aspects() {
        let aspect = |text: &str, start: usize| Aspect {
            text: text.into(),
            start,
            end: start + text.chars().count(),
            name: aspect_name(text),
            sentiment: Sentiment { label: SentimentLabel::Negative, negative: 0.8, neutral: 0.1, positive: 0.1 },
            score: 0.9,
        };
        let entity = |label, text: &str, start: usize| Entity {
            label,
            text: text.into(),
            start,
            end: start + text.chars().count(),
            score: 0.9,
        };
        // "Apple Store staff and the iPhone battery"
        let aspects = vec![
            aspect("Apple", 0),
            aspect("Store", 6),
            aspect("staff", 12),
            aspect("iPhone", 26),
            aspect("battery", 33),
        ];
        let entities = [entity(EntityLabel::Org, "Apple Store", 0), entity(EntityLabel::Misc, "iPhone", 26)];
        let kept: Vec<String> = without_names(aspects, &entities).into_iter().map(|a| a.name).collect();
        assert_eq!(kept, ["staff", "iphone", "battery"]);
    }
}
