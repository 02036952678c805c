//! The text analyzer for comments: social-media text is not prose. `#BatteryLife` is indexed both as the
//! hashtag `#batterylife` and as the word `batterylife` (at one position, so `batterylife` finds it and
//! `#batterylife` finds only the hashtag); `@united` likewise; a URL is one token (`t.co/x1y2`) rather than
//! `https`, `t`, `co`, … noise; each emoji is a token of its own (skin-tone modifiers and joiners dropped);
//! words are runs of letters and digits, lower-cased and folded to ASCII (`Montréal` → `montreal`).
//!
//! Scripts written without spaces between words (Chinese, Japanese, Thai, Lao) and Korean (whose words carry
//! their particles: `배터리가`) are indexed **one character at a time** (a Thai or Lao letter with its vowel
//! and tone marks; a Hangul syllable), at consecutive positions. A query's word is analysed the same way and
//! becomes a phrase of its characters, so it finds every comment holding it, inside any run: `电池` in
//! `但是电池不好`, `배터리` in `배터리가`. Chosen over jieba-rs's and TinySegmenter's words by
//! `murmur-bench segmentation` (docs/languages.md): a segmenter cuts a run in context, and a word cut
//! differently in the comment than in the query is never found.

use tantivy::tokenizer::{AsciiFoldingFilter, RemoveLongFilter, TextAnalyzer, Token, TokenStream, Tokenizer};

/// Name under which the analyzer is registered on an index.
pub(crate) const SOCIAL: &str = "social";

/// Longest token kept, in bytes (longer ones are mostly base64 or tracking junk in URLs).
const MAX_TOKEN_BYTES: usize = 120;

pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SocialTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(AsciiFoldingFilter)
        .build()
}

/// The terms `text` is indexed under (after lower-casing and folding), with their byte ranges in it: what a
/// query's words must match.
pub fn terms(text: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push((token.text.clone(), token.offset_from..token.offset_to));
    }
    out
}

#[derive(Clone, Default)]
pub struct SocialTokenizer {
    tokens: Vec<Token>,
}

pub struct SocialTokenStream<'a> {
    tokens: &'a mut Vec<Token>,
    next: usize,
}

impl Tokenizer for SocialTokenizer {
    type TokenStream<'a> = SocialTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> SocialTokenStream<'a> {
        self.tokens.clear();
        tokenize(text, &mut self.tokens);
        SocialTokenStream { tokens: &mut self.tokens, next: 0 }
    }
}

impl TokenStream for SocialTokenStream<'_> {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

fn tokenize(text: &str, out: &mut Vec<Token>) {
    fn push(out: &mut Vec<Token>, from: usize, to: usize, text: String, position: usize) {
        out.push(Token { offset_from: from, offset_to: to, position, text, position_length: 1 });
    }
    let mut position = 0;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let Some(c) = rest.chars().next() else { break };
        if let Some(len) = url_len(rest) {
            let url = &rest[..len];
            let bare = url.split_once("://").map_or(url, |(_, after)| after);
            push(out, i, i + len, bare.to_lowercase(), position);
            position += 1;
            i += len;
        } else if (c == '#' || c == '@') && rest[1..].chars().next().is_some_and(is_word_char) {
            let len = 1 + word_len(&rest[1..]);
            let word = rest[1..len].to_lowercase();
            push(out, i, i + len, format!("{c}{word}"), position);
            position = words(text, i + 1, i + len, position, out);
            i += len;
        } else if is_word_char(c) {
            let len = word_len(rest);
            position = words(text, i, i + len, position, out);
            i += len;
        } else if is_emoji(c) {
            push(out, i, i + c.len_utf8(), c.to_string(), position);
            position += 1;
            i += c.len_utf8();
        } else {
            i += c.len_utf8();
        }
    }
}

/// Tokens for the run of word characters `text[from..to]` from `position` on: a token per word of spaced
/// scripts, a token per character of the others ([`is_unspaced`]); returns the next position.
fn words(text: &str, from: usize, to: usize, mut position: usize, out: &mut Vec<Token>) -> usize {
    let mut i = from;
    while i < to {
        let rest = &text[i..to];
        let Some(c) = rest.chars().next() else { break };
        let len = if is_unspaced(c) {
            // The character and the marks written over or under it.
            c.len_utf8() + rest[c.len_utf8()..].chars().take_while(|&m| is_mark(m)).map(char::len_utf8).sum::<usize>()
        } else {
            rest.char_indices().find(|&(_, c)| is_unspaced(c)).map_or(rest.len(), |(j, _)| j)
        };
        out.push(Token {
            offset_from: i,
            offset_to: i + len,
            position,
            text: rest[..len].to_lowercase(),
            position_length: 1,
        });
        position += 1;
        i += len;
    }
    position
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || is_mark(c)
}

/// Letters of scripts indexed a character at a time: Han, Hiragana, Katakana (full and half width), Hangul,
/// Thai and Lao.
fn is_unspaced(c: char) -> bool {
    matches!(u32::from(c),
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF // Han
        | 0x3005 | 0x3007 // 々 (repeat) and 〇
        | 0x3041..=0x3096 | 0x309D..=0x309F // Hiragana
        | 0x30A1..=0x30FA | 0x30FC..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9D // Katakana, ー
        | 0xAC00..=0xD7A3 | 0x1100..=0x11FF | 0x3131..=0x318E // Hangul
        | 0x0E01..=0x0E30 | 0x0E32..=0x0E33 | 0x0E40..=0x0E46 | 0x0E50..=0x0E59 // Thai
        | 0x0E81..=0x0EB0 | 0x0EB2..=0x0EB3 | 0x0EBD..=0x0EC6 | 0x0ED0..=0x0EDF)
    // Lao
}

/// Vowel and tone marks written over or under the letter before them (Thai, Lao), and the combining kana
/// voicing marks: part of that letter's token.
fn is_mark(c: char) -> bool {
    matches!(u32::from(c), 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E | 0x0EB1 | 0x0EB4..=0x0EBC | 0x0EC8..=0x0ECE
        | 0x3099..=0x309A | 0xFF9E..=0xFF9F)
}

fn word_len(s: &str) -> usize {
    s.char_indices().find(|&(_, c)| !is_word_char(c)).map_or(s.len(), |(i, _)| i)
}

/// Length in bytes of the URL `s` starts with, if it starts with one (`http://`, `https://` or `www.`);
/// trailing punctuation belongs to the sentence, not the URL.
fn url_len(s: &str) -> Option<usize> {
    if !s.starts_with(['h', 'H', 'w', 'W']) {
        return None;
    }
    let head: String = s.chars().take(8).collect::<String>().to_ascii_lowercase();
    let prefix = ["https://", "http://", "www."].into_iter().find(|p| head.starts_with(p))?;
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    let url = s[..end].trim_end_matches(|c: char| ".,;:!?)]}\"'>".contains(c));
    // At least a two-character host after the scheme.
    (url.len() >= prefix.len() + 2).then_some(url.len())
}

/// Pictographic characters (emoji and symbols people use as words). Modifiers (skin tones, variation
/// selectors, zero-width joiners) are not tokens of their own.
fn is_emoji(c: char) -> bool {
    matches!(u32::from(c),
        0x1F300..=0x1F3FA | 0x1F400..=0x1F64F | 0x1F680..=0x1F6FF | 0x1F900..=0x1F9FF | 0x1FA70..=0x1FAFF
        | 0x2600..=0x27BF | 0x2B50 | 0x2B55 | 0x1F004 | 0x1F0CF | 0x1F170..=0x1F251)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<(String, usize)> {
        let mut analyzer = analyzer();
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            out.push((token.text.clone(), token.position));
        }
        out
    }

    fn texts(text: &str) -> Vec<String> {
        tokens(text).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn hashtags_and_mentions_are_kept_and_also_read_as_words() {
        assert_eq!(
            tokens("@United lost my bag #NeverAgain"),
            vec![
                ("@united".into(), 0),
                ("united".into(), 0),
                ("lost".into(), 1),
                ("my".into(), 2),
                ("bag".into(), 3),
                ("#neveragain".into(), 4),
                ("neveragain".into(), 4),
            ]
        );
        assert_eq!(texts("#1 fan"), vec!["#1", "1", "fan"]);
        assert_eq!(texts("a # b @ c"), vec!["a", "b", "c"]);
    }

    #[test]
    fn a_url_is_one_token_without_its_scheme_or_trailing_punctuation() {
        assert_eq!(texts("see https://t.co/AbC123, then"), vec!["see", "t.co/abc123", "then"]);
        assert_eq!(texts("www.example.com/x."), vec!["www.example.com/x"]);
        assert_eq!(texts("http:// nothing"), vec!["http", "nothing"]);
    }

    #[test]
    fn emoji_are_tokens_and_modifiers_are_dropped() {
        assert_eq!(texts("love it😍😍 👍🏽"), vec!["love", "it", "😍", "😍", "👍"]);
        assert_eq!(texts("❤️ this"), vec!["❤", "this"]);
    }

    #[test]
    fn unspaced_scripts_are_read_a_character_at_a_time() {
        assert_eq!(texts("但是电池不好。"), vec!["但", "是", "电", "池", "不", "好"]);
        assert_eq!(texts("iPhone手机"), vec!["iphone", "手", "机"], "a script change ends a word");
        assert_eq!(texts("バッテリーが"), vec!["バ", "ッ", "テ", "リ", "ー", "が"]);
        assert_eq!(texts("배터리가 닳아요"), vec!["배", "터", "리", "가", "닳", "아", "요"]);
        // A Thai letter keeps its vowel and tone marks: แ บ ต เ ต อ รี่.
        assert_eq!(texts("แบตเตอรี่"), vec!["แ", "บ", "ต", "เ", "ต", "อ", "รี่"]);
        // A hashtag is one token, its words at the positions after it.
        assert_eq!(tokens("#电池 ok"), vec![("#电池".into(), 0), ("电".into(), 0), ("池".into(), 1), ("ok".into(), 2)]);
    }

    #[test]
    fn words_are_lowercased_and_folded() {
        assert_eq!(texts("Shipping to Montréal, ÇA VA?"), vec!["shipping", "to", "montreal", "ca", "va"]);
        assert_eq!(texts("iPhone's battery_life 4.5"), vec!["iphone", "s", "battery_life", "4", "5"]);
    }
}
