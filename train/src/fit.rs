//! Training the task model, all tasks together.
//!
//! Each step draws three batches: sentiment examples (sets sampled by the square root of their size, with a
//! floor, so the small review sets are seen often enough and the large ones do not drown the rest; each
//! example possibly rewritten as a post, see [`crate::augment`]), GoEmotions comments for the emotion head,
//! and sentences for NER (half CoNLL-2003 dressed as tweets with probability ½, half the Broad Twitter
//! Corpus). The frozen shared encoder runs without gradients up to the branch; the branch (a copy of the
//! encoder's top blocks, when the model has one) and the heads learn from the sum of the three losses, with
//! AdamW, a linear warm-up and decay, and gradients clipped to norm 1. Every `eval_every` steps the model is
//! scored on a fixed sample of each validation split and the best checkpoint (mean of the sentiment,
//! emotion and NER scores) is kept. Afterwards the sentiment temperature and the emotion thresholds are
//! chosen on the whole validation splits.

use std::time::Instant;

use murmur_core::hash::Rng;
use murmur_enrich::ner::{NerHeadConfig, NER_TAGS};
use murmur_enrich::sentiment::SentenceHeadConfig;
use murmur_enrich::tasks::{Heads, TaskInput, TaskModelConfig, EMOTION_CLASSES};
use murmur_enrich::{SentenceEncoder, TaskModel};
use serde::Serialize;
use tch::nn::OptimizerConfig;
use tch::{Kind, Reduction, Tensor};

use crate::augment::{post, socialize};
use crate::data::{
    thin, Corpus, Domain, EmotionExample, Example, NerSet, SentimentSet, Split, TaggedSentence, SENTIMENT_CLASSES,
};
use crate::evaluate::{emotion_flags, predict_all, score_ner, score_sentiment, InProcess, Predictor};
use crate::metrics::multilabel_scores;
use crate::TrainError;

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct FitOptions {
    pub seed: u64,
    pub steps: usize,
    /// Top encoder blocks the model carries fine-tuned (0: heads on the frozen encoder).
    pub branch_layers: usize,
    pub sentiment_batch: usize,
    pub emotion_batch: usize,
    pub ner_batch: usize,
    pub head_learning_rate: f64,
    pub branch_learning_rate: f64,
    pub weight_decay: f64,
    /// Share of the steps spent warming the learning rate up.
    pub warmup: f64,
    pub eval_every: usize,
    /// Rows of each validation split scored at every evaluation (all of them for calibration).
    pub dev_rows: usize,
    pub sentence_hidden: i64,
    pub ner_layers: usize,
    pub ner_projection: i64,
    pub ner_lstm: i64,
    /// Sentiment domains left out of training (to measure how the model does on a domain it never saw).
    pub exclude: Vec<Domain>,
    /// Seconds training may take: the step count is lowered to fit (see [`planned_steps`]).
    #[serde(default)]
    pub max_seconds: Option<f64>,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            seed: 13,
            steps: 2000,
            branch_layers: 2,
            sentiment_batch: 32,
            emotion_batch: 16,
            ner_batch: 16,
            head_learning_rate: 1e-3,
            branch_learning_rate: 8e-5,
            weight_decay: 0.01,
            warmup: 0.06,
            eval_every: 250,
            dev_rows: 500,
            sentence_hidden: 256,
            ner_layers: 4,
            ner_projection: 256,
            ner_lstm: 128,
            exclude: Vec::new(),
            max_seconds: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub step: usize,
    pub loss: f64,
    pub sentiment_f1: f64,
    pub emotion_f1: f64,
    pub ner_f1: f64,
    pub score: f64,
    pub seconds: f64,
    /// Mean time of a training step so far (evaluation excluded).
    pub seconds_per_step: f64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct FitReport {
    pub best_step: usize,
    pub checkpoints: Vec<Checkpoint>,
    pub temperature: f64,
    pub emotion_thresholds: Vec<f64>,
    pub seconds: f64,
    /// Steps trained: fewer than asked when `max_seconds` lowered them (0 in records written before it was
    /// kept: every step asked; see [`FitReport::steps_trained`]).
    #[serde(default)]
    pub steps: usize,
    /// Where it trained (`CPU`, `CUDA`; empty in records written before it was kept, all on the CPU).
    #[serde(default)]
    pub device: String,
}

impl FitReport {
    /// Steps trained, also for records written before `steps` was kept.
    pub fn steps_trained(&self, options: &FitOptions) -> usize {
        if self.steps == 0 {
            options.steps
        } else {
            self.steps
        }
    }

    /// Where it trained, also for records written before `device` was kept.
    pub fn device(&self) -> &str {
        if self.device.is_empty() {
            "CPU"
        } else {
            &self.device
        }
    }
}

/// The model `options` describe, reading `encoder`.
pub fn model_config(encoder: &SentenceEncoder, options: &FitOptions) -> TaskModelConfig {
    let sentence = |classes: &[&str], thresholds: Vec<f64>| SentenceHeadConfig {
        hidden: options.sentence_hidden,
        classes: classes.iter().map(|c| (*c).to_owned()).collect(),
        temperature: 1.0,
        thresholds,
    };
    TaskModelConfig {
        encoder: encoder.model_id().to_owned(),
        encoder_config: encoder.config().clone(),
        branch_layers: options.branch_layers,
        sentiment: Some(sentence(&SENTIMENT_CLASSES, Vec::new())),
        emotion: Some(sentence(&EMOTION_CLASSES, vec![0.5; EMOTION_CLASSES.len()])),
        ner: Some(NerHeadConfig {
            layers: options.ner_layers,
            projection: options.ner_projection,
            lstm: options.ner_lstm,
            tags: NER_TAGS.iter().map(|t| (*t).to_owned()).collect(),
        }),
        // Trained afterwards, on the fitted model (`murmur-train aspects`).
        aspects: None,
        languages: vec!["en".into()],
    }
}

/// Draws sentiment examples: a set with probability ∝ max(√rows, 50), then a row of it.
struct SentimentSampler<'a> {
    sets: Vec<&'a SentimentSet>,
    cumulative: Vec<f64>,
}

impl<'a> SentimentSampler<'a> {
    fn new(sets: &'a [SentimentSet], exclude: &[Domain]) -> Result<Self, TrainError> {
        let sets: Vec<&SentimentSet> =
            sets.iter().filter(|s| !exclude.contains(&s.domain) && !s.rows.train.is_empty()).collect();
        if sets.is_empty() {
            return Err(TrainError::Options("no sentiment set is left to train on".into()));
        }
        let mut total = 0.0;
        let cumulative = sets
            .iter()
            .map(|s| {
                total += (s.rows.train.len() as f64).sqrt().max(50.0);
                total
            })
            .collect();
        Ok(Self { sets, cumulative })
    }

    fn draw(&self, rng: &mut Rng) -> (&'a Example, &'a SentimentSet) {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let i = self.cumulative.iter().position(|&c| x < c).unwrap_or(self.sets.len() - 1);
        let set = self.sets[i];
        (rng.pick(&set.rows.train), set)
    }
}

/// The IOB2 tag id of each tokenizer word of a sentence: a piece inherits its word's tag (`B-X` on the
/// first piece, `I-X` after).
fn word_targets(
    words: &[murmur_enrich::Word],
    spans: &[(usize, usize)],
    tags: &[String],
) -> Result<Vec<i64>, TrainError> {
    let mut seen = vec![false; spans.len()];
    words
        .iter()
        .map(|word| {
            let c = spans.partition_point(|&(start, _)| start <= word.start).saturating_sub(1);
            let tag = tags[c].as_str();
            let tag = if seen[c] {
                tag.strip_prefix("B-").map_or_else(|| tag.to_owned(), |k| format!("I-{k}"))
            } else {
                tag.to_owned()
            };
            seen[c] = true;
            NER_TAGS
                .iter()
                .position(|t| *t == tag)
                .map(|i| i as i64)
                .ok_or_else(|| TrainError::Options(format!("NER tag {tag:?} is not one of {NER_TAGS:?}")))
        })
        .collect()
}

/// Mean loss of one task over `texts`, run through the frozen encoder below the branch and the model.
fn task_loss(
    encoder: &SentenceEncoder,
    model: &TaskModel,
    texts: &[&str],
    heads: Heads,
    mut loss_of: impl FnMut(
        &murmur_enrich::tasks::TaskLogits,
        &[usize],
        &[Vec<murmur_enrich::Word>],
    ) -> Result<Tensor, TrainError>,
) -> Result<Tensor, TrainError> {
    let shared = model.config().shared_layers();
    let mut total = Tensor::zeros([], (Kind::Float, encoder.device()));
    let mut failure = None;
    encoder.encode_until(texts, shared, |batch| {
        let batch_texts: Vec<&str> = batch.rows.iter().map(|&i| texts[i]).collect();
        let rows = batch.rows.clone();
        let words = batch.words.clone();
        let input = TaskInput::new(batch.hidden_states, batch.mask, &batch.words, &batch_texts);
        let logits = model.logits(&input, heads, true);
        match loss_of(&logits, &rows, &words) {
            Ok(loss) => total = &total + loss * rows.len() as f64,
            Err(e) => failure = Some(e),
        }
        Ok(())
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(total / texts.len().max(1) as f64)
}

pub struct Fitted {
    pub model: TaskModel,
    pub report: FitReport,
}

/// Trains a model on `corpus`'s train splits, choosing on its validation splits (see the module docs).
pub fn fit(encoder: &SentenceEncoder, corpus: &Corpus, options: &FitOptions) -> Result<Fitted, TrainError> {
    let started = Instant::now();
    tch::manual_seed(options.seed as i64);
    let mut rng = Rng::new(options.seed);
    let config = model_config(encoder, options);
    let device = encoder.device();
    let mut model = TaskModel::new(config.clone(), device)?;
    if let Some(branch) = model.branch_mut() {
        encoder.copy_top_layers(branch)?;
    }
    let mut best = TaskModel::new(config, device)?;
    let mut optimizer = tch::nn::AdamW { wd: options.weight_decay, ..Default::default() }
        .build(model.var_store(), options.head_learning_rate)?;
    let sampler = SentimentSampler::new(&corpus.sentiment, &options.exclude)?;
    let ner_train: Vec<(&TaggedSentence, bool)> =
        corpus.ner.iter().flat_map(|set| set.rows.train.iter().map(move |s| (s, set.domain == "news"))).collect();
    let (conll, tweets): (Vec<_>, Vec<_>) = ner_train.into_iter().partition(|(_, news)| *news);
    let dev = DevSample::new(corpus, options.dev_rows);
    let mut report = FitReport {
        best_step: 0,
        checkpoints: Vec::new(),
        temperature: 1.0,
        emotion_thresholds: vec![0.5; EMOTION_CLASSES.len()],
        seconds: 0.0,
        steps: options.steps,
        device: if device.is_cuda() { "CUDA".into() } else { "CPU".into() },
    };
    let mut best_score = f64::NEG_INFINITY;
    let bar = crate::progress(options.steps, "training");
    let (mut loss_sum, mut loss_steps) = (0.0, 0);
    let mut training_seconds = 0.0;
    let mut steps = options.steps;
    let mut step = 0;
    let mut pace_mark = (0, 0.0);
    while step < steps {
        step += 1;
        let step_started = Instant::now();
        let progress = step as f64 / steps as f64;
        let factor = if progress < options.warmup {
            progress / options.warmup
        } else {
            (1.0 - progress) / (1.0 - options.warmup)
        };
        optimizer.set_lr_group(0, options.head_learning_rate * factor.max(0.0));
        if options.branch_layers > 0 {
            optimizer.set_lr_group(1, options.branch_learning_rate * factor.max(0.0));
        }

        // Sentiment.
        let drawn: Vec<(String, usize)> = (0..options.sentiment_batch)
            .map(|_| {
                let (example, _) = sampler.draw(&mut rng);
                (post(&example.text, example.label, &mut rng), example.label)
            })
            .collect();
        let texts: Vec<&str> = drawn.iter().map(|(t, _)| t.as_str()).collect();
        let heads = Heads { sentiment: true, ..Heads::NONE };
        let sentiment = task_loss(encoder, &model, &texts, heads, |logits, rows, _| {
            let targets: Vec<i64> = rows.iter().map(|&i| drawn[i].1 as i64).collect();
            let logits = logits.sentiment.as_ref().ok_or_else(|| TrainError::Options("no sentiment head".into()))?;
            Ok(logits.cross_entropy_for_logits(&Tensor::from_slice(&targets).to_device(device)))
        })?;

        // Emotion.
        let emotions: Vec<&EmotionExample> =
            (0..options.emotion_batch).map(|_| rng.pick(&corpus.emotion.train)).collect();
        let texts: Vec<&str> = emotions.iter().map(|e| e.text.as_str()).collect();
        let heads = Heads { emotion: true, ..Heads::NONE };
        let emotion = task_loss(encoder, &model, &texts, heads, |logits, rows, _| {
            let targets: Vec<f32> =
                rows.iter().flat_map(|&i| emotions[i].labels.iter().map(|&b| if b { 1.0 } else { 0.0 })).collect();
            let targets =
                Tensor::from_slice(&targets).view([rows.len() as i64, EMOTION_CLASSES.len() as i64]).to_device(device);
            let logits = logits.emotion.as_ref().ok_or_else(|| TrainError::Options("no emotion head".into()))?;
            Ok(logits.binary_cross_entropy_with_logits::<Tensor>(&targets, None, None, Reduction::Mean))
        })?;

        // Entities.
        let sentences: Vec<TaggedSentence> = (0..options.ner_batch)
            .map(|k| {
                if k % 2 == 0 && !conll.is_empty() {
                    let sentence = rng.pick(&conll).0;
                    if rng.chance(0.5) {
                        socialize(sentence, &mut rng)
                    } else {
                        sentence.clone()
                    }
                } else {
                    rng.pick(&tweets).0.clone()
                }
            })
            .collect();
        let joined: Vec<(String, Vec<(usize, usize)>)> = sentences.iter().map(TaggedSentence::text).collect();
        let texts: Vec<&str> = joined.iter().map(|(t, _)| t.as_str()).collect();
        let heads = Heads { ner: true, ..Heads::NONE };
        let ner = task_loss(encoder, &model, &texts, heads, |logits, rows, words| {
            let logits = logits.ner.as_ref().ok_or_else(|| TrainError::Options("no NER head".into()))?;
            let width = logits.size()[1] as usize;
            let mut targets = vec![-100i64; rows.len() * width];
            for (r, (&i, words)) in rows.iter().zip(words).enumerate() {
                let ids = word_targets(words, &joined[i].1, &sentences[i].tags)?;
                targets[r * width..][..ids.len()].copy_from_slice(&ids);
            }
            Ok(logits.view([-1, NER_TAGS.len() as i64]).cross_entropy_loss::<Tensor>(
                &Tensor::from_slice(&targets).to_device(device),
                None,
                Reduction::Mean,
                -100,
                0.0,
            ))
        })?;

        let loss = sentiment + emotion + ner;
        optimizer.zero_grad();
        loss.backward();
        optimizer.clip_grad_norm(1.0);
        optimizer.step();
        loss_sum += loss.double_value(&[]);
        loss_steps += 1;
        bar.inc(1);
        training_seconds += step_started.elapsed().as_secs_f64();

        // The pace of training is measured from step 20 on: the first steps warm caches and kernels up.
        if step == 20 {
            pace_mark = (step, started.elapsed().as_secs_f64());
        }
        if step == 100 || step % options.eval_every == 0 {
            let elapsed = started.elapsed().as_secs_f64();
            let planned = planned_steps(options.steps, step, elapsed, pace_mark, options.max_seconds);
            if planned != steps {
                bar.set_length(planned as u64);
                bar.suspend(|| {
                    eprintln!("step {step}: {planned} steps fit in --max-seconds (asked: {})", options.steps)
                });
                steps = planned;
            }
        }

        if step % options.eval_every == 0 || step == steps {
            let mut predictor = InProcess { encoder, model: &model, heads: Heads::ALL };
            let scores = dev.score(&mut predictor)?;
            let checkpoint = Checkpoint {
                step,
                loss: loss_sum / loss_steps.max(1) as f64,
                sentiment_f1: scores.0,
                emotion_f1: scores.1,
                ner_f1: scores.2,
                score: (scores.0 + scores.1 + scores.2) / 3.0,
                seconds: started.elapsed().as_secs_f64(),
                seconds_per_step: training_seconds / step as f64,
            };
            bar.suspend(|| {
                eprintln!(
                    "step {step}: loss {:.4}, valid sentiment macro-F1 {:.4}, emotion macro-F1 {:.4}, NER F1 {:.4} ({:.0} s, {:.2} s a step)",
                    checkpoint.loss, checkpoint.sentiment_f1, checkpoint.emotion_f1, checkpoint.ner_f1, checkpoint.seconds,
                    checkpoint.seconds_per_step
                )
            });
            tracing::info!(step, score = checkpoint.score, "checkpoint scored");
            if checkpoint.score > best_score {
                best_score = checkpoint.score;
                report.best_step = step;
                best.var_store_mut().copy(model.var_store())?;
            }
            report.checkpoints.push(checkpoint);
            (loss_sum, loss_steps) = (0.0, 0);
        }
    }
    bar.finish_and_clear();
    calibrate(encoder, &mut best, corpus, &options.exclude, &mut report)?;
    report.seconds = started.elapsed().as_secs_f64();
    report.steps = steps;
    Ok(Fitted { model: best, report })
}

/// Steps that end training within `max_seconds` seconds, `elapsed` seconds and `done` steps in, at the pace
/// measured since `mark` (a step and its time, past the slow first steps; checkpoints included): never more
/// than `asked`, never fewer than `done`.
fn planned_steps(asked: usize, done: usize, elapsed: f64, mark: (usize, f64), max_seconds: Option<f64>) -> usize {
    let (mark_step, mark_seconds) = mark;
    match max_seconds {
        Some(limit) if done > mark_step && elapsed > mark_seconds => {
            let pace = (elapsed - mark_seconds) / (done - mark_step) as f64;
            let more = ((limit - elapsed).max(0.0) / pace).floor() as usize;
            (done + more).clamp(done, asked)
        }
        _ => asked,
    }
}

/// A fixed sample of every validation split, scored at each checkpoint.
struct DevSample {
    sentiment: Vec<SentimentSet>,
    emotion: Vec<EmotionExample>,
    ner: Vec<NerSet>,
}

impl DevSample {
    fn new(corpus: &Corpus, rows: usize) -> Self {
        let sentiment = corpus
            .sentiment
            .iter()
            .map(|s| SentimentSet { rows: s.rows.valid_sample(rows), ..s.clone_empty() })
            .collect();
        let ner = corpus.ner.iter().map(|s| NerSet { rows: s.rows.valid_sample(rows), ..s.clone_empty() }).collect();
        let mut emotion = corpus.emotion.valid.clone();
        thin(&mut emotion, rows);
        Self { sentiment, emotion, ner }
    }

    /// Mean sentiment macro-F1 over the sets, emotion macro-F1, mean NER F1 over the sets.
    fn score(&self, predictor: &mut dyn Predictor) -> Result<(f64, f64, f64), TrainError> {
        let mut sentiment = 0.0;
        for set in &self.sentiment {
            sentiment += score_sentiment(predictor, set, Split::Valid)?.model.macro_f1;
        }
        let texts: Vec<&str> = self.emotion.iter().map(|e| e.text.as_str()).collect();
        let predictions = predict_all(predictor, &texts, "emotion valid")?;
        let (gold, predicted) = emotion_flags(&predictions, &self.emotion)?;
        let emotion = multilabel_scores(&gold, &predicted, &EMOTION_CLASSES).macro_f1;
        let mut ner = 0.0;
        for set in &self.ner {
            ner += score_ner(predictor, set, Split::Valid)?[0].f1;
        }
        Ok((sentiment / self.sentiment.len().max(1) as f64, emotion, ner / self.ner.len().max(1) as f64))
    }
}

/// Each emotion's probability per row, in the order of `EMOTION_CLASSES`.
fn emotion_probabilities(predictions: &[murmur_enrich::tasks::TaskPrediction]) -> Result<Vec<[f32; 7]>, TrainError> {
    predictions
        .iter()
        .map(|p| {
            let e = p.emotion.as_ref().ok_or_else(|| TrainError::Options("no emotion prediction".into()))?;
            Ok([e.anger, e.disgust, e.fear, e.joy, e.sadness, e.surprise, e.neutral])
        })
        .collect()
}

/// Chooses the sentiment temperature (lowest negative log-likelihood on the three-class validation
/// splits) and each emotion's threshold (best F1 on GoEmotions' validation split).
fn calibrate(
    encoder: &SentenceEncoder,
    model: &mut TaskModel,
    corpus: &Corpus,
    exclude: &[Domain],
    report: &mut FitReport,
) -> Result<(), TrainError> {
    if let Some(s) = model.config_mut().sentiment.as_mut() {
        s.temperature = 1.0;
    }
    let mut log_probs: Vec<([f64; 3], usize)> = Vec::new();
    let emotion_texts: Vec<&str> = corpus.emotion.valid.iter().map(|e| e.text.as_str()).collect();
    let emotion_predictions;
    {
        let mut predictor = InProcess { encoder, model, heads: Heads::ALL };
        for set in corpus.sentiment.iter().filter(|s| !s.binary && !exclude.contains(&s.domain)) {
            let texts: Vec<&str> = set.rows.valid.iter().map(|e| e.text.as_str()).collect();
            for (p, e) in predict_all(&mut predictor, &texts, &format!("calibrating on {}", set.name))?
                .iter()
                .zip(&set.rows.valid)
            {
                let s = p.sentiment.as_ref().ok_or_else(|| TrainError::Options("no sentiment prediction".into()))?;
                let lp = [s.negative, s.neutral, s.positive].map(|x| f64::from(x.max(1e-12)).ln());
                log_probs.push((lp, e.label));
            }
        }
        emotion_predictions = predict_all(&mut predictor, &emotion_texts, "choosing emotion thresholds")?;
    }
    let nll = |t: f64| -> f64 {
        log_probs
            .iter()
            .map(|(lp, y)| {
                let scaled = lp.map(|x| x / t);
                let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let log_sum = max + scaled.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
                log_sum - scaled[*y]
            })
            .sum::<f64>()
    };
    let temperature =
        (0..=300).map(|i| 0.5 + i as f64 * 0.01).min_by(|a, b| nll(*a).total_cmp(&nll(*b))).unwrap_or(1.0);
    let probabilities = emotion_probabilities(&emotion_predictions)?;
    let thresholds: Vec<f64> = (0..EMOTION_CLASSES.len())
        .map(|c| {
            let f1_at = |threshold: f64| -> f64 {
                let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
                for (p, e) in probabilities.iter().zip(&corpus.emotion.valid) {
                    match (f64::from(p[c]) >= threshold, e.labels[c]) {
                        (true, true) => tp += 1.0,
                        (true, false) => fp += 1.0,
                        (false, true) => fn_ += 1.0,
                        _ => {}
                    }
                }
                if tp == 0.0 {
                    0.0
                } else {
                    2.0 * tp / (2.0 * tp + fp + fn_)
                }
            };
            (1..=19).map(|i| i as f64 * 0.05).max_by(|a, b| f1_at(*a).total_cmp(&f1_at(*b))).unwrap_or(0.5)
        })
        .collect();
    if let Some(s) = model.config_mut().sentiment.as_mut() {
        s.temperature = temperature;
    }
    if let Some(e) = model.config_mut().emotion.as_mut() {
        e.thresholds = thresholds.clone();
    }
    report.temperature = temperature;
    report.emotion_thresholds = thresholds;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use murmur_enrich::Word;

    #[test]
    fn a_time_limit_plans_the_steps_from_the_pace_past_the_first_ones() {
        assert_eq!(planned_steps(2000, 100, 30.0, (20, 10.0), None), 2000);
        // 0.25 s a step since step 20: 70 s left is 280 steps more.
        assert_eq!(planned_steps(2000, 100, 30.0, (20, 10.0), Some(100.0)), 380);
        assert_eq!(planned_steps(2000, 100, 30.0, (20, 10.0), Some(1e6)), 2000);
        assert_eq!(planned_steps(2000, 250, 600.0, (20, 10.0), Some(100.0)), 250);
        assert_eq!(planned_steps(2000, 10, 5.0, (0, 0.0), Some(1.0)), 10);
    }

    #[test]
    fn pieces_inherit_their_words_tag() {
        // "U.S. Apple": the tokenizer splits U.S. into four words.
        let spans = [(0, 4), (5, 10)];
        let tags = ["B-LOC", "B-ORG"].map(String::from);
        let words = [(0, 1), (1, 2), (2, 3), (3, 4), (5, 10)].map(|(start, end)| Word { first_token: 0, start, end });
        let ids = word_targets(&words, &spans, &tags).expect("known tags");
        let names: Vec<&str> = ids.iter().map(|&i| NER_TAGS[i as usize]).collect();
        assert_eq!(names, vec!["B-LOC", "I-LOC", "I-LOC", "I-LOC", "B-ORG"]);
    }
}
