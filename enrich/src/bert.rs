//! A BERT encoder (the architecture of all-MiniLM-L6-v2 and the other sentence-transformers BERTs) written
//! against libtorch: embeddings, `num_hidden_layers` blocks of self-attention (libtorch's fused
//! scaled-dot-product attention) and a GELU feed-forward, post-layer-norm. Weights are read from safetensors
//! by their Hugging Face names and checked against the config's shapes when loaded.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use tch::{Device, Kind, Tensor};

use crate::EnrichError;

/// The subset of a Hugging Face `config.json` that a BERT encoder needs.
#[derive(Debug, Clone, Deserialize)]
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

/// A loaded BERT encoder. Inference only: every tensor is created without gradients.
pub struct BertModel {
    config: BertConfig,
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    token_type_embeddings: Tensor,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
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

    fn linear(&mut self, name: &str, inputs: i64, outputs: i64) -> Result<Linear, EnrichError> {
        Ok(Linear {
            weight: self.take(&format!("{name}.weight"), &[outputs, inputs])?,
            bias: self.take(&format!("{name}.bias"), &[outputs])?,
        })
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
            let layers = (0..c.num_hidden_layers)
                .map(|i| {
                    let p = format!("encoder.layer.{i}");
                    Ok(Layer {
                        query: w.linear(&format!("{p}.attention.self.query"), h, h)?,
                        key: w.linear(&format!("{p}.attention.self.key"), h, h)?,
                        value: w.linear(&format!("{p}.attention.self.value"), h, h)?,
                        attention_out: w.linear(&format!("{p}.attention.output.dense"), h, h)?,
                        attention_norm: w.layer_norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                        intermediate: w.linear(&format!("{p}.intermediate.dense"), h, c.intermediate_size)?,
                        output: w.linear(&format!("{p}.output.dense"), c.intermediate_size, h)?,
                        output_norm: w.layer_norm(&format!("{p}.output.LayerNorm"), h, eps)?,
                    })
                })
                .collect::<Result<Vec<_>, EnrichError>>()?;
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
    /// device (mask: 1 for real tokens, 0 for padding). Returns the hidden states after each layer, first to
    /// last, each `[batch, seq, hidden]`.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Vec<Tensor> {
        tch::no_grad(|| {
            let (batch, seq) = input_ids.size2().expect("input_ids is [batch, seq]");
            let heads = self.config.num_attention_heads;
            let head_dim = self.config.hidden_size / heads;
            let positions = Tensor::arange(seq, (Kind::Int64, self.device));
            let token_types = Tensor::zeros([batch, seq], (Kind::Int64, self.device));
            let embedded = Tensor::embedding(&self.word_embeddings, input_ids, -1, false, false)
                + Tensor::embedding(&self.position_embeddings, &positions, -1, false, false)
                + Tensor::embedding(&self.token_type_embeddings, &token_types, -1, false, false);
            let mut x = self.embeddings_norm.forward(&embedded);
            // Boolean mask, true where a key may be attended to; broadcast over heads and queries.
            let keep = attention_mask.to_kind(Kind::Bool).view([batch, 1, 1, seq]);
            let split = |t: Tensor| t.view([batch, seq, heads, head_dim]).transpose(1, 2);
            let mut states = Vec::with_capacity(self.layers.len());
            for layer in &self.layers {
                let q = split(layer.query.forward(&x));
                let k = split(layer.key.forward(&x));
                let v = split(layer.value.forward(&x));
                let context = Tensor::scaled_dot_product_attention(&q, &k, &v, Some(&keep), 0.0, false, None, false)
                    .transpose(1, 2)
                    .reshape([batch, seq, self.config.hidden_size]);
                x = layer.attention_norm.forward(&(layer.attention_out.forward(&context) + &x));
                let hidden = layer.intermediate.forward(&x).gelu("none");
                x = layer.output_norm.forward(&(layer.output.forward(&hidden) + &x));
                states.push(x.shallow_clone());
            }
            states
        })
    }
}
