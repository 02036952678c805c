//! The sentence heads: sentiment (negative / neutral / positive, one softmax, calibrated by a temperature
//! chosen on held-out data) and emotion (Ekman's six and neutral, independent sigmoids with a threshold per
//! emotion chosen on held-out data). Both read the task model's pooled sentence vector and the text's
//! social features ([`crate::social::features`]).

use murmur_core::{Emotion, EmotionLabel, Sentiment, SentimentLabel};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::EnrichError;

/// Sentiment classes, in the order of the head's outputs.
pub const SENTIMENT_CLASSES: [&str; 3] = ["negative", "neutral", "positive"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentenceHeadConfig {
    /// Width of the hidden layer.
    pub hidden: i64,
    /// The head's outputs, in order.
    pub classes: Vec<String>,
    /// Sentiment: logits are divided by it before the softmax (calibration). Unused by emotion.
    #[serde(default = "one")]
    pub temperature: f64,
    /// Emotion: each class is predicted when its probability reaches its threshold. Empty for sentiment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<f64>,
}

fn one() -> f64 {
    1.0
}

/// Two layers over `[pooled sentence vector, social features]`.
pub struct SentenceHead {
    hidden: nn::Linear,
    output: nn::Linear,
}

impl SentenceHead {
    pub fn new(path: &nn::Path, inputs: i64, config: &SentenceHeadConfig) -> Self {
        Self {
            hidden: nn::linear(path / "hidden", inputs, config.hidden, Default::default()),
            output: nn::linear(path / "output", config.hidden, config.classes.len() as i64, Default::default()),
        }
    }

    /// Logits `[batch, classes]`; `train` enables dropout.
    pub fn logits(&self, features: &Tensor, train: bool) -> Tensor {
        let x = self.hidden.forward(&features.dropout(0.1, train)).gelu("none");
        self.output.forward(&x.dropout(0.1, train))
    }
}

/// Calibrated class probabilities from sentiment logits `[batch, 3]`.
pub fn sentiment_probabilities(logits: &Tensor, config: &SentenceHeadConfig) -> Tensor {
    calibrated(logits, config.temperature)
}

fn calibrated(logits: &Tensor, temperature: f64) -> Tensor {
    (logits.to_kind(Kind::Float) / temperature).softmax(-1, Kind::Float)
}

pub fn sentiments(logits: &Tensor, config: &SentenceHeadConfig) -> Result<Vec<Sentiment>, EnrichError> {
    sentiments_at(logits, config.temperature)
}

/// Sentiments from logits `[rows, 3]` over [`SENTIMENT_CLASSES`] at a calibration `temperature`: the most
/// probable class and each class's probability.
pub fn sentiments_at(logits: &Tensor, temperature: f64) -> Result<Vec<Sentiment>, EnrichError> {
    let rows = Vec::<Vec<f32>>::try_from(&calibrated(logits, temperature).to_device(tch::Device::Cpu))?;
    Ok(rows
        .into_iter()
        .map(|p| {
            let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
            Sentiment { label: SentimentLabel::ALL[best], negative: p[0], neutral: p[1], positive: p[2] }
        })
        .collect())
}

/// Each emotion's probability from emotion logits `[batch, 7]`.
pub fn emotion_probabilities(logits: &Tensor) -> Tensor {
    logits.to_kind(Kind::Float).sigmoid()
}

/// The emotions at or above their thresholds, most probable first. Neutral stands alone: it is the answer
/// when it reaches its threshold and is more probable than every emotion that reached theirs, or when none
/// did; otherwise it is left out.
pub fn emotions(logits: &Tensor, config: &SentenceHeadConfig) -> Result<Vec<Emotion>, EnrichError> {
    let rows = Vec::<Vec<f32>>::try_from(&emotion_probabilities(logits).to_device(tch::Device::Cpu))?;
    Ok(rows.into_iter().map(|p| emotion_from_probabilities(&p, &config.thresholds)).collect())
}

pub fn emotion_from_probabilities(p: &[f32], thresholds: &[f64]) -> Emotion {
    let neutral = EmotionLabel::Neutral as usize;
    let mut above: Vec<usize> = (0..p.len()).filter(|&i| i != neutral && f64::from(p[i]) >= thresholds[i]).collect();
    above.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let neutral_wins =
        above.first().is_none_or(|&top| f64::from(p[neutral]) >= thresholds[neutral] && p[neutral] > p[top]);
    let labels = if neutral_wins {
        vec![EmotionLabel::Neutral]
    } else {
        above.into_iter().map(|i| EmotionLabel::ALL[i]).collect()
    };
    let mut scores = [0.0; 7];
    scores.copy_from_slice(&p[..7]);
    Emotion::new(labels, scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutral_stands_alone() {
        let t = [0.3; 7];
        let labels = |p: [f32; 7]| emotion_from_probabilities(&p, &t).labels;
        // anger, disgust, fear, joy, sadness, surprise, neutral
        assert_eq!(labels([0.8, 0.0, 0.0, 0.0, 0.4, 0.0, 0.1]), vec![EmotionLabel::Anger, EmotionLabel::Sadness]);
        assert_eq!(labels([0.0, 0.0, 0.0, 0.0, 0.0, 0.35, 0.8]), vec![EmotionLabel::Neutral], "neutral more probable");
        assert_eq!(labels([0.0, 0.0, 0.0, 0.6, 0.0, 0.0, 0.5]), vec![EmotionLabel::Joy], "joy more probable");
        assert_eq!(labels([0.1; 7]), vec![EmotionLabel::Neutral], "nothing reached its threshold");
    }
}
