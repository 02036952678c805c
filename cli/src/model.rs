//! The models: where they are, where they run, in what precision, which heads; and loading them.

use std::path::PathBuf;

use anyhow::Context;
use clap::builder::BoolishValueParser;
use clap::{Args, ValueEnum};
use murmur_enrich::{
    select_device, DeviceRequest, EncoderOptions, Heads, ModelStack, MultilingualEncoder, Precision, SentenceEncoder,
    TaskModel,
};

use crate::{home_path, ASSETS_HINT, ENCODER_DIR, TASK_MODEL_DIR};

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// sentence-transformers model folder (config.json, model.safetensors, tokenizer.json).
    #[arg(long, env = "MURMUR_MODEL_DIR", default_value = ENCODER_DIR, value_parser = home_path)]
    pub model_dir: PathBuf,
    /// Where the encoder runs: `cuda` needs a GPU and a CUDA-enabled libtorch on LD_LIBRARY_PATH; `auto`
    /// uses one when found.
    #[arg(long, env = "MURMUR_DEVICE", value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// libtorch threads for enrichment (default: one per core).
    #[arg(long, env = "MURMUR_THREADS")]
    pub threads: Option<usize>,
    /// Padded tokens per forward pass (default: 1024 on CPU, where small passes stay in cache; 16384 on CUDA).
    #[arg(long, env = "MURMUR_MAX_BATCH_TOKENS")]
    pub max_batch_tokens: Option<usize>,
    /// What the encoder computes in: `auto` picks bf16 on CPUs with AVX512_BF16 or AMX where a matmul timed
    /// at start runs at least 1.2× faster in bf16; f32 elsewhere, CUDA included (measured faster there).
    #[arg(long, env = "MURMUR_PRECISION", value_enum, default_value = "auto")]
    pub precision: PrecisionChoice,
    /// Folder of the task model (sentiment, emotion, entities; model.json, model.safetensors), trained by
    /// `murmur-train fit`.
    #[arg(long, env = "MURMUR_TASK_MODEL", default_value = TASK_MODEL_DIR, value_parser = home_path)]
    pub task_model: PathBuf,
    /// Enrich without sentiment (the field stays absent).
    #[arg(long, env = "MURMUR_NO_SENTIMENT", value_parser = BoolishValueParser::new())]
    pub no_sentiment: bool,
    /// Enrich without emotions (the field stays absent).
    #[arg(long, env = "MURMUR_NO_EMOTION", value_parser = BoolishValueParser::new())]
    pub no_emotion: bool,
    /// Enrich without named entities and mentions (the field stays absent).
    #[arg(long, env = "MURMUR_NO_NER", value_parser = BoolishValueParser::new())]
    pub no_ner: bool,
    /// Enrich without aspects (the field stays absent); they cost the term tagger plus a fraction of an encoder
    /// pass per term found.
    #[arg(long, env = "MURMUR_NO_ASPECTS", value_parser = BoolishValueParser::new())]
    pub no_aspects: bool,
    /// Folder of the multilingual encoder (multilingual-e5-small, 4-bit, and its engine; infra/fetch-assets.sh
    /// unpacks it to .cache/models/multilingual-e5-small-q4): comments in a language the heads never learned get
    /// its vector, so semantic search finds them by meaning from a query in any language, at ~9× their
    /// enrichment cost (English comments cost nothing more; docs/languages.md). Needs AVX2 and FMA. Comments
    /// enriched before keep the English vector; once the index holds multilingual vectors, the API needs it too.
    #[arg(long, env = "MURMUR_MULTILINGUAL_MODEL", value_parser = home_path)]
    pub multilingual_model: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda,
}

impl DeviceChoice {
    /// The device this choice names, checked: `cuda` fails clearly where no GPU can be used.
    pub fn select(self) -> anyhow::Result<tch::Device> {
        Ok(select_device(match self {
            Self::Auto => DeviceRequest::Auto,
            Self::Cpu => DeviceRequest::Cpu,
            Self::Cuda => DeviceRequest::Cuda,
        })?)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrecisionChoice {
    Auto,
    F32,
    Bf16,
}

impl ModelArgs {
    /// The encoder and the heads asked for, as the worker and the API run them.
    pub fn load(&self) -> anyhow::Result<ModelStack> {
        let encoder = self.load_encoder()?;
        let heads = Heads {
            sentiment: !self.no_sentiment,
            emotion: !self.no_emotion,
            ner: !self.no_ner,
            aspects: !self.no_aspects,
        };
        let tasks = if heads != Heads::NONE {
            let model = TaskModel::load(&self.task_model, encoder.device()).with_context(|| {
                format!(
                    "loading the task model from {} (set --task-model or MURMUR_HOME, or --no-sentiment --no-emotion --no-ner --no-aspects to run without)",
                    self.task_model.display()
                )
            })?;
            for (off, what) in [
                (self.no_sentiment, "sentiment"),
                (self.no_emotion, "emotion"),
                (self.no_ner, "entities"),
                (self.no_aspects, "aspects"),
            ] {
                if off {
                    tracing::warn!(task = what, "disabled: comments are stored without it");
                }
            }
            Some((model, heads))
        } else {
            None
        };
        let stack = ModelStack::new(encoder, tasks)?;
        Ok(match &self.multilingual_model {
            Some(dir) => {
                stack.with_multilingual(MultilingualEncoder::load(dir).with_context(|| {
                    format!("loading the multilingual encoder from {} ({ASSETS_HINT})", dir.display())
                })?)
            }
            None => stack,
        })
    }

    /// The sentence encoder alone, on the device and in the precision asked for.
    pub fn load_encoder(&self) -> anyhow::Result<SentenceEncoder> {
        let device = self.device.select()?;
        let max_batch_tokens = self.max_batch_tokens.unwrap_or_else(|| EncoderOptions::default_batch_tokens(device));
        let precision = match self.precision {
            PrecisionChoice::Auto => Precision::Auto,
            PrecisionChoice::F32 => Precision::F32,
            PrecisionChoice::Bf16 => Precision::Bf16,
        };
        let kind = precision.resolve(device)?;
        let options = EncoderOptions { device, max_batch_tokens, threads: self.threads, kind };
        SentenceEncoder::load(&self.model_dir, options)
            .with_context(|| format!("loading the encoder from {} ({ASSETS_HINT})", self.model_dir.display()))
    }
}
