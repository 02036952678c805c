//! Which language a text is written in: the [lingua](https://docs.rs/lingua) detector (n-gram models compiled
//! into the binary, nothing loaded at run time) over the 18 languages below, chosen against `whichlang` by
//! `murmur-bench languages` (accuracy per language on lingua's test sentences and word pairs, and on the demo's
//! English tweets; see docs/languages.md). Handles, hashtags and links are left out of what it reads: they
//! are names, not language.
//!
//! The heads read a text unless the detector is **confident** it is in none of the languages they learned
//! (their share of its confidence below [`SKIP_BELOW`]): a short or mixed text it is unsure of is read as
//! before, so English slang is not dropped for looking Dutch.

use lingua::{Language, LanguageDetectorBuilder};
use murmur_core::DetectedLanguage;

/// The languages the detector knows. A text in another one is given the nearest of these, at a low
/// confidence, so it is neither trusted nor dropped.
pub const DETECTED_LANGUAGES: [Language; 18] = [
    Language::Arabic,
    Language::Chinese,
    Language::Dutch,
    Language::English,
    Language::French,
    Language::German,
    Language::Hindi,
    Language::Indonesian,
    Language::Italian,
    Language::Japanese,
    Language::Korean,
    Language::Portuguese,
    Language::Russian,
    Language::Spanish,
    Language::Swedish,
    Language::Thai,
    Language::Turkish,
    Language::Vietnamese,
];

/// The heads skip a text when the detector's confidence that it is in one of their languages is below this
/// (chosen on the demo's English tweets and lingua's sentences: see docs/languages.md).
pub const SKIP_BELOW: f64 = 0.1;

/// Words of a Latin-script text the heads may skip at least: "I dmed" or "noooope." are too little to call
/// another language on (scripts without spaces between words are judged on any length).
pub const MIN_SKIPPED_WORDS: usize = 3;

pub struct LanguageDetector {
    detector: lingua::LanguageDetector,
}

impl Default for LanguageDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl LanguageDetector {
    /// Models load lazily, each language's on first need.
    pub fn new() -> Self {
        Self { detector: LanguageDetectorBuilder::from_languages(&DETECTED_LANGUAGES).build() }
    }

    /// The most likely language of `text` and the detector's confidence in it (`None` when the text has no
    /// letters outside handles, hashtags and links), and whether heads that learned `languages` (ISO 639-1
    /// codes) should read it: unless the detector is confident it is in none of them.
    pub fn detect(&self, text: &str, languages: &[String]) -> (Option<DetectedLanguage>, bool) {
        let words: Vec<&str> = text.split_whitespace().filter(|w| is_prose(w)).collect();
        if !words.iter().any(|w| w.chars().any(char::is_alphabetic)) {
            return (None, true);
        }
        let (detected, theirs) = self.confidences(&words, languages);
        let enough = words.len() >= MIN_SKIPPED_WORDS || words.iter().any(|w| w.chars().any(is_beyond_latin));
        if detected.is_none() || theirs >= SKIP_BELOW || !enough {
            return (detected, true);
        }
        // Skipped only if the text still reads as another language without its capitalised words after the
        // first: mostly names ("Göteborg", "Nestlé"), whose letters can swing the detector to their country's
        // language in an English sentence.
        let unnamed: Vec<&str> = words
            .iter()
            .enumerate()
            .filter(|(i, w)| {
                *i == 0 || !w.trim_start_matches(|c: char| !c.is_alphanumeric()).starts_with(char::is_uppercase)
            })
            .map(|(_, w)| *w)
            .collect();
        let read = unnamed.len() < words.len() && self.confidences(&unnamed, languages).1 >= SKIP_BELOW;
        (detected, read)
    }

    /// The most likely language of `words` and the confidence that they are in one of `languages`.
    fn confidences(&self, words: &[&str], languages: &[String]) -> (Option<DetectedLanguage>, f64) {
        let confidences = self.detector.compute_language_confidence_values(words.join(" "));
        let theirs: f64 = confidences
            .iter()
            .filter(|(l, _)| languages.iter().any(|code| *code == l.iso_code_639_1().to_string()))
            .map(|(_, c)| c)
            .sum();
        let top = confidences.first().filter(|(_, c)| *c > 0.0);
        let detected =
            top.map(|(l, c)| DetectedLanguage { code: l.iso_code_639_1().to_string(), confidence: *c as f32 });
        (detected, theirs)
    }
}

/// A letter of a script other than Latin (Greek, Cyrillic, Arabic, Devanagari, Thai, CJK, Hangul, …).
fn is_beyond_latin(c: char) -> bool {
    c.is_alphabetic() && c > '\u{24f}' && !('\u{1e00}'..='\u{1eff}').contains(&c)
}

/// Whether a whitespace-separated word is prose the detector should read: not a handle, hashtag or link, and
/// not mojibake (UTF-8 emoji read as Latin-1 leave runs like `_ôï__ôï_` or `äó»` that look French or
/// Vietnamese: underscores and the Latin-1 symbols U+0080–U+00BF are never letters of a word).
fn is_prose(word: &str) -> bool {
    !(word.starts_with(['@', '#'])
        || word.contains("http")
        || word.contains("www.")
        || word.contains(['@', '_'])
        || word.contains(|c: char| ('\u{80}'..='\u{bf}').contains(&c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_links_hashtags_and_mojibake_are_not_language() {
        let detector = LanguageDetector::new();
        let en = ["en".to_owned()];
        assert_eq!(detector.detect("@united #fail https://t.co/x 😡", &en), (None, true));
        let (mojibake, read) = detector.detect("Holy shiiiiit _ô»ë_ô»ë_ôÖ© #Coachella2015", &en);
        assert!(read, "{mojibake:?}");
        let (french, read) = detector.detect("@sncf le train est encore en retard, c'est vraiment insupportable", &en);
        assert_eq!(french.map(|f| f.code).as_deref(), Some("fr"));
        assert!(!read, "French is not read by English heads");
        let (chinese, read) = detector.detect("我很喜欢这个手机，但是电池不好。", &en);
        assert_eq!((chinese.map(|c| c.code).as_deref(), read), (Some("zh"), false));
        let fr = ["en".to_owned(), "fr".to_owned()];
        assert!(detector.detect("le train est encore en retard, c'est vraiment insupportable", &fr).1);
    }

    #[test]
    fn short_english_is_read() {
        let detector = LanguageDetector::new();
        let en = ["en".to_owned()];
        for text in ["lol ok", "omg 😍😍", "gracias @delta for the upgrade!", "@united noooooooope.", "I dmed"] {
            assert!(detector.detect(text, &en).1, "{text:?}: {:?}", detector.detect(text, &en));
        }
    }
}
