//! The encoder against sentence-transformers on the real all-MiniLM-L6-v2 weights (fetched by
//! `infra/fetch-assets.sh`); reference vectors come from `fixtures/make_minilm_reference.py`.

use std::path::PathBuf;

use murmur_enrich::{EncoderOptions, SentenceEncoder};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    model: String,
    max_seq_length: usize,
    sentences: Vec<String>,
    embeddings: Vec<Vec<f32>>,
}

fn model_dir() -> PathBuf {
    let dir = std::env::var_os("MURMUR_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/models/all-MiniLM-L6-v2"));
    assert!(dir.join("model.safetensors").exists(), "no model at {}: run infra/fetch-assets.sh", dir.display());
    dir
}

fn reference() -> Reference {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_reference.json");
    serde_json::from_slice(&std::fs::read(path).expect("fixture readable")).expect("fixture parses")
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn embeddings_match_sentence_transformers() {
    let reference = reference();
    let encoder = SentenceEncoder::load(&model_dir(), EncoderOptions::default()).expect("model loads");
    assert_eq!(encoder.model_id(), reference.model);
    assert_eq!(encoder.max_seq_len(), reference.max_seq_length);
    assert_eq!(encoder.dim(), 384);

    let texts: Vec<&str> = reference.sentences.iter().map(String::as_str).collect();
    let vectors = encoder.embed(&texts).expect("embedding works");
    assert_eq!(vectors.len(), texts.len());
    for ((text, got), want) in texts.iter().zip(&vectors).zip(&reference.embeddings) {
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{text:?}: norm {norm}");
        let cos = cosine(got, want);
        assert!(cos >= 0.999, "{text:?}: cosine {cos} against sentence-transformers");
    }
}

#[test]
fn batching_and_padding_do_not_change_vectors() {
    let reference = reference();
    let texts: Vec<&str> = reference.sentences.iter().map(String::as_str).collect();
    // A tiny token budget forces one text per pass (no padding); the default budget pads within batches.
    let single = SentenceEncoder::load(&model_dir(), EncoderOptions { max_batch_tokens: 1, ..Default::default() })
        .expect("model loads");
    let batched = SentenceEncoder::load(&model_dir(), EncoderOptions::default()).expect("model loads");
    let a = single.embed(&texts).expect("embeds");
    let b = batched.embed(&texts).expect("embeds");
    for ((text, x), y) in texts.iter().zip(&a).zip(&b) {
        let cos = cosine(x, y);
        assert!(cos >= 0.99999, "{text:?}: batched differs from single, cosine {cos}");
    }
    // Different texts really get different vectors.
    assert!(cosine(&a[0], &a[1]) < 0.9);
}
