//! What social text carries outside its words, read by rule: mentions of accounts (`@handle`) and tags
//! (`#hashtag`), which are returned as their own entity kinds and never left to the NER head to guess as
//! persons or places; and the signals an uncased WordPiece encoder cannot see, given to the sentence heads
//! as features: emoji (the vocabulary maps them to `[UNK]`), emoticons, shouting in capitals, repeated
//! punctuation and stretched words.

use murmur_core::{Entity, EntityLabel};

/// A mention found by rule: its kind and the byte range of the whole mention, marker included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mention {
    pub label: EntityLabel,
    pub start: usize,
    pub end: usize,
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `@handle` (letters, digits, `_`; as platforms allow) and `#hashtag` (word characters, at least one
/// letter) that start a word: `me@example.com` and `a#b` are not mentions, `(@united)` and `RT @united:` are.
pub fn mentions(text: &str) -> Vec<Mention> {
    let mut out = Vec::new();
    let mut previous: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let starts_word = previous.is_none_or(|p| !(is_name_char(p) || p == '@' || p == '#' || p == '&'));
        previous = Some(c);
        let label = match c {
            '@' | '＠' => EntityLabel::Handle,
            '#' | '＃' => EntityLabel::Hashtag,
            _ => continue,
        };
        if !starts_word {
            continue;
        }
        let mut end = start + c.len_utf8();
        let mut letters = false;
        while let Some(&(i, next)) = chars.peek() {
            if !is_name_char(next) {
                break;
            }
            letters |= next.is_alphabetic();
            end = i + next.len_utf8();
            previous = Some(next);
            chars.next();
        }
        let name_len = end - start - c.len_utf8();
        let valid = match label {
            EntityLabel::Handle => name_len > 0,
            _ => letters,
        };
        if valid {
            out.push(Mention { label, start, end });
        }
    }
    out
}

/// The mentions of `text` as entities (character offsets, score 1: they are read, not guessed).
pub fn mention_entities(text: &str) -> Vec<Entity> {
    let mut chars_before = 0;
    let mut last_byte = 0;
    mentions(text)
        .into_iter()
        .map(|m| {
            chars_before += text[last_byte..m.start].chars().count();
            last_byte = m.start;
            let written = &text[m.start..m.end];
            let start = chars_before;
            Entity { label: m.label, text: written.to_owned(), start, end: start + written.chars().count(), score: 1.0 }
        })
        .collect()
}

/// A comment's entities by murmur's rule: the names a model found, less any that touch a mention, and the
/// mentions read from the text, in text order. Also what re-derives entities stored by an earlier model.
pub fn with_mentions(text: &str, names: Vec<Entity>) -> Vec<Entity> {
    let mentions = mention_entities(text);
    let mut out: Vec<Entity> = names
        .into_iter()
        .filter(|e| !e.label.is_mention() && !mentions.iter().any(|m| m.start < e.end && e.start < m.end))
        .collect();
    out.extend(mentions);
    out.sort_by_key(|e| (e.start, e.end));
    out
}

/// How many features [`features`] gives.
pub const SOCIAL_FEATURES: usize = 8;

/// Emoji and emoticons whose sentiment is clear in social text. Emoji reach the encoder as `[UNK]`, so
/// without these the heads cannot tell "worst update ever 😡" from "worst update ever 😂".
pub const POSITIVE: &[&str] = &[
    "😀", "😃", "😄", "😁", "😆", "😊", "🙂", "😉", "😍", "🥰", "😘", "😗", "😙", "😚", "☺", "😋", "😎", "🤩", "🥳",
    "😇", "🤗", "❤", "💕", "💖", "💗", "💓", "💞", "💘", "💝", "💜", "💙", "💚", "💛", "🧡", "🖤", "🤍", "♥", "😻",
    "👍", "👏", "🙌", "👌", "💯", "🎉", "🎊", "✨", "🌟", "⭐", "🏆", "🥇", "✅", "🙏", "💪", "😌", "☀", "🌈", "🔝",
    ":)", ":-)", ":D", ":-D", ";)", ";-)", "=)", ":]", "<3", ":p", ":P", "xD", "XD", "^_^", "^^",
];
#[rustfmt::skip]
pub const NEGATIVE: &[&str] = &[
    "😡", "😠", "🤬", "😤", "😞", "😔", "😟", "😕", "🙁", "☹", "😣", "😖", "😫", "😩", "😢", "😭", "😿", "💔", "👎",
    "🙄", "😒", "😑", "🤮", "🤢", "😷", "😨", "😰", "😱", "😬", "🤦", "😓", "😪", "💩", "🖕", "❌", "⛔",
    "🚫", "😾", "👿", "😈", "🤡", "😵", "🥵", "🥺", "😮‍💨", "⚠", ":(", ":-(", ":'(", ":/", ":-/", "D:", ">:(", ":@",
    ":|", ":S", "-_-", "ugh",
];

fn count_tokens(text: &str, lexicon: &[&str]) -> usize {
    lexicon
        .iter()
        .map(|token| {
            if token.chars().all(char::is_alphabetic) {
                // A word: whole words only ("ugh", not "tough").
                text.split(|c: char| !c.is_alphabetic()).filter(|w| w.eq_ignore_ascii_case(token)).count()
            } else {
                text.matches(token).count()
            }
        })
        .sum()
}

/// Features of a whole text for the sentence heads, each in [0, ~2]: positive and negative emoji and
/// emoticons, the share of capital letters, a shouted word, `!` and `?` runs, a stretched word
/// ("soooo"), a link.
pub fn features(text: &str) -> [f32; SOCIAL_FEATURES] {
    let log = |n: usize| (1.0 + n as f32).ln();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let uppers = text.chars().filter(|c| c.is_uppercase()).count();
    let caps_share = if letters >= 4 { uppers as f32 / letters as f32 } else { 0.0 };
    let shouted =
        text.split(|c: char| !c.is_alphabetic()).any(|w| w.chars().count() >= 3 && w.chars().all(char::is_uppercase));
    let stretched = text.split_whitespace().any(|w| {
        w.chars().collect::<Vec<_>>().windows(3).any(|t| t[0].is_alphabetic() && t[0] == t[1] && t[1] == t[2])
    });
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    [
        log(count_tokens(text, POSITIVE)),
        log(count_tokens(text, NEGATIVE)),
        caps_share,
        flag(shouted),
        log(text.matches('!').count()),
        log(text.matches('?').count()),
        flag(stretched),
        flag(text.contains("http://") || text.contains("https://") || text.contains("www.")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(EntityLabel, &str)> {
        mentions(text).into_iter().map(|m| (m.label, &text[m.start..m.end])).collect()
    }

    #[test]
    fn handles_and_hashtags_start_a_word() {
        assert_eq!(
            found("RT @united: lost my bag again #fail #2015 (@Delta_Air) me@example.com a#b"),
            vec![
                (EntityLabel::Handle, "@united"),
                (EntityLabel::Hashtag, "#fail"),
                (EntityLabel::Handle, "@Delta_Air")
            ]
        );
        assert_eq!(found("@ # @@x ##y"), vec![], "markers alone or doubled are not mentions");
        assert_eq!(found("#Café_ü😍"), vec![(EntityLabel::Hashtag, "#Café_ü")]);
    }

    #[test]
    fn mention_entities_count_characters() {
        let entities = mention_entities("😍 merci @SNCF #TGV");
        let spans: Vec<(usize, usize, &str)> = entities.iter().map(|e| (e.start, e.end, e.text.as_str())).collect();
        assert_eq!(spans, vec![(8, 13, "@SNCF"), (14, 18, "#TGV")]);
        assert_eq!(entities[0].name(), "sncf");
    }

    #[test]
    fn names_touching_mentions_give_way_to_them() {
        let name = |label, start, end, text: &str| Entity { label, text: text.into(), start, end, score: 0.9 };
        // An earlier model's entities: "united" inside "@united" typed as a place, and Boston rightly.
        let stored = vec![name(EntityLabel::Loc, 1, 7, "united"), name(EntityLabel::Loc, 15, 21, "Boston")];
        let text = "@united flew to Boston #travel";
        let entities = with_mentions(text, stored);
        let found: Vec<(EntityLabel, &str)> = entities.iter().map(|e| (e.label, e.text.as_str())).collect();
        assert_eq!(
            found,
            vec![(EntityLabel::Handle, "@united"), (EntityLabel::Loc, "Boston"), (EntityLabel::Hashtag, "#travel")]
        );
        assert_eq!(with_mentions(text, entities.clone()), entities, "applying the rule twice changes nothing");
    }

    #[test]
    fn features_see_what_the_vocabulary_cannot() {
        let angry = features("WORST update ever 😡😡!!!");
        let happy = features("love it 😍 :)");
        assert!(angry[1] > 0.0 && angry[0] == 0.0 && angry[3] == 1.0 && angry[4] > 1.0);
        assert!(happy[0] > 1.0 && happy[1] == 0.0 && happy[3] == 0.0);
        assert_eq!(features("sooo good")[6], 1.0);
        assert_eq!(features("tough day")[1], 0.0, "words in the lexicon match whole words only");
    }
}
