//! The sentiment head: a small classifier over the pooled sentence embedding of the shared encoder
//! (negative / neutral / positive). Stored as `head.json` (shape, classes, encoder it was trained on) and
//! `head.safetensors` beside a model card.

use std::path::Path;

use murmur_core::{Sentiment, SentimentLabel};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::datasets::SENTIMENT_CLASSES;
use crate::{head_files, EnrichError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentimentHeadConfig {
    /// The encoder whose pooled embeddings the head reads; a head only fits its own encoder.
    pub encoder: String,
    pub dim: i64,
    /// Width of the hidden layer; 0 for a linear head.
    pub hidden: i64,
    pub classes: Vec<String>,
}

pub struct SentimentHead {
    vs: nn::VarStore,
    config: SentimentHeadConfig,
    hidden: Option<nn::Linear>,
    output: nn::Linear,
}

impl SentimentHead {
    /// A freshly initialised head (initialisation follows libtorch's seed, see `tch::manual_seed`).
    pub fn new(config: SentimentHeadConfig) -> Self {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let classes = config.classes.len() as i64;
        let (hidden, output) = if config.hidden > 0 {
            let hidden = nn::linear(&root / "hidden", config.dim, config.hidden, Default::default());
            (Some(hidden), nn::linear(&root / "output", config.hidden, classes, Default::default()))
        } else {
            (None, nn::linear(&root / "output", config.dim, classes, Default::default()))
        };
        Self { vs, config, hidden, output }
    }

    pub fn config(&self) -> &SentimentHeadConfig {
        &self.config
    }

    pub(crate) fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    pub(crate) fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    /// Class logits for pooled embeddings `[n, dim]`; `train` enables dropout.
    pub fn logits(&self, pooled: &Tensor, train: bool) -> Tensor {
        let features = match &self.hidden {
            Some(hidden) => hidden.forward(pooled).gelu("none").dropout(0.1, train),
            None => pooled.shallow_clone(),
        };
        self.output.forward(&features)
    }

    /// Class probabilities `[n, classes]`.
    pub fn probabilities(&self, pooled: &Tensor) -> Tensor {
        tch::no_grad(|| self.logits(&pooled.to_kind(Kind::Float), false).softmax(-1, Kind::Float))
    }

    pub fn predict(&self, pooled: &Tensor) -> Result<Vec<Sentiment>, EnrichError> {
        let probabilities = self.probabilities(pooled);
        let rows = Vec::<Vec<f32>>::try_from(&probabilities)?;
        Ok(rows
            .into_iter()
            .map(|p| {
                let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
                Sentiment { label: SentimentLabel::ALL[best], negative: p[0], neutral: p[1], positive: p[2] }
            })
            .collect())
    }

    pub fn save(&self, dir: &Path) -> Result<(), EnrichError> {
        head_files::save(dir, &self.config, &self.vs)
    }

    pub fn load(dir: &Path) -> Result<Self, EnrichError> {
        let config: SentimentHeadConfig = head_files::read_config(dir)?;
        if config.classes != SENTIMENT_CLASSES {
            return Err(EnrichError::Unsupported(format!("sentiment classes {:?}", config.classes)));
        }
        let mut head = Self::new(config);
        head_files::load_weights(dir, &mut head.vs)?;
        Ok(head)
    }
}
