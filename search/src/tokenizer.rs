//! The text analyzer for comments: social-media text is not prose. `#BatteryLife` is indexed both as the
//! hashtag `#batterylife` and as the word `batterylife` (at one position, so `batterylife` finds it and
//! `#batterylife` finds only the hashtag); `@united` likewise; a URL is one token (`t.co/x1y2`) rather than
//! `https`, `t`, `co`, … noise; each emoji is a token of its own (skin-tone modifiers and joiners dropped);
//! words are runs of letters and digits, lower-cased and folded to ASCII (`Montréal` → `montreal`).

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
            push(out, i + 1, i + len, word, position);
            position += 1;
            i += len;
        } else if is_word_char(c) {
            let len = word_len(rest);
            push(out, i, i + len, rest[..len].to_lowercase(), position);
            position += 1;
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

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
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
    fn words_are_lowercased_and_folded() {
        assert_eq!(texts("Shipping to Montréal, ÇA VA?"), vec!["shipping", "to", "montreal", "ca", "va"]);
        assert_eq!(texts("iPhone's battery_life 4.5"), vec!["iphone", "s", "battery_life", "4", "5"]);
    }
}
