//! Enrichment on libtorch: a BERT encoder written against `tch` ([`bert`]), loaded from a sentence-transformers
//! model directory (safetensors + tokenizer.json), run in token-budget batches ([`batching`]), mean-pooled
//! and L2-normalised into sentence embeddings ([`SentenceEncoder`]).

mod batching;
pub mod bert;
mod encoder;
mod error;

pub use batching::token_budget_batches;
pub use encoder::{EncoderOptions, SentenceEncoder};
pub use error::EnrichError;
