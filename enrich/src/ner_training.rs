//! Training and evaluating the NER head on the frozen shared encoder, on CoNLL-2003.
//!
//! Each sentence is joined with single spaces and run through the same tokenizer and encoder path as a
//! comment, so the head learns on exactly the words and features it sees in production. The tokenizer may
//! split a CoNLL word further ("U.S." → `U . S .`): its pieces inherit the word's tag (`B-X` on the first,
//! `I-X` after). For scoring, each CoNLL word takes the tag predicted for its first piece, and entities are
//! counted over CoNLL's own words the way conlleval counts them.
//!
//! The encoder runs once per sentence; what the head reads of it is kept (for a head with tuned layers, the
//! token states below those layers), so each epoch costs the head and the tuned layers only.

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tch::nn::OptimizerConfig;
use tch::{Kind, Reduction, Tensor};

use crate::datasets::TaggedSentence;
use crate::metrics::{entity_scores, ClassScore};
use crate::ner::{head_input, HeadInput, NerHead, NerHeadConfig, NER_TAGS};
use crate::{EnrichError, SentenceEncoder};

#[derive(Debug, Clone, Serialize)]
pub struct NerTrainOptions {
    pub seed: u64,
    pub max_epochs: usize,
    /// Sentences per step.
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Epochs without a better validation F1 before stopping.
    pub patience: usize,
    /// Encoder layers read per word (the last ones).
    pub layers: usize,
    pub projection: i64,
    /// LSTM units per direction; 0 for none.
    pub hidden: i64,
    /// Top encoder blocks fine-tuned as part of the head (0: the shared encoder as is).
    pub tuned_layers: usize,
    /// Learning rate of the tuned blocks (pretrained weights want a smaller step than the fresh head).
    pub tuned_learning_rate: f64,
}

impl Default for NerTrainOptions {
    fn default() -> Self {
        Self {
            seed: 13,
            max_epochs: 40,
            batch_size: 32,
            learning_rate: 1e-3,
            weight_decay: 1e-4,
            patience: 4,
            layers: 4,
            projection: 256,
            hidden: 128,
            tuned_layers: 0,
            tuned_learning_rate: 1e-4,
        }
    }
}

/// One sentence as the head reads it (see [`HeadInput`]), unpadded.
struct Sentence {
    tokens: Option<Tensor>,
    positions: Tensor,
    frozen: Tensor,
    shapes: Tensor,
}

/// CoNLL sentences run through the encoder once, as the head's inputs and targets.
pub struct NerExamples {
    sentences: Vec<Sentence>,
    /// Per sentence, the IOB2 tag id of each tokenizer word.
    targets: Vec<Vec<i64>>,
    /// Per sentence, for each CoNLL word the index of its first tokenizer word (`None` when the tokenizer
    /// kept nothing of it, or it lies past the model's limit).
    first_piece: Vec<Vec<Option<usize>>>,
    /// Per sentence, CoNLL's tags.
    gold: Vec<Vec<String>>,
}

impl NerExamples {
    pub fn len(&self) -> usize {
        self.sentences.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sentences.is_empty()
    }

    /// Tokenizer words in all sentences.
    pub fn words(&self) -> usize {
        self.targets.iter().map(Vec::len).sum()
    }
}

fn progress(label: &str, len: usize, unit: &str) -> ProgressBar {
    ProgressBar::new(len as u64)
        .with_style(
            ProgressStyle::with_template(&format!(
                "{{msg:>28}} {{bar:40}} {{pos}}/{{len}} {unit} [{{elapsed}}<{{eta}}]"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
        .with_message(label.to_owned())
}

/// Runs sentences through the encoder and keeps what a head of `config` reads.
pub fn prepare(
    encoder: &SentenceEncoder,
    sentences: &[TaggedSentence],
    config: &NerHeadConfig,
    label: &str,
) -> Result<NerExamples, EnrichError> {
    let tag_id = |tag: &str| NER_TAGS.iter().position(|t| *t == tag).map(|i| i as i64);
    let mut texts = Vec::with_capacity(sentences.len());
    let mut ranges = Vec::with_capacity(sentences.len());
    for sentence in sentences {
        let mut text = String::new();
        let mut spans = Vec::with_capacity(sentence.words.len());
        for word in &sentence.words {
            if !text.is_empty() {
                text.push(' ');
            }
            spans.push((text.len(), text.len() + word.len()));
            text.push_str(word);
        }
        texts.push(text);
        ranges.push(spans);
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let n = sentences.len();
    let mut out = NerExamples {
        sentences: Vec::with_capacity(n),
        targets: vec![Vec::new(); n],
        first_piece: vec![Vec::new(); n],
        gold: sentences.iter().map(|s| s.tags.clone()).collect(),
    };
    let mut slots: Vec<Option<Sentence>> = (0..n).map(|_| None).collect();
    let bar = progress(label, n, "sentences");
    encoder.encode(&refs, |batch| {
        let batch_texts: Vec<&str> = batch.rows.iter().map(|&i| refs[i]).collect();
        let input = head_input(&batch, &batch_texts, config);
        let token_counts =
            Vec::<i64>::try_from(&batch.mask.sum_dim_intlist(1, false, Kind::Int64).to_device(tch::Device::Cpu))?;
        for (r, (&i, words)) in batch.rows.iter().zip(&batch.words).enumerate() {
            let sentence = &sentences[i];
            let mut first_piece = vec![None; sentence.words.len()];
            let mut targets = Vec::with_capacity(words.len());
            for (w, word) in words.iter().enumerate() {
                // The CoNLL word this piece lies in: the last whose start is at or before the piece's.
                let c = ranges[i].partition_point(|&(start, _)| start <= word.start).saturating_sub(1);
                let tag = sentence.tags[c].as_str();
                let tag = if first_piece[c].is_none() {
                    first_piece[c] = Some(w);
                    tag.to_owned()
                } else {
                    tag.strip_prefix("B-").map_or_else(|| tag.to_owned(), |kind| format!("I-{kind}"))
                };
                targets.push(
                    tag_id(&tag)
                        .ok_or_else(|| EnrichError::Data(format!("CoNLL tag {tag:?} is not one of {NER_TAGS:?}")))?,
                );
            }
            let (row, w) = (r as i64, words.len() as i64);
            slots[i] = Some(Sentence {
                tokens: input.tokens.as_ref().map(|(t, _)| t.get(row).narrow(0, 0, token_counts[r]).copy()),
                positions: input.positions.get(row).narrow(0, 0, w).copy(),
                frozen: input.frozen.get(row).narrow(0, 0, w).copy(),
                shapes: input.shapes.get(row).narrow(0, 0, w).copy(),
            });
            out.targets[i] = targets;
            out.first_piece[i] = first_piece;
        }
        bar.inc(batch.rows.len() as u64);
        Ok(())
    })?;
    bar.finish();
    out.sentences = slots
        .into_iter()
        .map(|s| s.ok_or_else(|| EnrichError::Data("a sentence was not encoded".into())))
        .collect::<Result<_, _>>()?;
    Ok(out)
}

/// Pads the chosen sentences into one batch, with the targets (`-100` on padding).
fn batch(examples: &NerExamples, chosen: &[usize]) -> (HeadInput, Tensor) {
    let pad = |pick: &dyn Fn(&Sentence) -> &Tensor| {
        let parts: Vec<&Tensor> = chosen.iter().map(|&i| pick(&examples.sentences[i])).collect();
        Tensor::pad_sequence(&parts, true, 0.0, "right")
    };
    let lengths: Vec<i64> = chosen.iter().map(|&i| examples.targets[i].len() as i64).collect();
    let tokens = examples.sentences[chosen[0]].tokens.is_some().then(|| {
        let counts: Vec<i64> =
            chosen.iter().map(|&i| examples.sentences[i].tokens.as_ref().map_or(0, |t| t.size()[0])).collect();
        let states = pad(&|s| s.tokens.as_ref().expect("every sentence has tokens"));
        let width = states.size()[1];
        let mask = Tensor::arange(width, (Kind::Int64, tch::Device::Cpu))
            .unsqueeze(0)
            .lt_tensor(&Tensor::from_slice(&counts).unsqueeze(1))
            .to_kind(Kind::Int64);
        (states, mask)
    });
    let width = lengths.iter().copied().max().unwrap_or(0) as usize;
    let mut targets = vec![-100i64; chosen.len() * width];
    for (r, &i) in chosen.iter().enumerate() {
        targets[r * width..][..examples.targets[i].len()].copy_from_slice(&examples.targets[i]);
    }
    let input = HeadInput {
        tokens,
        positions: pad(&|s| &s.positions),
        frozen: pad(&|s| &s.frozen),
        shapes: pad(&|s| &s.shapes),
        lengths,
    };
    (input, Tensor::from_slice(&targets))
}

#[derive(Debug, Clone, Serialize)]
pub struct NerEpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub valid_f1: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NerTrainReport {
    pub best_epoch: usize,
    pub best_valid_f1: f64,
    pub epochs: Vec<NerEpochLog>,
}

/// The head `options` describe, for `encoder`.
pub fn head_config(encoder: &SentenceEncoder, options: &NerTrainOptions) -> NerHeadConfig {
    NerHeadConfig {
        encoder: encoder.model_id().to_owned(),
        dim: encoder.dim() as i64,
        layers: options.layers,
        projection: options.projection,
        hidden: options.hidden,
        tags: NER_TAGS.iter().map(|t| (*t).to_owned()).collect(),
        tuned_layers: options.tuned_layers,
        encoder_config: (options.tuned_layers > 0).then(|| encoder.config().clone()),
    }
}

/// Trains a head on `train` (prepared for [`head_config`]), keeping the weights of the epoch with the best
/// entity F1 on `valid`. Tuned layers start from the encoder's own.
pub fn train_head(
    encoder: &SentenceEncoder,
    train: &NerExamples,
    valid: &NerExamples,
    options: &NerTrainOptions,
) -> Result<(NerHead, NerTrainReport), EnrichError> {
    tch::manual_seed(options.seed as i64);
    let config = head_config(encoder, options);
    if options.layers == 0 || options.tuned_layers >= encoder.config().num_hidden_layers as usize {
        return Err(EnrichError::Unsupported(format!(
            "NER reads 1-{} layers and tunes fewer than {}",
            encoder.config().num_hidden_layers,
            encoder.config().num_hidden_layers
        )));
    }
    let mut head = NerHead::new(config.clone());
    if let Some(branch) = head.branch_mut() {
        encoder.copy_top_layers(branch)?;
    }
    let mut best = NerHead::new(config);
    let mut optimizer = tch::nn::AdamW { wd: options.weight_decay, ..Default::default() }
        .build(head.var_store(), options.learning_rate)?;
    if options.tuned_layers > 0 {
        optimizer.set_lr_group(1, options.tuned_learning_rate);
    }
    let mut report = NerTrainReport { best_epoch: 0, best_valid_f1: -1.0, epochs: Vec::new() };
    let tags = NER_TAGS.len() as i64;
    for epoch in 1..=options.max_epochs {
        let order = Vec::<i64>::try_from(&Tensor::randperm(train.len() as i64, (Kind::Int64, tch::Device::Cpu)))?;
        let order: Vec<usize> = order.into_iter().map(|i| i as usize).collect();
        let bar = progress(&format!("epoch {epoch}"), train.len(), "sentences");
        let (mut total, mut steps) = (0.0, 0);
        for chosen in order.chunks(options.batch_size) {
            let (input, targets) = batch(train, chosen);
            let loss = head.logits(&input, true).view([-1, tags]).cross_entropy_loss::<Tensor>(
                &targets,
                None,
                Reduction::Mean,
                -100,
                0.0,
            );
            optimizer.backward_step(&loss);
            total += loss.double_value(&[]);
            steps += 1;
            bar.inc(chosen.len() as u64);
        }
        let valid_f1 = evaluate(&head, valid)?[0].f1;
        bar.finish_with_message(format!("epoch {epoch}: valid F1 {valid_f1:.4}"));
        let train_loss = total / steps.max(1) as f64;
        tracing::info!(epoch, train_loss, valid_f1, "NER epoch done");
        report.epochs.push(NerEpochLog { epoch, train_loss, valid_f1 });
        if valid_f1 > report.best_valid_f1 {
            report.best_valid_f1 = valid_f1;
            report.best_epoch = epoch;
            best.var_store_mut().copy(head.var_store())?;
        } else if epoch - report.best_epoch >= options.patience {
            break;
        }
    }
    Ok((best, report))
}

/// Entity-level precision, recall and F1 (overall first, then per type) over CoNLL's words.
pub fn evaluate(head: &NerHead, examples: &NerExamples) -> Result<Vec<ClassScore>, EnrichError> {
    let mut predicted = Vec::with_capacity(examples.len());
    let order: Vec<usize> = (0..examples.len()).collect();
    for chosen in order.chunks(256) {
        let (input, _) = batch(examples, chosen);
        for (&i, tags) in chosen.iter().zip(head.decode(&input)?) {
            predicted.push(
                examples.first_piece[i]
                    .iter()
                    .map(|piece| piece.map_or_else(|| "O".to_owned(), |w| NER_TAGS[tags[w].0].to_owned()))
                    .collect::<Vec<_>>(),
            );
        }
    }
    Ok(entity_scores(&examples.gold, &predicted))
}
