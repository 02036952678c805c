//! The committed sentiment head (models/sentiment, trained by `murmur train sentiment`) on the real encoder.

use std::path::PathBuf;

use murmur_enrich::sentiment::{SentimentHead, SentimentHeadConfig};
use murmur_enrich::{EncoderOptions, SentenceEncoder};
use tch::Tensor;

fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

fn encoder() -> SentenceEncoder {
    let dir = repo(".cache/models/all-MiniLM-L6-v2");
    assert!(dir.join("model.safetensors").exists(), "no model at {}: run infra/fetch-assets.sh", dir.display());
    SentenceEncoder::load(&dir, EncoderOptions::default()).expect("encoder loads")
}

fn pooled(encoder: &SentenceEncoder, texts: &[&str]) -> Tensor {
    let rows: Vec<f32> = encoder.embed(texts).expect("embeds").concat();
    Tensor::from_slice(&rows).view([texts.len() as i64, encoder.dim() as i64])
}

#[test]
fn obvious_sentences_get_the_obvious_sentiment() {
    let encoder = encoder();
    let head = SentimentHead::load(&repo("models/sentiment")).expect("committed head loads");
    assert_eq!(head.config().encoder, encoder.model_id());
    let cases = [
        ("I love my new Pixel, Google nailed it", "positive"),
        ("Absolutely fantastic service, thank you so much! 😍", "positive"),
        ("This is the worst phone I have ever owned, total garbage", "negative"),
        ("The battery died after two days and support never answered. Furious.", "negative"),
    ];
    let texts: Vec<&str> = cases.iter().map(|(t, _)| *t).collect();
    let predictions = head.predict(&pooled(&encoder, &texts)).expect("predicts");
    for ((text, expected), got) in cases.iter().zip(&predictions) {
        assert_eq!(got.label.as_str(), *expected, "{text:?}: {got:?}");
        let total = got.negative + got.neutral + got.positive;
        assert!((total - 1.0).abs() < 1e-4, "probabilities sum to {total}");
    }
}

#[test]
fn head_round_trips_through_its_files() {
    tch::manual_seed(7);
    let config = SentimentHeadConfig {
        encoder: "e".into(),
        dim: 8,
        hidden: 4,
        classes: vec!["negative".into(), "neutral".into(), "positive".into()],
    };
    let head = SentimentHead::new(config);
    let dir = tempfile::tempdir().expect("tempdir");
    head.save(dir.path()).expect("saves");
    let loaded = SentimentHead::load(dir.path()).expect("loads");
    let x = Tensor::randn([5, 8], (tch::Kind::Float, tch::Device::Cpu));
    let diff = (head.probabilities(&x) - loaded.probabilities(&x)).abs().max().double_value(&[]);
    assert!(diff < 1e-6, "loaded head differs by {diff}");
}
