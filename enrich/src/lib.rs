//! Enrichment on libtorch: a BERT encoder written against `tch` ([`bert`]), loaded from a sentence-transformers
//! model directory (safetensors + tokenizer.json), run in token-budget batches ([`batching`]), mean-pooled
//! and L2-normalised into sentence embeddings ([`SentenceEncoder`]); heads read the same pass
//! ([`sentiment`], [`ner`]), and [`ModelStack`] is the runtime the pipeline calls ([`StubEnricher`] stands in for it when only the plumbing is
//! measured or broken). Heads are trained and
//! scored on held-out data by [`sentiment_training`] and [`ner_training`] over [`datasets`] with [`metrics`].

mod batching;
pub mod bert;
pub mod datasets;
mod device;
mod encoder;
mod error;
mod head_files;
pub mod metrics;
pub mod ner;
pub mod ner_training;
pub mod sentiment;
pub mod sentiment_training;
mod stub;

pub use batching::token_budget_batches;
pub use device::{select_device, DeviceRequest};
pub use encoder::{EncodedBatch, EncoderOptions, ModelStack, SentenceEncoder, Word};
pub use error::EnrichError;
pub use stub::{StubEnricher, STUB_DIMENSIONS, STUB_MODEL_ID};
