//! Making the training data look like what murmur reads: social text.
//!
//! - **News as tweets** ([`socialize`]): a CoNLL-2003 sentence may be lower-cased (people type "spotify" and
//!   "new york"), and gain the furniture of a tweet around it (a retweet marker, an `@handle`, a `#hashtag`,
//!   a link, emoji), all tagged `O`: the head learns that names keep their type without capitals and that
//!   mentions and links are not names.
//! - **Sentences as posts** ([`post`]): a sentiment example may be written in capitals (the label stays:
//!   shouting is not a polarity), or gain an emoji of its own polarity (the labelled sets hold few emoji, and
//!   the encoder's vocabulary maps them all to `[UNK]`: the head must learn to read the social features).
//!
//! - **Reviews as posts** ([`review_as_post`]): a MAMS restaurant sentence may have its aspect terms swapped
//!   for terms of products and services ([`SERVICE_ASPECTS`]; the polarity stays, it is read from the words
//!   around the term), so that the tagger learns where an aspect sits in a sentence rather than a menu; and
//!   may be cased and dressed like a post (an `@handle` before it, a `#hashtag`, link or emoji after, none of
//!   them a term).
//!
//! Every choice is drawn from a seeded [`Rng`], so a run is repeatable.

use murmur_core::hash::Rng;
use murmur_enrich::social;

use crate::aspects::{AspectSentence, GoldTerm};
use crate::data::TaggedSentence;

const HANDLES: &[&str] = &[
    "@jess_h",
    "@newsdesk",
    "@mike2011",
    "@TheRealAnna",
    "@sports_fan99",
    "@londonlad",
    "@bbcbreaking",
    "@kat",
    "@DailyUpdates",
    "@xo_marie",
    "@tom",
    "@worldwatch",
];
const HASHTAGS: &[&str] = &[
    "#news",
    "#breaking",
    "#fail",
    "#love",
    "#tbt",
    "#win",
    "#update",
    "#mondaymotivation",
    "#sport",
    "#business",
    "#ff",
    "#travel",
];
const NEUTRAL_EMOJI: &[&str] = &["📱", "📷", "✈️", "👉", "📍", "🎵", "📰", "⚽", "🚗", "☕"];

fn link(rng: &mut Rng) -> String {
    let alphabet: Vec<char> = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789".chars().collect();
    let code: String = (0..10).map(|_| *rng.pick(&alphabet)).collect();
    format!("http://t.co/{code}")
}

/// A news sentence dressed as a tweet (see the module docs). Entity tags of the original words are kept.
pub fn socialize(sentence: &TaggedSentence, rng: &mut Rng) -> TaggedSentence {
    let mut words: Vec<String> = sentence.words.clone();
    if rng.chance(0.5) {
        words = words.iter().map(|w| w.to_lowercase()).collect();
    }
    let mut out = TaggedSentence { words: Vec::new(), tags: Vec::new() };
    let push = |out: &mut TaggedSentence, word: String| {
        out.words.push(word);
        out.tags.push("O".into());
    };
    if rng.chance(0.1) {
        push(&mut out, "RT".into());
        push(&mut out, (*rng.pick(HANDLES)).into());
        push(&mut out, ":".into());
    } else if rng.chance(0.2) {
        push(&mut out, (*rng.pick(HANDLES)).into());
    }
    out.words.extend(words);
    out.tags.extend(sentence.tags.iter().cloned());
    if rng.chance(0.25) {
        push(&mut out, (*rng.pick(HASHTAGS)).into());
    }
    if rng.chance(0.2) {
        push(&mut out, link(rng));
    }
    if rng.chance(0.15) {
        let pool: Vec<&str> = social::POSITIVE.iter().chain(social::NEGATIVE).chain(NEUTRAL_EMOJI).copied().collect();
        push(&mut out, (*rng.pick(&pool)).into());
    }
    out
}

/// A sentiment example as a post might write it (see the module docs); `label` indexes
/// `SENTIMENT_CLASSES`.
pub fn post(text: &str, label: usize, rng: &mut Rng) -> String {
    let mut text = text.to_owned();
    if rng.chance(0.05) {
        text = text.to_uppercase();
    }
    let emoji = match label {
        0 if rng.chance(0.1) => Some(rng.pick(social::NEGATIVE)),
        2 if rng.chance(0.1) => Some(rng.pick(social::POSITIVE)),
        1 if rng.chance(0.05) => Some(rng.pick(NEUTRAL_EMOJI)),
        _ => None,
    };
    if let Some(emoji) = emoji {
        text.push(' ');
        text.push_str(emoji);
    }
    text
}

/// Aspects of products, apps and services that people judge (phones, laptops, apps, shops, delivery,
/// telecoms, airlines), swapped into MAMS's restaurant sentences: written from the usual aspect categories of
/// those domains, not from any labelled sample murmur is scored on.
pub const SERVICE_ASPECTS: &[&str] = &[
    "battery",
    "battery life",
    "screen",
    "display",
    "camera",
    "keyboard",
    "speaker",
    "charger",
    "cable",
    "app",
    "update",
    "software",
    "interface",
    "price",
    "delivery",
    "shipping",
    "packaging",
    "customer service",
    "support",
    "refund",
    "warranty",
    "website",
    "checkout",
    "signal",
    "wifi",
    "coverage",
    "data plan",
    "flight",
    "seat",
    "legroom",
    "crew",
    "flight attendant",
    "baggage",
    "luggage",
    "check-in",
    "boarding",
    "gate agent",
    "lounge",
    "entertainment",
    "booking",
    "rewards program",
    "staff",
    "store",
    "design",
    "sound quality",
    "performance",
    "speed",
    "size",
    "quality",
    "instructions",
    "subscription",
    "account",
    "login",
    "notifications",
    "headphones",
    "case",
    "order",
    "agent",
    "phone line",
    "driver",
    "parcel",
    "router",
];

/// A MAMS sentence as a post about a product or service (see the module docs): with `substitute`, each term
/// is swapped for one of [`SERVICE_ASPECTS`] with probability ½; with `dress`, the text is cased and
/// dressed like a post. Offsets follow the edits; polarities stay.
pub fn review_as_post(sentence: &AspectSentence, substitute: bool, dress: bool, rng: &mut Rng) -> AspectSentence {
    let chars: Vec<char> = sentence.text.chars().collect();
    let mut terms = sentence.terms.clone();
    terms.sort_by_key(|t| t.start);
    if terms.windows(2).any(|w| w[1].start < w[0].end) {
        // Nested terms (rare in MAMS) are kept as they are.
        return sentence.clone();
    }
    let mut text = String::new();
    let mut out: Vec<GoldTerm> = Vec::with_capacity(terms.len());
    let (mut at, mut length) = (0, 0);
    for term in &terms {
        let before: String = chars[at..term.start].iter().collect();
        let swap = substitute && rng.chance(0.5);
        let written: String =
            if swap { (*rng.pick(SERVICE_ASPECTS)).to_owned() } else { chars[term.start..term.end].iter().collect() };
        length += before.chars().count();
        text.push_str(&before);
        let n = written.chars().count();
        out.push(GoldTerm { start: length, end: length + n, polarity: term.polarity });
        text.push_str(&written);
        length += n;
        at = term.end;
    }
    text.extend(&chars[at..]);
    if dress {
        let cased = if rng.chance(0.3) {
            text.to_lowercase()
        } else if rng.chance(0.05) {
            text.to_uppercase()
        } else {
            text.clone()
        };
        // Casing keeps offsets only where it maps each character to one.
        if cased.chars().count() == text.chars().count() {
            text = cased;
        }
        if rng.chance(0.35) {
            let handle = format!("{} ", rng.pick(HANDLES));
            let shift = handle.chars().count();
            text.insert_str(0, &handle);
            for term in &mut out {
                term.start += shift;
                term.end += shift;
            }
        }
        if rng.chance(0.25) {
            text = format!("{text} {}", rng.pick(HASHTAGS));
        }
        if rng.chance(0.15) {
            text = format!("{text} {}", link(rng));
        }
        if rng.chance(0.1) {
            let pool: Vec<&str> =
                social::POSITIVE.iter().chain(social::NEGATIVE).chain(NEUTRAL_EMOJI).copied().collect();
            text = format!("{text} {}", rng.pick(&pool));
        }
    }
    AspectSentence { text, terms: out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_as_posts_keep_their_terms_at_their_offsets() {
        let sentence = AspectSentence {
            text: "The decor is not special but their food and amazing prices make up for it.".into(),
            terms: vec![
                GoldTerm { start: 4, end: 9, polarity: 0 },
                GoldTerm { start: 35, end: 39, polarity: 2 },
                GoldTerm { start: 52, end: 58, polarity: 2 },
            ],
        };
        let mut rng = Rng::new(7);
        let mut swapped = 0;
        for _ in 0..200 {
            let post = review_as_post(&sentence, true, true, &mut rng);
            assert_eq!(post.terms.len(), 3);
            for (term, original) in post.terms.iter().zip(&sentence.terms) {
                let written: String = post.text.chars().skip(term.start).take(term.end - term.start).collect();
                let before: String =
                    sentence.text.chars().skip(original.start).take(original.end - original.start).collect();
                assert_eq!(term.polarity, original.polarity);
                let kept = written.eq_ignore_ascii_case(&before);
                assert!(
                    kept || SERVICE_ASPECTS.iter().any(|a| a.eq_ignore_ascii_case(&written)),
                    "{written:?} in {post:?}"
                );
                swapped += usize::from(!kept);
            }
        }
        assert!((150..450).contains(&swapped), "about half of 600 terms swapped: {swapped}");
    }

    #[test]
    fn socialized_sentences_keep_their_entities() {
        let sentence = TaggedSentence {
            words: ["Apple", "opens", "in", "New", "York"].map(String::from).to_vec(),
            tags: ["B-ORG", "O", "O", "B-LOC", "I-LOC"].map(String::from).to_vec(),
        };
        let mut rng = Rng::new(3);
        for _ in 0..200 {
            let out = socialize(&sentence, &mut rng);
            assert_eq!(out.words.len(), out.tags.len());
            let named: Vec<(String, &str)> = out
                .words
                .iter()
                .zip(&out.tags)
                .filter(|(_, t)| *t != "O")
                .map(|(w, t)| (w.to_lowercase(), t.as_str()))
                .collect();
            assert_eq!(
                named,
                vec![("apple".into(), "B-ORG"), ("new".into(), "B-LOC"), ("york".into(), "I-LOC")],
                "{out:?}"
            );
        }
    }

    #[test]
    fn posts_keep_their_words_and_emoji_follow_the_label() {
        let mut rng = Rng::new(5);
        for _ in 0..300 {
            let out = post("Great phone", 2, &mut rng);
            assert!(out.to_lowercase().starts_with("great phone"));
            assert!(social::features(&out)[1] == 0.0, "no negative emoji on a positive post: {out}");
        }
    }

    #[test]
    fn the_generator_is_seeded() {
        let (mut a, mut b) = (Rng::new(9), Rng::new(9));
        assert!((0..10).all(|_| a.next_u64() == b.next_u64()));
        let hits = (0..10_000).filter(|_| a.chance(0.25)).count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
    }
}
