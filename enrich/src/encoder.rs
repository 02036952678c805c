//! The shared sentence encoder: tokenizer, BERT pass in token-budget batches, and mean pooling into
//! L2-normalised embeddings (sentence-transformers' recipe, checked against its output in tests). Every
//! batch's hidden states and word positions are handed on, so the task model reads the same pass.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tch::{Device, Kind, Tensor};
use tokenizers::{Tokenizer, TruncationParams};

use crate::bert::{BertConfig, BertLayers, BertModel};
use crate::{token_budget_batches, EnrichError};

/// How to run the encoder.
#[derive(Debug, Clone)]
pub struct EncoderOptions {
    pub device: Device,
    /// Padded tokens per forward pass (`batch × longest sequence`); bounds memory and keeps passes efficient.
    pub max_batch_tokens: usize,
    /// libtorch intra-op threads; `None` keeps libtorch's default (one per core).
    pub threads: Option<usize>,
    /// What the encoder computes in: f32, or bf16 where the hardware multiplies it fast (see
    /// [`crate::Precision`]).
    pub kind: Kind,
}

impl EncoderOptions {
    /// The token budget that runs fastest on a device: on CPUs a pass's activations should stay in cache
    /// (measured on MiniLM with tweets, 2 cores: 1,024 tokens runs 1.45× faster than 8,192), GPUs want
    /// large passes.
    pub fn default_batch_tokens(device: Device) -> usize {
        if device.is_cuda() {
            16_384
        } else {
            1024
        }
    }
}

impl Default for EncoderOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            max_batch_tokens: Self::default_batch_tokens(Device::Cpu),
            threads: None,
            kind: Kind::Float,
        }
    }
}

/// sentence-transformers' `sentence_bert_config.json`.
#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

/// A sentence-transformers BERT model (e.g. all-MiniLM-L6-v2): tokenizer, encoder, mean pooling over real
/// tokens, L2 normalisation. Texts longer than the model's limit are truncated for the embedding only.
pub struct SentenceEncoder {
    model_id: String,
    tokenizer: Tokenizer,
    model: BertModel,
    max_seq_len: usize,
    options: EncoderOptions,
}

fn read_file(path: PathBuf) -> Result<Vec<u8>, EnrichError> {
    std::fs::read(&path).map_err(|source| EnrichError::ModelFile { path, source })
}

impl SentenceEncoder {
    /// Loads a model directory holding `config.json`, `model.safetensors` and `tokenizer.json` (and
    /// optionally `sentence_bert_config.json` for the sequence limit).
    pub fn load(dir: &Path, options: EncoderOptions) -> Result<Self, EnrichError> {
        if let Some(threads) = options.threads {
            tch::set_num_threads(threads.max(1) as i32);
        }
        let config = BertConfig::from_file(&dir.join("config.json"))?;
        let st_config = dir.join("sentence_bert_config.json");
        let max_seq_len = if st_config.exists() {
            let bytes = read_file(st_config.clone())?;
            let parsed: SentenceBertConfig = serde_json::from_slice(&bytes)
                .map_err(|source| EnrichError::ModelConfig { path: st_config, source })?;
            parsed.max_seq_length
        } else {
            config.max_position_embeddings as usize
        }
        .min(config.max_position_embeddings as usize);

        let tokenizer_path = dir.join("tokenizer.json");
        if !tokenizer_path.exists() {
            return Err(EnrichError::ModelFile {
                path: tokenizer_path,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| EnrichError::Tokenizer(e.to_string()))?;
        // The shipped tokenizer.json pads and truncates to a fixed 128; batching pads, and the limit is the
        // model's.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_seq_len, ..Default::default() }))
            .map_err(|e| EnrichError::Tokenizer(e.to_string()))?;

        let model = BertModel::load(config, &dir.join("model.safetensors"), options.device, options.kind)?;
        let model_id = dir.file_name().map_or_else(|| "encoder".to_owned(), |n| n.to_string_lossy().into_owned());
        tracing::info!(model = %model_id, device = ?options.device, kind = ?options.kind, max_seq_len, "sentence encoder loaded");
        Ok(Self { model_id, tokenizer, model, max_seq_len, options })
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// What the encoder computes in.
    pub fn kind(&self) -> Kind {
        self.options.kind
    }

    /// Where the encoder runs.
    pub fn device(&self) -> Device {
        self.options.device
    }

    /// The encoder's shape.
    pub fn config(&self) -> &BertConfig {
        self.model.config()
    }

    /// Copies the encoder's last `target.len()` blocks into `target` (where fine-tuning them starts).
    pub fn copy_top_layers(&self, target: &mut BertLayers) -> Result<(), EnrichError> {
        self.model.copy_top_layers(target)
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.model.config().hidden_size as usize
    }

    /// Tokens the model sees at most per text; the rest of a longer text is not embedded.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// Tokens per text as the model sees them (special tokens included, truncated at the limit).
    pub fn token_lengths(&self, texts: &[&str]) -> Result<Vec<usize>, EnrichError> {
        let encodings =
            self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| EnrichError::Tokenizer(e.to_string()))?;
        Ok(encodings.iter().map(|e| e.get_ids().len()).collect())
    }

    /// Floating-point operations of one forward pass over sequences of these lengths, padding excluded:
    /// per token and layer, the Q/K/V/output projections (4·h²), the feed-forward (2·h·i) and attention
    /// (2·s·h), each a multiply-add (×2).
    pub fn forward_flops(&self, lengths: &[usize]) -> f64 {
        let c = self.model.config();
        let (h, i, layers) = (c.hidden_size as f64, c.intermediate_size as f64, c.num_hidden_layers as f64);
        lengths
            .iter()
            .map(|&s| {
                let s = s as f64;
                2.0 * layers * s * (4.0 * h * h + 2.0 * h * i + 2.0 * s * h)
            })
            .sum()
    }

    /// Runs the encoder over texts in token-budget batches (sorted by length, so little compute goes to
    /// padding) and hands each batch to `visit`: which texts it holds, the hidden states of every layer and
    /// where each text's words are.
    pub fn encode(
        &self,
        texts: &[&str],
        visit: impl FnMut(EncodedBatch) -> Result<(), EnrichError>,
    ) -> Result<(), EnrichError> {
        self.encode_until(texts, self.config().num_hidden_layers as usize, visit)
    }

    /// [`SentenceEncoder::encode`] through the first `blocks` blocks only: what a task branch above them
    /// reads (training runs the frozen blocks below the branch, and no more).
    pub fn encode_until(
        &self,
        texts: &[&str],
        blocks: usize,
        mut visit: impl FnMut(EncodedBatch) -> Result<(), EnrichError>,
    ) -> Result<(), EnrichError> {
        let encodings =
            self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| EnrichError::Tokenizer(e.to_string()))?;
        let lengths: Vec<usize> = encodings.iter().map(|e| e.get_ids().len()).collect();
        for batch in token_budget_batches(&lengths, self.options.max_batch_tokens) {
            let width = batch.iter().map(|&i| lengths[i]).max().unwrap_or(0);
            let mut ids = vec![0i64; batch.len() * width];
            let mut mask = vec![0i64; batch.len() * width];
            for (row, &i) in batch.iter().enumerate() {
                for (col, &id) in encodings[i].get_ids().iter().enumerate() {
                    ids[row * width + col] = i64::from(id);
                    mask[row * width + col] = 1;
                }
            }
            let shape = [batch.len() as i64, width as i64];
            let device = self.model.device();
            let ids = Tensor::from_slice(&ids).view(shape).to_device(device);
            let mask = Tensor::from_slice(&mask).view(shape).to_device(device);
            let hidden_states = self.model.forward_until(&ids, &mask, blocks);
            let words = batch.iter().map(|&i| words(&encodings[i])).collect();
            visit(EncodedBatch { rows: batch, mask, hidden_states, words })?;
        }
        Ok(())
    }

    /// Embeds texts: one L2-normalised vector per text, in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EnrichError> {
        let mut out = vec![Vec::new(); texts.len()];
        self.encode(texts, |batch| {
            for (row, vector) in batch.rows.iter().zip(batch.pooled_vectors()?) {
                out[*row] = vector;
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// A word as the tokenizer's pre-tokenizer splits text (at whitespace and punctuation): its first token and
/// its byte range in the original text. Words past the model's limit are not seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    pub first_token: usize,
    pub start: usize,
    pub end: usize,
}

fn words(encoding: &tokenizers::Encoding) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::new();
    let mut last = None;
    for (token, (word, &(start, end))) in encoding.get_word_ids().iter().zip(encoding.get_offsets()).enumerate() {
        let Some(word) = *word else { continue };
        if last == Some(word) {
            if let Some(current) = out.last_mut() {
                current.end = end;
            }
        } else {
            out.push(Word { first_token: token, start, end });
            last = Some(word);
        }
    }
    out
}

/// One encoder pass over a batch of texts.
pub struct EncodedBatch {
    /// Indices of the batch's texts in the caller's slice; row `r` of every tensor is text `rows[r]`.
    pub rows: Vec<usize>,
    /// `[batch, seq]`, 1 for real tokens.
    pub mask: Tensor,
    /// The embedding layer's output, then the hidden states after each block run, first to last, each
    /// `[batch, seq, hidden]`.
    pub hidden_states: Vec<Tensor>,
    /// Each text's words, in text order.
    pub words: Vec<Vec<Word>>,
}

impl EncodedBatch {
    /// The sentence embeddings `[batch, hidden]`: mean of the last hidden states over real tokens, L2
    /// normalised.
    pub fn pooled(&self) -> Tensor {
        let last = self.hidden_states.last().expect("a BERT encoder has at least one layer");
        mean_pool_normalised(last, &self.mask)
    }

    fn pooled_vectors(&self) -> Result<Vec<Vec<f32>>, EnrichError> {
        let pooled = self.pooled().to_device(Device::Cpu).to_kind(Kind::Float);
        Ok(Vec::<Vec<f32>>::try_from(&pooled)?)
    }
}

/// Mean of the hidden states `[batch, seq, dim]` over real tokens.
pub(crate) fn mean_pool(hidden: &Tensor, mask: &Tensor) -> Tensor {
    let mask = mask.to_kind(hidden.kind()).unsqueeze(-1);
    let summed = (hidden * &mask).sum_dim_intlist(1, false, hidden.kind());
    let counts = mask.sum_dim_intlist(1, false, hidden.kind()).clamp_min(1e-9);
    summed / counts
}

/// Mean of the hidden states over real tokens, then L2 normalisation (sentence-transformers' `Pooling` with
/// `pooling_mode_mean_tokens` followed by `Normalize`), in f32 whatever the encoder's precision.
fn mean_pool_normalised(hidden: &Tensor, mask: &Tensor) -> Tensor {
    let mean = mean_pool(hidden, mask).to_kind(Kind::Float);
    let norm = mean.norm_scalaropt_dim(2, 1, true).clamp_min(1e-12);
    mean / norm
}
