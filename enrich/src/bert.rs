//! A BERT encoder (the architecture of all-MiniLM-L6-v2 and the other sentence-transformers BERTs) written
//! against libtorch: embeddings, `num_hidden_layers` blocks of self-attention (libtorch's fused
//! scaled-dot-product attention) and a GELU feed-forward, post-layer-norm. Weights are read from safetensors
//! by their Hugging Face names and checked against the config's shapes when loaded.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::EnrichError;

/// The subset of a Hugging Face `config.json` that a BERT encoder needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub intermediate_size: i64,
    pub max_position_embeddings: i64,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: i64,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
}

fn default_type_vocab_size() -> i64 {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_hidden_act() -> String {
    "gelu".into()
}

impl BertConfig {
    pub fn from_file(path: &Path) -> Result<Self, EnrichError> {
        let bytes = std::fs::read(path).map_err(|source| EnrichError::ModelFile { path: path.to_owned(), source })?;
        let config: Self = serde_json::from_slice(&bytes)
            .map_err(|source| EnrichError::ModelConfig { path: path.to_owned(), source })?;
        if config.hidden_size % config.num_attention_heads != 0 {
            return Err(EnrichError::Unsupported(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                config.hidden_size, config.num_attention_heads
            )));
        }
        if config.num_hidden_layers < 1 {
            return Err(EnrichError::Unsupported("num_hidden_layers must be at least 1".into()));
        }
        if config.hidden_act != "gelu" {
            return Err(EnrichError::Unsupported(format!("hidden_act {:?}", config.hidden_act)));
        }
        Ok(config)
    }
}

struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        let size = self.weight.size();
        x.layer_norm(&size, Some(&self.weight), Some(&self.bias), self.eps, true)
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl Layer {
    /// Builds layer `prefix` (e.g. `encoder.layer.3`) from tensors `get` supplies by Hugging Face name and
    /// shape.
    fn build(
        c: &BertConfig,
        prefix: &str,
        get: &mut impl FnMut(&str, &[i64]) -> Result<Tensor, EnrichError>,
    ) -> Result<Self, EnrichError> {
        let (h, eps) = (c.hidden_size, c.layer_norm_eps);
        let mut linear = |name: &str, inputs: i64, outputs: i64| -> Result<Linear, EnrichError> {
            Ok(Linear {
                weight: get(&format!("{prefix}.{name}.weight"), &[outputs, inputs])?,
                bias: get(&format!("{prefix}.{name}.bias"), &[outputs])?,
            })
        };
        let (query, key, value) = (
            linear("attention.self.query", h, h)?,
            linear("attention.self.key", h, h)?,
            linear("attention.self.value", h, h)?,
        );
        let attention_out = linear("attention.output.dense", h, h)?;
        let intermediate = linear("intermediate.dense", h, c.intermediate_size)?;
        let output = linear("output.dense", c.intermediate_size, h)?;
        let mut norm = |name: &str| -> Result<LayerNorm, EnrichError> {
            Ok(LayerNorm {
                weight: get(&format!("{prefix}.{name}.weight"), &[h])?,
                bias: get(&format!("{prefix}.{name}.bias"), &[h])?,
                eps,
            })
        };
        let attention_norm = norm("attention.output.LayerNorm")?;
        let output_norm = norm("output.LayerNorm")?;
        Ok(Self { query, key, value, attention_out, attention_norm, intermediate, output, output_norm })
    }

    fn tensors(&self) -> [&Tensor; 16] {
        let (a, b, c, d) = (&self.query, &self.key, &self.value, &self.attention_out);
        let (e, f, g, h) = (&self.attention_norm, &self.intermediate, &self.output, &self.output_norm);
        [
            &a.weight, &a.bias, &b.weight, &b.bias, &c.weight, &c.bias, &d.weight, &d.bias, &e.weight, &e.bias,
            &f.weight, &f.bias, &g.weight, &g.bias, &h.weight, &h.bias,
        ]
    }

    /// One block: self-attention (libtorch's fused SDPA; `keep` is true where a key may be attended to,
    /// `[batch, 1, 1, seq]`) and the GELU feed-forward, each with a residual and post-layer-norm.
    fn forward(&self, x: &Tensor, keep: &Tensor, heads: i64) -> Tensor {
        let (batch, seq, hidden) = x.size3().expect("hidden states are [batch, seq, hidden]");
        let split = |t: Tensor| t.view([batch, seq, heads, hidden / heads]).transpose(1, 2);
        let q = split(self.query.forward(x));
        let k = split(self.key.forward(x));
        let v = split(self.value.forward(x));
        let context = Tensor::scaled_dot_product_attention(&q, &k, &v, Some(keep), 0.0, false, None, false)
            .transpose(1, 2)
            .reshape([batch, seq, hidden]);
        let x = self.attention_norm.forward(&(self.attention_out.forward(&context) + x));
        let inner = self.intermediate.forward(&x).gelu("none");
        self.output_norm.forward(&(self.output.forward(&inner) + &x))
    }
}

/// Encoder blocks outside a [`BertModel`], as trainable variables: a head that fine-tunes the top of the
/// encoder holds a copy of those layers and runs them on the shared encoder's earlier hidden states.
pub struct BertLayers {
    layers: Vec<Layer>,
    heads: i64,
}

impl BertLayers {
    /// `count` zero-initialised blocks of `config`'s shape as variables under `path` (named as in Hugging
    /// Face checkpoints: `layer.0.attention.self.query.weight`, …); fill them with
    /// [`BertModel::copy_top_layers`] or a saved head.
    pub fn trainable(path: &nn::Path, config: &BertConfig, count: usize) -> Self {
        let mut get = |name: &str, shape: &[i64]| -> Result<Tensor, EnrichError> {
            let mut segments: Vec<&str> = name.split('.').collect();
            let leaf = segments.pop().unwrap_or(name);
            let parent = segments.iter().fold(path.clone(), |p, s| &p / *s);
            Ok(parent.zeros(leaf, shape))
        };
        let layers = (0..count)
            .map(|i| Layer::build(config, &format!("layer.{i}"), &mut get))
            .collect::<Result<Vec<_>, _>>()
            .expect("zero-initialised variables cannot fail");
        Self { layers, heads: config.num_attention_heads }
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Copies `source`'s last `self.len()` blocks into these (the starting point of fine-tuning).
    pub fn copy_top_of(&mut self, source: &BertLayers) -> Result<(), EnrichError> {
        let first = source.layers.len().checked_sub(self.layers.len()).ok_or_else(|| {
            EnrichError::Unsupported(format!(
                "{} layers asked for, the source has {}",
                self.layers.len(),
                source.layers.len()
            ))
        })?;
        tch::no_grad(|| {
            for (from, to) in source.layers[first..].iter().zip(&mut self.layers) {
                for (s, d) in from.tensors().into_iter().zip(to.tensors()) {
                    d.shallow_clone().copy_(&s.to_device(d.device()).to_kind(d.kind()));
                }
            }
        });
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Runs the blocks on hidden states `[batch, seq, hidden]` (mask `[batch, seq]`, 1 for real tokens);
    /// returns the states after each block. Records gradients unless the caller is in `no_grad`.
    pub fn forward(&self, hidden: &Tensor, attention_mask: &Tensor) -> Vec<Tensor> {
        self.forward_first(hidden, attention_mask, self.layers.len())
    }

    fn forward_first(&self, hidden: &Tensor, attention_mask: &Tensor, blocks: usize) -> Vec<Tensor> {
        let (batch, seq, _) = hidden.size3().expect("hidden states are [batch, seq, hidden]");
        let keep = attention_mask.to_kind(Kind::Bool).view([batch, 1, 1, seq]);
        let mut x = hidden.shallow_clone();
        let mut states = Vec::with_capacity(blocks);
        for layer in self.layers.iter().take(blocks) {
            x = layer.forward(&x, &keep, self.heads);
            states.push(x.shallow_clone());
        }
        states
    }
}

/// A loaded BERT encoder. Inference only: every tensor is created without gradients.
pub struct BertModel {
    config: BertConfig,
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    token_type_embeddings: Tensor,
    embeddings_norm: LayerNorm,
    layers: BertLayers,
    device: Device,
}

/// Reads tensors by name, checking each shape against what the config implies.
struct Weights {
    tensors: HashMap<String, Tensor>,
    prefix: &'static str,
    device: Device,
    kind: Kind,
}

impl Weights {
    fn take(&mut self, name: &str, shape: &[i64]) -> Result<Tensor, EnrichError> {
        let full = format!("{}{name}", self.prefix);
        let tensor = self.tensors.remove(&full).ok_or_else(|| EnrichError::MissingTensor(full.clone()))?;
        if tensor.size() != shape {
            return Err(EnrichError::TensorShape { name: full, actual: tensor.size(), expected: shape.to_vec() });
        }
        Ok(tensor.to_device(self.device).to_kind(self.kind))
    }

    fn layer_norm(&mut self, name: &str, size: i64, eps: f64) -> Result<LayerNorm, EnrichError> {
        Ok(LayerNorm {
            weight: self.take(&format!("{name}.weight"), &[size])?,
            bias: self.take(&format!("{name}.bias"), &[size])?,
            eps,
        })
    }
}

impl BertModel {
    /// Loads weights from a safetensors file. Names may carry a `bert.` prefix (checkpoints saved from a
    /// task model) or not (sentence-transformers' plain `BertModel`).
    pub fn load(config: BertConfig, weights: &Path, device: Device, kind: Kind) -> Result<Self, EnrichError> {
        let tensors: HashMap<String, Tensor> = tch::no_grad(|| Tensor::read_safetensors(weights))
            .map_err(|source| EnrichError::Weights { path: weights.to_owned(), source })?
            .into_iter()
            .collect();
        let prefix = if tensors.contains_key("bert.embeddings.word_embeddings.weight") { "bert." } else { "" };
        let mut w = Weights { tensors, prefix, device, kind };
        let c = &config;
        let (h, eps) = (c.hidden_size, c.layer_norm_eps);
        tch::no_grad(|| {
            let word_embeddings = w.take("embeddings.word_embeddings.weight", &[c.vocab_size, h])?;
            let position_embeddings =
                w.take("embeddings.position_embeddings.weight", &[c.max_position_embeddings, h])?;
            let token_type_embeddings = w.take("embeddings.token_type_embeddings.weight", &[c.type_vocab_size, h])?;
            let embeddings_norm = w.layer_norm("embeddings.LayerNorm", h, eps)?;
            let mut get = |name: &str, shape: &[i64]| w.take(name, shape);
            let layers = (0..c.num_hidden_layers)
                .map(|i| Layer::build(c, &format!("encoder.layer.{i}"), &mut get))
                .collect::<Result<Vec<_>, EnrichError>>()?;
            let layers = BertLayers { layers, heads: c.num_attention_heads };
            Ok(Self {
                config: config.clone(),
                word_embeddings,
                position_embeddings,
                token_type_embeddings,
                embeddings_norm,
                layers,
                device,
            })
        })
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Runs the encoder. `input_ids` and `attention_mask` are `[batch, seq]` int64 tensors on this model's
    /// device (mask: 1 for real tokens, 0 for padding). Returns the embedding layer's output and the hidden
    /// states after each block, first to last (`num_hidden_layers + 1` tensors, as Hugging Face's
    /// `hidden_states`), each `[batch, seq, hidden]`.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Vec<Tensor> {
        self.forward_until(input_ids, attention_mask, self.layers.len())
    }

    /// [`BertModel::forward`] through the first `blocks` blocks only (`blocks + 1` tensors): what a task
    /// branch above them reads, for less than a whole pass.
    pub fn forward_until(&self, input_ids: &Tensor, attention_mask: &Tensor, blocks: usize) -> Vec<Tensor> {
        tch::no_grad(|| {
            let (batch, seq) = input_ids.size2().expect("input_ids is [batch, seq]");
            let positions = Tensor::arange(seq, (Kind::Int64, self.device));
            let token_types = Tensor::zeros([batch, seq], (Kind::Int64, self.device));
            let embedded = Tensor::embedding(&self.word_embeddings, input_ids, -1, false, false)
                + Tensor::embedding(&self.position_embeddings, &positions, -1, false, false)
                + Tensor::embedding(&self.token_type_embeddings, &token_types, -1, false, false);
            let embedded = self.embeddings_norm.forward(&embedded);
            let mut states = vec![embedded.shallow_clone()];
            states.extend(self.layers.forward_first(&embedded, attention_mask, blocks));
            states
        })
    }

    /// Copies this encoder's last `target.len()` blocks into `target` (the starting point of fine-tuning).
    pub fn copy_top_layers(&self, target: &mut BertLayers) -> Result<(), EnrichError> {
        target.copy_top_of(&self.layers)
    }
}
