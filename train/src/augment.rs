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
//! Every choice is drawn from a seeded [`Rng`], so a run is repeatable.

use murmur_core::hash::Rng;
use murmur_enrich::social;

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

#[cfg(test)]
mod tests {
    use super::*;

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
