//! An enricher that costs nothing, for measuring and breaking the plumbing around the models (plumbing
//! benchmarks, fault tests with 100,000 comments on two cores). Its output has the shape of real
//! enrichment and is a pure function of the text, so a replayed comment is enriched identically, but it
//! means nothing: never run it on real data.

use murmur_core::hash::{fnv1a, splitmix64};
use murmur_core::{BoxError, Enricher, Enrichment, Sentiment, SentimentLabel};

/// Width of the stub's vectors: that of all-MiniLM-L6-v2, so an index built by the stub takes real vectors.
pub const STUB_DIMENSIONS: usize = 384;

/// Recorded as the model of every comment it enriches, so stub output is never mistaken for real output.
pub const STUB_MODEL_ID: &str = "stub-no-model";

/// Sentiment one in three ways and a unit vector, both seeded by the text's hash; no entities.
#[derive(Debug, Default, Clone, Copy)]
pub struct StubEnricher;

impl Enricher for StubEnricher {
    fn model_id(&self) -> &str {
        STUB_MODEL_ID
    }

    fn enrich(&self, texts: &[&str]) -> Result<Vec<Enrichment>, BoxError> {
        Ok(texts.iter().map(|text| stub_enrichment(text)).collect())
    }
}

fn stub_enrichment(text: &str) -> Enrichment {
    let mut state = fnv1a(text.as_bytes());
    let mut embedding: Vec<f32> = (0..STUB_DIMENSIONS)
        .map(|_| {
            state = splitmix64(state);
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = embedding.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    embedding.iter_mut().for_each(|x| *x /= norm);
    let (label, probabilities) = match state % 3 {
        0 => (SentimentLabel::Negative, [0.8, 0.15, 0.05]),
        1 => (SentimentLabel::Neutral, [0.1, 0.8, 0.1]),
        _ => (SentimentLabel::Positive, [0.05, 0.15, 0.8]),
    };
    let [negative, neutral, positive] = probabilities;
    Enrichment {
        model: STUB_MODEL_ID.to_owned(),
        embedding,
        sentiment: Some(Sentiment { label, negative, neutral, positive }),
        entities: Some(Vec::new()),
        emotion: None,
        aspects: None,
        language: None,
        skipped: None,
        multilingual: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_same_enrichment_and_unit_vectors() {
        let stub = StubEnricher;
        let a = stub.enrich(&["battery dies", "screen cracked"]).expect("stub never fails");
        let b = stub.enrich(&["battery dies"]).expect("stub never fails");
        assert_eq!(a[0], b[0]);
        assert_ne!(a[0].embedding, a[1].embedding);
        for e in &a {
            assert_eq!(e.embedding.len(), STUB_DIMENSIONS);
            let norm: f32 = e.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
            assert_eq!(e.model, STUB_MODEL_ID);
        }
    }
}
