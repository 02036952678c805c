//! Enrichment on libtorch, the runtime the worker and the API load: a BERT encoder written against `tch`
//! ([`bert`]), loaded from a sentence-transformers model directory (safetensors + tokenizer.json), run in
//! token-budget batches ([`batching`]) at the precision the hardware runs fastest ([`precision`]),
//! mean-pooled and L2-normalised into sentence embeddings ([`SentenceEncoder`]); the task model ([`tasks`]:
//! an optional fine-tuned branch of the encoder's top blocks, the sentiment and emotion heads
//! ([`sentiment`]), the NER head ([`ner`]) and mentions read by rule ([`social`])) reads the same pass, and
//! [`ModelStack`] is the runtime the pipeline calls ([`StubEnricher`] stands in for it when only the
//! plumbing is measured or broken). Where semantic search must work across languages, a multilingual encoder
//! ([`MultilingualEncoder`], multilingual-e5-small in its own C engine) makes the vectors search reads. Training lives in the `murmur-train` crate, which nothing at run time
//! links.

pub mod aspects;
mod batching;
pub mod bert;
mod device;
mod encoder;
mod error;
pub mod language;
mod multilingual;
pub mod ner;
pub mod precision;
pub mod sentiment;
pub mod social;
mod stack;
mod stub;
pub mod tasks;

pub use batching::token_budget_batches;
pub use device::{select_device, DeviceRequest};
pub use encoder::{EncodedBatch, EncoderOptions, SentenceEncoder, Word};
pub use error::EnrichError;
pub use multilingual::{MultilingualEncoder, MULTILINGUAL_MODEL_ID};
pub use precision::Precision;
pub use stack::ModelStack;
pub use stub::{StubEnricher, STUB_DIMENSIONS, STUB_MODEL_ID};
pub use tasks::{Heads, TaskInput, TaskModel, TaskModelConfig};
