//! Aspects: what a comment judges ("battery", "customer service", "delivery") and the sentiment toward each,
//! which may differ from the comment's ("the battery dies fast but the screen is gorgeous"). The model finds
//! the terms as written; [`aspect_name`] is the one rule for what a term counts under.

use serde::{Deserialize, Serialize};

use crate::comment::fold_accent;
use crate::Sentiment;

/// An aspect term found in a comment's text and the sentiment the comment expresses toward it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Aspect {
    /// The term as written, `text[start..end]` counted in characters.
    pub text: String,
    /// Offsets into the comment's text in characters, end exclusive.
    pub start: usize,
    pub end: usize,
    /// What the term counts under (see [`aspect_name`]): "Batteries" and "the battery" are `battery`.
    pub name: String,
    /// The sentiment toward this aspect (not the comment's), calibrated probabilities.
    pub sentiment: Sentiment,
    /// Mean probability the model gave the term's tags, in (0, 1].
    pub score: f32,
}

/// Words that open a term without being part of what it names.
const LEADING: [&str; 16] = [
    "the", "a", "an", "my", "our", "your", "their", "his", "her", "its", "this", "that", "these", "those", "some",
    "all",
];

/// One name per aspect however it is written: lower case, accents folded, punctuation dropped except inner
/// hyphens and apostrophes, a leading article or possessive dropped, and the last word in its singular
/// ("Batteries" → `battery`, "the waiters" → `waiter`, "customer services" → `customer service`). Empty when
/// nothing is left.
pub fn aspect_name(term: &str) -> String {
    let cleaned: String = term
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '-' || c == '\'' { c } else { ' ' })
        .flat_map(char::to_lowercase)
        .map(fold_accent)
        .collect();
    let mut words: Vec<&str> =
        cleaned.split_whitespace().map(|w| w.trim_matches(['-', '\''])).filter(|w| !w.is_empty()).collect();
    while words.len() > 1 && LEADING.contains(&words[0]) {
        words.remove(0);
    }
    let Some(last) = words.pop() else { return String::new() };
    let last = singular(last);
    words.push(&last);
    words.join(" ")
}

/// The singular of an English plural noun by the regular rules; words that only look plural stay.
fn singular(word: &str) -> String {
    const KEEP: [&str; 14] = [
        "news",
        "series",
        "species",
        "glasses",
        "bus",
        "gas",
        "plus",
        "menus",
        "status",
        "always",
        "sometimes",
        "pancreas",
        "analysis",
        "chassis",
    ];
    let n = word.chars().count();
    if n <= 3 || KEEP.contains(&word) || word.ends_with("ss") || word.ends_with("us") || word.ends_with("is") {
        return if word == "menus" { "menu".into() } else { word.to_owned() };
    }
    if let Some(stem) = word.strip_suffix("ies") {
        return format!("{stem}y");
    }
    for ending in ["ches", "shes", "xes", "sses", "zzes"] {
        if word.ends_with(ending) {
            return word[..word.len() - 2].to_owned();
        }
    }
    if word.ends_with("oes") && !word.ends_with("shoes") {
        return word[..word.len() - 2].to_owned();
    }
    match word.strip_suffix('s') {
        Some(stem) if !stem.ends_with('s') && !stem.ends_with('\'') => stem.to_owned(),
        _ => word.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_case_articles_and_plurals() {
        let cases = [
            ("Batteries", "battery"),
            ("the battery", "battery"),
            ("Customer Services", "customer service"),
            ("their waiters", "waiter"),
            ("dishes", "dish"),
            ("boxes", "box"),
            ("prices", "price"),
            ("glasses", "glasses"),
            ("menus", "menu"),
            ("bus", "bus"),
            ("tomatoes", "tomato"),
            ("shoes", "shoe"),
            ("Wi-Fi", "wi-fi"),
            ("crème brûlée", "creme brulee"),
            ("service", "service"),
            ("news", "news"),
            ("the", "the"),
            ("...", ""),
        ];
        for (term, want) in cases {
            assert_eq!(aspect_name(term), want, "{term}");
        }
    }
}
