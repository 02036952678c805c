//! A theme's distinctive words: class-based TF-IDF (c-TF-IDF, as BERTopic labels its topics) of the words of
//! the theme's comments against the words of every theme's comments. A word's weight in a theme is its
//! frequency there times `ln(1 + A / f)`, with `f` its frequency in all themes together and `A` the mean
//! number of words per theme: a word every theme uses weighs little, one only this theme uses much.

use std::collections::HashMap;

/// Words that say nothing about a topic (English function words and social-media filler).
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "don",
    "down",
    "during",
    "each",
    "even",
    "few",
    "for",
    "from",
    "further",
    "get",
    "gets",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "im",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "let",
    "ll",
    "like",
    "me",
    "more",
    "most",
    "much",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "really",
    "rt",
    "re",
    "s",
    "same",
    "she",
    "should",
    "so",
    "some",
    "still",
    "such",
    "t",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "us",
    "ve",
    "very",
    "via",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "amp",
    "also",
    "been",
    "being",
    "every",
    "go",
    "going",
    "gonna",
    "know",
    "make",
    "new",
    "see",
    "say",
    "says",
    "said",
    "think",
    "way",
    "want",
    "well",
    "yes",
    "yeah",
    "lol",
    "oh",
    "ok",
    "okay",
    "u",
    "ur",
    "via",
    "http",
    "https",
    "www",
    "com",
];

/// A comment's words as themes weigh them: lowercase, hashtags kept as `#tag`, handles, links, numbers,
/// one-letter words and stopwords dropped; joined by spaces (the form the themer keeps per comment).
pub fn theme_words(text: &str) -> String {
    let mut out = String::new();
    for raw in text.split_whitespace() {
        if raw.starts_with('@') || raw.contains("://") || raw.starts_with("www.") {
            continue;
        }
        let hashtag = raw.starts_with('#');
        let lower = raw.to_lowercase();
        for (n, word) in lower.split(|c: char| !(c.is_alphanumeric() || c == '\'')).enumerate() {
            let word = word.trim_matches('\'');
            let word = word.strip_suffix("'s").unwrap_or(word);
            if word.chars().count() < 2
                || word.chars().all(|c| c.is_ascii_digit())
                || STOPWORDS.contains(&word)
                || is_contraction(word)
            {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            if hashtag && n == 1 {
                out.push('#');
            }
            out.push_str(word);
        }
    }
    out
}

/// A contraction ("don't", "i'm", "you're", "we've", "they'll", "i'd"): a function word, never a theme's word.
fn is_contraction(word: &str) -> bool {
    ["n't", "'m", "'re", "'ve", "'ll", "'d"].iter().any(|ending| word.ends_with(ending))
}

/// The `top` words of highest c-TF-IDF weight for each class, given each class's documents (each a
/// [`theme_words`] string). Ties break alphabetically, so the answer repeats.
pub fn distinctive_words(classes: &[Vec<&str>], top: usize) -> Vec<Vec<String>> {
    let counts: Vec<HashMap<&str, u32>> = classes
        .iter()
        .map(|docs| {
            let mut tf = HashMap::new();
            for word in docs.iter().flat_map(|d| d.split(' ')).filter(|w| !w.is_empty()) {
                *tf.entry(word).or_insert(0u32) += 1;
            }
            tf
        })
        .collect();
    let mut total: HashMap<&str, u32> = HashMap::new();
    for tf in &counts {
        for (w, n) in tf {
            *total.entry(w).or_insert(0) += n;
        }
    }
    let words: u64 = total.values().map(|n| u64::from(*n)).sum();
    let mean = words as f64 / classes.len().max(1) as f64;
    counts
        .iter()
        .map(|tf| {
            let class_words: u32 = tf.values().sum::<u32>().max(1);
            let mut weighted: Vec<(f64, &str)> = tf
                .iter()
                // A word one comment repeats is no theme's word.
                .filter(|(_, n)| **n >= 2)
                .map(|(w, n)| {
                    let idf = (1.0 + mean / f64::from(total[w])).ln();
                    (f64::from(*n) / f64::from(class_words) * idf, *w)
                })
                .collect();
            weighted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
            weighted.into_iter().take(top).map(|(_, w)| w.to_owned()).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_hashtags_and_drop_handles_links_numbers_and_stopwords() {
        assert_eq!(
            theme_words(
                "@united The #WiFi on my 2 flights was DOWN again!! https://t.co/x it's awful's, I'm sure I don't"
            ),
            "#wifi flights awful sure"
        );
    }

    #[test]
    fn a_word_every_class_shares_weighs_less_than_one_a_class_owns() {
        let battery = vec!["phone battery dies", "battery drains phone", "battery life phone"];
        let screen = vec!["phone screen cracked", "screen gorgeous phone", "screen bright phone"];
        let words = distinctive_words(&[battery, screen], 2);
        assert_eq!(words[0][0], "battery");
        assert_eq!(words[1][0], "screen");
        assert!(!words[0].contains(&"dies".to_owned()), "a word in one comment only is no theme word");
    }
}
