//! Training and evaluating the sentiment head on the frozen shared encoder: every text is embedded once
//! (cached on disk), the head is trained on the pooled embeddings with AdamW, seeded, with early stopping
//! on the validation split; evaluation scores the held-out test split next to the VADER lexicon.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tch::nn::OptimizerConfig;
use tch::{Kind, Tensor};

use crate::datasets::{Example, LabelledSet, SENTIMENT_CLASSES};
use crate::metrics::{score, Scores};
use crate::sentiment::{SentimentHead, SentimentHeadConfig};
use crate::{EnrichError, SentenceEncoder};

#[derive(Debug, Clone, Serialize)]
pub struct TrainOptions {
    pub seed: u64,
    pub max_epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Epochs without a better validation score before stopping.
    pub patience: usize,
    pub hidden: i64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            seed: 13,
            max_epochs: 200,
            batch_size: 256,
            learning_rate: 1e-3,
            weight_decay: 1e-4,
            patience: 15,
            hidden: 256,
        }
    }
}

/// Texts of one split, embedded, with their labels.
pub struct Embedded {
    pub x: Tensor,
    pub y: Vec<usize>,
    pub binary: bool,
}

/// Embeds a split, or reads it from `cache_dir` when the same split of the same set was embedded by the
/// same encoder before.
pub fn embed_split(
    encoder: &SentenceEncoder,
    set: &LabelledSet,
    split: &str,
    examples: &[Example],
    cache_dir: &Path,
) -> Result<Embedded, EnrichError> {
    let y: Vec<usize> = examples.iter().map(|e| e.label).collect();
    let path: PathBuf =
        cache_dir.join(format!("{}-{}-{split}-{}.safetensors", encoder.model_id(), set.name, examples.len()));
    if path.exists() {
        let tensors = tch::no_grad(|| Tensor::read_safetensors(&path))
            .map_err(|source| EnrichError::Weights { path: path.clone(), source })?;
        if let Some((_, x)) = tensors.into_iter().find(|(name, _)| name == "x") {
            return Ok(Embedded { x, y, binary: set.binary });
        }
    }
    let bar = ProgressBar::new(examples.len() as u64).with_style(
        ProgressStyle::with_template("{msg:>28} {bar:40} {pos}/{len} [{elapsed} < {eta}] {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("embedding {} {split}", set.name));
    let mut rows: Vec<f32> = Vec::with_capacity(examples.len() * encoder.dim());
    for chunk in examples.chunks(512) {
        let texts: Vec<&str> = chunk.iter().map(|e| e.text.as_str()).collect();
        for vector in encoder.embed(&texts)? {
            rows.extend_from_slice(&vector);
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    let x = Tensor::from_slice(&rows).view([examples.len() as i64, encoder.dim() as i64]);
    std::fs::create_dir_all(cache_dir)
        .map_err(|source| EnrichError::ModelFile { path: cache_dir.to_owned(), source })?;
    Tensor::write_safetensors(&[("x", &x)], &path)?;
    Ok(Embedded { x, y, binary: set.binary })
}

/// Predicted class per row; for binary sets only negative and positive compete.
pub fn predict_classes(head: &SentimentHead, split: &Embedded) -> Result<Vec<usize>, EnrichError> {
    let probabilities = Vec::<Vec<f32>>::try_from(&head.probabilities(&split.x))?;
    Ok(probabilities
        .iter()
        .map(|p| {
            if split.binary {
                if p[2] >= p[0] {
                    2
                } else {
                    0
                }
            } else {
                (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0)
            }
        })
        .collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub valid_macro_f1: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub best_epoch: usize,
    pub best_valid_macro_f1: f64,
    pub epochs: Vec<EpochLog>,
}

/// Trains a head on `train` (all sets together), keeping the weights of the epoch with the best mean
/// validation macro-F1 over `valid`.
pub fn train_head(
    encoder_id: &str,
    dim: i64,
    train: &[Embedded],
    valid: &[Embedded],
    options: &TrainOptions,
) -> Result<(SentimentHead, TrainReport), EnrichError> {
    tch::manual_seed(options.seed as i64);
    let config = SentimentHeadConfig {
        encoder: encoder_id.to_owned(),
        dim,
        hidden: options.hidden,
        classes: SENTIMENT_CLASSES.iter().map(|c| (*c).to_owned()).collect(),
    };
    let head = SentimentHead::new(config.clone());
    let mut best = SentimentHead::new(config);
    let x = Tensor::cat(&train.iter().map(|s| s.x.shallow_clone()).collect::<Vec<_>>(), 0);
    let labels: Vec<i64> = train.iter().flat_map(|s| s.y.iter().map(|&y| y as i64)).collect();
    let y = Tensor::from_slice(&labels);
    let n = labels.len() as i64;
    let mut optimizer = tch::nn::AdamW { wd: options.weight_decay, ..Default::default() }
        .build(head.var_store(), options.learning_rate)?;
    let bar = ProgressBar::new(options.max_epochs as u64).with_style(
        ProgressStyle::with_template("{msg:>28} {bar:40} {pos}/{len} epochs [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut report = TrainReport { best_epoch: 0, best_valid_macro_f1: -1.0, epochs: Vec::new() };
    for epoch in 1..=options.max_epochs {
        let order = Tensor::randperm(n, (Kind::Int64, tch::Device::Cpu));
        let mut total = 0.0;
        let mut batches = 0;
        let mut start = 0;
        while start < n {
            let idx = order.narrow(0, start, (options.batch_size as i64).min(n - start));
            let loss = head.logits(&x.index_select(0, &idx), true).cross_entropy_for_logits(&y.index_select(0, &idx));
            optimizer.backward_step(&loss);
            total += loss.double_value(&[]);
            batches += 1;
            start += options.batch_size as i64;
        }
        let mut f1 = 0.0;
        for split in valid {
            f1 += score(&split.y, &predict_classes(&head, split)?, &SENTIMENT_CLASSES).macro_f1;
        }
        let valid_macro_f1 = f1 / valid.len().max(1) as f64;
        report.epochs.push(EpochLog { epoch, train_loss: total / batches.max(1) as f64, valid_macro_f1 });
        bar.set_message(format!("valid macro-F1 {valid_macro_f1:.4}"));
        bar.inc(1);
        if valid_macro_f1 > report.best_valid_macro_f1 {
            report.best_valid_macro_f1 = valid_macro_f1;
            report.best_epoch = epoch;
            best.var_store_mut().copy(head.var_store())?;
        } else if epoch - report.best_epoch >= options.patience {
            break;
        }
    }
    bar.finish();
    Ok((best, report))
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

#[derive(Debug, Clone, Serialize)]
pub struct SetEvaluation {
    pub set: String,
    pub murmur: Scores,
    pub vader: Scores,
}

/// Scores the head and VADER on the same held-out rows.
pub fn evaluate(head: &SentimentHead, set: &LabelledSet, test: &Embedded) -> Result<SetEvaluation, EnrichError> {
    let texts: Vec<&str> = set.test.iter().map(|e| e.text.as_str()).collect();
    let murmur = score(&test.y, &predict_classes(head, test)?, &SENTIMENT_CLASSES);
    let vader = score(&test.y, &vader_classes(&texts, set.binary), &SENTIMENT_CLASSES);
    Ok(SetEvaluation { set: set.name.clone(), murmur, vader })
}
