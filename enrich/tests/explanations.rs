//! Explanations of the committed task model on the real encoder: the words occlusion ranks first are the ones
//! a reader would point at, offsets hold through emoji and accents, and the word-level heads are not run.

use std::path::PathBuf;

use murmur_core::explain::explain;
use murmur_core::Enricher;
use murmur_enrich::{EncoderOptions, Heads, ModelStack, SentenceEncoder, TaskModel};
use tch::Device;

fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

fn stack() -> ModelStack {
    let dir = repo(".cache/models/all-MiniLM-L6-v2");
    assert!(dir.join("model.safetensors").exists(), "no model at {}: run infra/fetch-assets.sh", dir.display());
    let encoder = SentenceEncoder::load(&dir, EncoderOptions::default()).expect("encoder loads");
    let model = TaskModel::load(&repo("models/enrichment"), Device::Cpu).expect("committed task model loads");
    ModelStack::new(encoder, Some((model, Heads::ALL))).expect("the model fits the encoder")
}

#[test]
fn the_top_words_are_the_polar_ones() {
    let stack = stack();
    // (text, label, the words that carry it: each explanation's top 2 must be among them)
    let cases = [
        ("The hotel room was filthy and the staff were rude to us.", "negative", &["filthy", "rude"][..]),
        ("Honestly the best pizza I have had in years, amazing crust!", "positive", &["best", "amazing"]),
        (
            "my flight got cancelled again, absolutely terrible service",
            "negative",
            &["terrible", "cancelled", "absolutely"],
        ),
        ("I love how light this laptop is, the keyboard is great too", "positive", &["love", "great"]),
        ("The update is useless and the app keeps crashing", "negative", &["useless", "crashing"]),
    ];
    let mut wrong = Vec::new();
    for (text, label, polar) in cases {
        let explanation = explain(&stack, text).expect("explained");
        assert_eq!(explanation.method, "sampled-occlusion");
        let sentiment = explanation.sentiment.expect("the model has a sentiment head");
        let top: Vec<&str> = sentiment.top(2).iter().map(|w| w.text.as_str()).collect();
        if sentiment.label != label || top.len() < 2 || !top.iter().all(|w| polar.contains(w)) {
            wrong.push(format!("{text:?}: {} {:.2}, top {top:?}", sentiment.label, sentiment.probability));
        }
        assert!(explanation.emotion.is_some(), "the emotion is explained too");
    }
    assert!(wrong.is_empty(), "explanations that miss the polar words:\n{}", wrong.join("\n"));
}

#[test]
fn offsets_count_characters_through_emoji_and_accents() {
    let stack = stack();
    let text = "The crème brûlée 😍😍 was perfect, but the café 🙄 was horrible!!";
    let explanation = explain(&stack, text).expect("explained");
    for label in [explanation.sentiment.as_ref(), explanation.emotion.as_ref()].into_iter().flatten() {
        let spans: Vec<String> =
            label.words.iter().map(|w| text.chars().skip(w.start).take(w.end - w.start).collect()).collect();
        let written: Vec<&str> = label.words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(spans, written, "each word's offsets point at it in characters");
        assert!(written.contains(&"😍😍") && written.contains(&"brûlée") && written.contains(&"!!"), "{written:?}");
    }
    let sentiment = explanation.sentiment.expect("sentiment");
    let top = sentiment.top(1);
    assert_eq!(top.first().map(|w| w.text.as_str()), Some("horrible"), "{sentiment:?}");
}

#[test]
fn classifying_skips_the_word_level_heads_and_agrees_with_enriching() {
    let stack = stack();
    let texts = ["Apple's battery life is awful", "great service from @delta today"];
    let full = stack.enrich(&texts).expect("enriches");
    let sentence = stack.classify(&texts).expect("classifies");
    for (f, s) in full.iter().zip(&sentence) {
        assert!(f.entities.is_some() && f.aspects.is_some(), "enrichment runs every head");
        assert!(s.entities.is_none() && s.aspects.is_none(), "classification leaves the word-level heads out");
        assert_eq!(f.sentiment, s.sentiment);
        assert_eq!(f.emotion, s.emotion);
    }
}

#[test]
fn a_text_and_its_variants_are_read_as_the_first_texts_language() {
    let stack = stack();
    // Left with "parfait merci", the English review would read as French and be skipped, were each variant
    // judged on its own: an explanation would then weigh words against readings the heads never made.
    let variants = ["The delivery was parfait, merci beaucoup", "parfait merci beaucoup"];
    let alone = stack.enrich(&variants[1..]).expect("enriches");
    assert!(alone[0].skipped.is_some(), "on its own, the variant is French: {:?}", alone[0].language);
    let read = stack.classify(&variants).expect("classifies");
    assert!(read.iter().all(|r| r.skipped.is_none() && r.sentiment.is_some()), "{read:?}");
    // A French text is not read, so there is nothing to explain.
    let french = explain(&stack, "Le service client ne répond jamais, c'est vraiment décevant").expect("explains");
    assert!(french.sentiment.is_none() && french.emotion.is_none(), "{french:?}");
    let english = explain(&stack, "The service was awful").expect("explains");
    assert!(english.sentiment.is_some(), "{english:?}");
}
