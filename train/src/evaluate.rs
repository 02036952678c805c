//! Scoring a model on labelled splits through what it returns to users: sentiment probabilities, emotion
//! labels, entity spans with character offsets. The model is either loaded here ([`InProcess`]) or reached
//! through a running server's `POST /v1/enrich` ([`Http`]), so a previous release, or any compatible
//! service, is scored by the same code on the same rows.
//!
//! - Sentiment: accuracy and macro-F1 (binary sets: positive against negative probability; three-class
//!   sets: the most probable class), expected calibration error (15 bins), with VADER on the same rows.
//! - Emotion: per-emotion and macro F1 of the predicted label sets.
//! - NER: entity-level precision, recall and F1 over the set's own words, as conlleval counts. Entity
//!   spans are mapped back to words (a word inside a span takes its type; the first one opens it); mentions
//!   (`handle`, `hashtag`) are not names and are not scored; types a set does not annotate are dropped from
//!   the predictions (BTC has no MISC).

use std::time::Instant;

use murmur_core::{Emotion, EmotionLabel, Entity, Sentiment};
use murmur_enrich::tasks::{Heads, TaskInput, TaskPrediction, EMOTION_CLASSES};
use murmur_enrich::{SentenceEncoder, TaskModel};
use serde::Serialize;

use crate::data::{Corpus, EmotionExample, NerSet, SentimentSet, Split, TaggedSentence, SENTIMENT_CLASSES};
use crate::metrics::{entity_scores, expected_calibration_error, multilabel_scores, score, ClassScore, Scores};
use crate::TrainError;

/// A model that enriches texts.
pub trait Predictor {
    /// What the model is, for the tables.
    fn describe(&self) -> String;
    fn predict(&mut self, texts: &[&str]) -> Result<Vec<TaskPrediction>, TrainError>;
}

/// The task model run here on the shared encoder, exactly as the worker runs it.
pub struct InProcess<'a> {
    pub encoder: &'a SentenceEncoder,
    pub model: &'a TaskModel,
    pub heads: Heads,
}

impl Predictor for InProcess<'_> {
    fn describe(&self) -> String {
        format!("{} + task model ({} branch blocks)", self.encoder.model_id(), self.model.config().branch_layers)
    }

    fn predict(&mut self, texts: &[&str]) -> Result<Vec<TaskPrediction>, TrainError> {
        let mut out = vec![TaskPrediction::default(); texts.len()];
        self.encoder.encode(texts, |batch| {
            let batch_texts: Vec<&str> = batch.rows.iter().map(|&i| texts[i]).collect();
            let input = TaskInput::new(batch.hidden_states, batch.mask, &batch.words, &batch_texts);
            for (&row, prediction) in
                batch.rows.iter().zip(self.model.predict(&input, &batch.words, &batch_texts, self.heads)?)
            {
                out[row] = prediction;
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// A running murmur server's `POST /v1/enrich` (a write key if it asks for one).
pub struct Http {
    pub url: String,
    pub api_key: Option<String>,
    client: reqwest::blocking::Client,
}

impl Http {
    pub fn new(url: &str, api_key: Option<String>) -> Self {
        let client = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .unwrap_or_else(|_| reqwest::blocking::Client::new());
        Self { url: url.trim_end_matches('/').to_owned(), api_key, client }
    }
}

#[derive(serde::Deserialize)]
struct EnrichResponse {
    results: Vec<EnrichResult>,
}

#[derive(serde::Deserialize)]
struct EnrichResult {
    sentiment: Option<Sentiment>,
    entities: Option<Vec<Entity>>,
    #[serde(default)]
    emotion: Option<Emotion>,
    #[serde(default)]
    aspects: Option<Vec<murmur_core::Aspect>>,
}

impl Predictor for Http {
    fn describe(&self) -> String {
        format!("the server at {}", self.url)
    }

    fn predict(&mut self, texts: &[&str]) -> Result<Vec<TaskPrediction>, TrainError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(64) {
            let mut request =
                self.client.post(format!("{}/v1/enrich", self.url)).json(&serde_json::json!({ "texts": chunk }));
            if let Some(key) = &self.api_key {
                request = request.header("X-API-Key", key);
            }
            let response = request.send().map_err(|e| TrainError::Http(format!("{}: {e}", self.url)))?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().unwrap_or_default();
                return Err(TrainError::Http(format!("{} answered {status}: {body}", self.url)));
            }
            let body: EnrichResponse =
                response.json().map_err(|e| TrainError::Http(format!("reading the answer: {e}")))?;
            if body.results.len() != chunk.len() {
                return Err(TrainError::Http(format!("{} results for {} texts", body.results.len(), chunk.len())));
            }
            out.extend(body.results.into_iter().map(|r| TaskPrediction {
                sentiment: r.sentiment,
                emotion: r.emotion,
                entities: r.entities,
                aspects: r.aspects,
            }));
        }
        Ok(out)
    }
}

/// Predicts in chunks, showing progress on long runs.
pub fn predict_all(
    predictor: &mut dyn Predictor,
    texts: &[&str],
    what: &str,
) -> Result<Vec<TaskPrediction>, TrainError> {
    let bar = crate::progress(texts.len(), what);
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(256) {
        out.extend(predictor.predict(chunk)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SentimentScore {
    pub set: String,
    pub domain: String,
    pub binary: bool,
    pub n: usize,
    pub model: Scores,
    /// Expected calibration error of the model's confidence (15 bins).
    pub ece: f64,
    pub vader: Scores,
}

/// The model's most probable sentiment class of each text (an index into `SENTIMENT_CLASSES`): how a
/// teacher labels sentences for a student.
pub fn sentiment_labels(predictor: &mut dyn Predictor, texts: &[&str], what: &str) -> Result<Vec<usize>, TrainError> {
    let sentiments: Vec<Sentiment> = predict_all(predictor, texts, what)?
        .into_iter()
        .map(|p| p.sentiment.ok_or_else(|| TrainError::Options("the teacher has no sentiment head".into())))
        .collect::<Result<_, _>>()?;
    Ok(sentiment_classes(&sentiments, false).into_iter().map(|(class, _)| class).collect())
}

/// Class of each prediction for a set: the most probable of three, or positive against negative on binary
/// sets; with its confidence (for calibration).
fn sentiment_classes(sentiments: &[Sentiment], binary: bool) -> Vec<(usize, f64)> {
    sentiments
        .iter()
        .map(|s| {
            let p = [f64::from(s.negative), f64::from(s.neutral), f64::from(s.positive)];
            if binary {
                let total = (p[0] + p[2]).max(1e-12);
                if p[2] >= p[0] {
                    (2, p[2] / total)
                } else {
                    (0, p[0] / total)
                }
            } else {
                let best = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(1);
                (best, p[best])
            }
        })
        .collect()
}

/// VADER's label for a text: compound ≥ 0.05 positive, ≤ −0.05 negative, otherwise neutral (its authors'
/// thresholds); on binary sets the sign of the compound decides.
pub fn vader_classes(texts: &[&str], binary: bool) -> Vec<usize> {
    let analyzer = vader_sentiment::SentimentIntensityAnalyzer::new();
    texts
        .iter()
        .map(|text| {
            let compound = analyzer.polarity_scores(text).get("compound").copied().unwrap_or(0.0);
            match (binary, compound) {
                (true, c) if c >= 0.0 => 2,
                (true, _) => 0,
                (false, c) if c >= 0.05 => 2,
                (false, c) if c <= -0.05 => 0,
                _ => 1,
            }
        })
        .collect()
}

pub fn score_sentiment(
    predictor: &mut dyn Predictor,
    set: &SentimentSet,
    split: Split,
) -> Result<SentimentScore, TrainError> {
    let rows = set.rows.get(split);
    let texts: Vec<&str> = rows.iter().map(|e| e.text.as_str()).collect();
    let gold: Vec<usize> = rows.iter().map(|e| e.label).collect();
    let predictions = predict_all(predictor, &texts, &format!("{} {split:?}", set.name))?;
    let sentiments: Vec<Sentiment> = predictions
        .into_iter()
        .map(|p| p.sentiment.ok_or_else(|| TrainError::Http("a prediction has no sentiment".into())))
        .collect::<Result<_, _>>()?;
    let classes = sentiment_classes(&sentiments, set.binary);
    let predicted: Vec<usize> = classes.iter().map(|c| c.0).collect();
    let confidence: Vec<f64> = classes.iter().map(|c| c.1).collect();
    let correct: Vec<bool> = predicted.iter().zip(&gold).map(|(p, g)| p == g).collect();
    Ok(SentimentScore {
        set: set.name.clone(),
        domain: set.domain.as_str().to_owned(),
        binary: set.binary,
        n: rows.len(),
        model: score(&gold, &predicted, &SENTIMENT_CLASSES),
        ece: expected_calibration_error(&confidence, &correct, 15),
        vader: score(&gold, &vader_classes(&texts, set.binary), &SENTIMENT_CLASSES),
    })
}

/// One row of flags per text, one flag per emotion.
pub type Flags = Vec<Vec<bool>>;

/// The predicted emotion sets and the gold ones, as rows of flags.
pub fn emotion_flags(
    predictions: &[TaskPrediction],
    examples: &[EmotionExample],
) -> Result<(Flags, Flags), TrainError> {
    let predicted = predictions
        .iter()
        .map(|p| {
            let emotion = p.emotion.as_ref().ok_or_else(|| TrainError::Http("a prediction has no emotion".into()))?;
            Ok(EmotionLabel::ALL.iter().map(|l| emotion.labels.contains(l)).collect())
        })
        .collect::<Result<Vec<Vec<bool>>, TrainError>>()?;
    let gold = examples.iter().map(|e| e.labels.to_vec()).collect();
    Ok((gold, predicted))
}

pub fn score_emotion(predictor: &mut dyn Predictor, examples: &[EmotionExample]) -> Result<Scores, TrainError> {
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let predictions = predict_all(predictor, &texts, "goemotions")?;
    let (gold, predicted) = emotion_flags(&predictions, examples)?;
    Ok(multilabel_scores(&gold, &predicted, &EMOTION_CLASSES))
}

/// Each of the sentence's words tagged from the predicted entity spans (character offsets into `text`).
pub fn tags_from_entities(text: &str, spans: &[(usize, usize)], entities: &[Entity], types: &[&str]) -> Vec<String> {
    let byte_at = |chars: usize| text.char_indices().nth(chars).map_or(text.len(), |(b, _)| b);
    let mut tags = vec!["O".to_owned(); spans.len()];
    for entity in entities {
        let label = entity.label.as_str();
        if entity.label.is_mention() || !types.contains(&label) {
            continue;
        }
        let (start, end) = (byte_at(entity.start), byte_at(entity.end));
        let mut inside = spans.iter().enumerate().filter(|(_, &(s, _))| s >= start && s < end).map(|(i, _)| i);
        if let Some(first) = inside.next() {
            tags[first] = format!("B-{label}");
            for i in inside {
                tags[i] = format!("I-{label}");
            }
        }
    }
    tags
}

pub fn score_ner(predictor: &mut dyn Predictor, set: &NerSet, split: Split) -> Result<Vec<ClassScore>, TrainError> {
    let sentences: &[TaggedSentence] = set.rows.get(split);
    let joined: Vec<(String, Vec<(usize, usize)>)> = sentences.iter().map(TaggedSentence::text).collect();
    let texts: Vec<&str> = joined.iter().map(|(t, _)| t.as_str()).collect();
    let predictions = predict_all(predictor, &texts, &format!("{} {split:?}", set.name))?;
    let mut predicted = Vec::with_capacity(sentences.len());
    for ((text, spans), prediction) in joined.iter().zip(&predictions) {
        let entities =
            prediction.entities.as_deref().ok_or_else(|| TrainError::Http("a prediction has no entities".into()))?;
        predicted.push(tags_from_entities(text, spans, entities, &set.types));
    }
    let gold: Vec<Vec<String>> = sentences
        .iter()
        .map(|s| {
            s.tags
                .iter()
                .map(|t| {
                    if t == "O" || set.types.iter().any(|k| t.ends_with(&format!("-{k}"))) {
                        t.clone()
                    } else {
                        "O".into()
                    }
                })
                .collect()
        })
        .collect();
    Ok(entity_scores(&gold, &predicted))
}

/// Every score of a model on one split of every set.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Report {
    pub model: String,
    pub split: Split,
    pub sentiment: Vec<SentimentScore>,
    /// Absent when the model has no emotion head.
    pub emotion: Option<Scores>,
    pub ner: Vec<NerScore>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct NerScore {
    pub set: String,
    /// Overall first, then per type.
    pub scores: Vec<ClassScore>,
}

impl Report {
    pub fn score(predictor: &mut dyn Predictor, corpus: &Corpus, split: Split) -> Result<Self, TrainError> {
        let mut sentiment = Vec::new();
        for set in &corpus.sentiment {
            sentiment.push(score_sentiment(predictor, set, split)?);
        }
        let examples = corpus.emotion.get(split);
        let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
        let predictions = predict_all(predictor, &texts, &format!("goemotions {split:?}"))?;
        let emotion = match emotion_flags(&predictions, examples) {
            Ok((gold, predicted)) => Some(multilabel_scores(&gold, &predicted, &EMOTION_CLASSES)),
            Err(_) => None,
        };
        let mut ner = Vec::new();
        for set in &corpus.ner {
            ner.push(NerScore { set: set.name.clone(), scores: score_ner(predictor, set, split)? });
        }
        Ok(Self { model: predictor.describe(), split, sentiment, emotion, ner })
    }
}

/// Comments per second of a predictor over texts, all heads on (the cost column of the options table).
pub fn throughput(predictor: &mut dyn Predictor, texts: &[&str]) -> Result<f64, TrainError> {
    predictor.predict(&texts[..texts.len().min(16)])?;
    let started = Instant::now();
    for chunk in texts.chunks(256) {
        predictor.predict(chunk)?;
    }
    Ok(texts.len() as f64 / started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use murmur_core::EntityLabel;

    fn entity(label: EntityLabel, start: usize, end: usize, text: &str) -> Entity {
        Entity { label, text: text.into(), start, end, score: 0.9 }
    }

    #[test]
    fn entity_spans_map_back_to_words() {
        let sentence = TaggedSentence {
            words: ["@united", "flew", "me", "to", "New", "York", "é"].map(String::from).to_vec(),
            tags: vec!["O".into(); 7],
        };
        let (text, spans) = sentence.text();
        let entities = [
            entity(EntityLabel::Handle, 0, 7, "@united"),
            entity(EntityLabel::Loc, 19, 27, "New York"),
            entity(EntityLabel::Misc, 28, 29, "é"),
        ];
        let tags = tags_from_entities(&text, &spans, &entities, &["PER", "ORG", "LOC"]);
        assert_eq!(tags, vec!["O", "O", "O", "O", "B-LOC", "I-LOC", "O"]);
    }

    #[test]
    fn binary_sets_compare_the_two_polarities() {
        let s = |n: f32, u: f32, p: f32| Sentiment {
            label: murmur_core::SentimentLabel::Neutral,
            negative: n,
            neutral: u,
            positive: p,
        };
        let classes = sentiment_classes(&[s(0.2, 0.7, 0.1), s(0.1, 0.5, 0.4)], true);
        assert_eq!(classes[0].0, 0);
        assert_eq!(classes[1].0, 2);
        assert!((classes[1].1 - 0.8).abs() < 1e-6);
        assert_eq!(sentiment_classes(&[s(0.2, 0.7, 0.1)], false)[0].0, 1);
    }
}
