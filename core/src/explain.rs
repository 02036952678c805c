//! Explanations: which words made the models read a comment as they did, found by **occlusion**: the sentence
//! heads read the text with words left out, and a word's weight is how much the predicted label's probability
//! rises with it. Two ways to leave words out, both measured by `murmur-bench explain` (is the probability's
//! fall without an explanation's top words larger than without random ones, and at what cost):
//!
//! - [`Method::Sampled`], served: random halves of the words left out (each reading paired with its
//!   complement), and each word's weight is its coefficient in a least-squares fit of the probability on which
//!   words were present: the average rise the word brings whatever else is there (a sampled Banzhaf value).
//!   Two words that each suffice ("filthy … rude") both get their due, because half the readings lack the
//!   other one. 2n + 32 readings for n words.
//! - [`Method::LeaveOneOut`]: each word left out in turn, weight = the fall without it; n + 1 readings, but
//!   blind to redundancy: with "filthy" and "rude" the label holds without either, so neither weighs.
//!
//! Readings go to the model as one call (batched like any enrichment), no gradients, deterministic: the
//! sampling is seeded by the text, so a text gets the same explanation every time.
//!
//! Words are what a reader sees as words, not the model's sub-tokens: whitespace-separated runs with their
//! leading and trailing punctuation (or emoji) split off as words of their own, `@handles` and `#hashtags`
//! whole. Offsets count characters, like every span murmur returns.

use serde::{Deserialize, Serialize};

use crate::hash::{fnv1a, Rng};
use crate::{BoxError, Enricher, Enrichment};

/// Words weighed at most per text; later words get no weight and the explanation says it was cut.
pub const MAX_EXPLAINED_WORDS: usize = 200;

/// Weights below this get no strength: when no word moves the label's probability by 0.02, none carries it.
pub const MIN_STRENGTH_WEIGHT: f32 = 0.02;

/// Readings of the sampled method beyond two per word (pairs of complementary halves).
const EXTRA_SAMPLES: usize = 32;

/// How words are left out (see the module's comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Sampled,
    LeaveOneOut,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sampled => "sampled-occlusion",
            Self::LeaveOneOut => "leave-one-out",
        }
    }

    /// Which words each reading keeps, for `n` words, seeded by `seed`.
    fn masks(self, n: usize, seed: u64) -> Vec<Vec<bool>> {
        match self {
            Self::LeaveOneOut => (0..n).map(|i| (0..n).map(|k| k != i).collect()).collect(),
            Self::Sampled => {
                let mut rng = Rng::new(seed);
                let pairs = n + EXTRA_SAMPLES / 2;
                let mut masks = Vec::with_capacity(2 * pairs);
                for _ in 0..pairs {
                    let kept: Vec<bool> = (0..n).map(|_| rng.chance(0.5)).collect();
                    masks.push(kept.iter().map(|k| !k).collect());
                    masks.push(kept);
                }
                masks
            }
        }
    }

    /// Each word's weight from the label's probability `whole` with every word and `readings` under `masks`.
    fn weights(self, whole: f32, masks: &[Vec<bool>], readings: &[f32], n: usize) -> Vec<f32> {
        match self {
            Self::LeaveOneOut => readings.iter().map(|p| whole - p).collect(),
            Self::Sampled => least_squares(masks, readings, n),
        }
    }
}

/// Why the sentence heads read a text as they did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Explanation {
    /// How the weights were found: `sampled-occlusion` (random halves of the words left out, a least-squares
    /// fit of the label's probability on the words present).
    pub method: String,
    /// The sentiment label's explanation; absent when the model has no sentiment head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<LabelExplanation>,
    /// The most probable emotion's explanation; absent when the model has no emotion head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotion: Option<LabelExplanation>,
    /// True when the text had more than 200 words: only the first 200 were weighed.
    pub truncated: bool,
}

/// One predicted label and each word's part in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabelExplanation {
    /// The label explained (`negative`, `joy`, …).
    pub label: String,
    /// Its probability for the whole text.
    pub probability: f32,
    /// Every word weighed, in text order.
    pub words: Vec<WordWeight>,
}

/// A word and how much the label's probability rises with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WordWeight {
    /// The word as written, `text[start..end]` counted in characters.
    pub text: String,
    /// Offsets into the text in characters, end exclusive.
    pub start: usize,
    pub end: usize,
    /// How much the label's probability rises with the word present, on average over which other words are
    /// there: positive words support the label, negative ones argue against it.
    pub weight: f32,
    /// The weight against the strongest supporting word's, in [0, 1] (0: against the label, or below
    /// [`MIN_STRENGTH_WEIGHT`]): what displays mark words by.
    pub strength: f32,
}

impl LabelExplanation {
    /// The `n` words supporting the label most, strongest first (only those with a strength).
    pub fn top(&self, n: usize) -> Vec<&WordWeight> {
        let mut words: Vec<&WordWeight> = self.words.iter().filter(|w| w.strength > 0.0).collect();
        words.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        words.truncate(n);
        words
    }
}

/// A word of `text` as byte offsets (see the module's rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WordSpan {
    pub start: usize,
    pub end: usize,
}

/// The words of `text`, in order: whitespace-separated runs, with leading and trailing punctuation or emoji
/// split off (a run of them is one word), and an `@` or `#` kept with the name it opens.
pub fn explained_words(text: &str) -> Vec<WordSpan> {
    let mut out = Vec::new();
    let mut rest = text.char_indices().peekable();
    while let Some(&(start, c)) = rest.peek() {
        if c.is_whitespace() {
            rest.next();
            continue;
        }
        let mut end = start;
        while let Some(&(i, c)) = rest.peek() {
            if c.is_whitespace() {
                break;
            }
            end = i + c.len_utf8();
            rest.next();
        }
        split_punctuation(text, start, end, &mut out);
    }
    out
}

/// Splits one whitespace-free run into leading punctuation, the word, and trailing punctuation.
fn split_punctuation(text: &str, start: usize, end: usize, out: &mut Vec<WordSpan>) {
    let run = &text[start..end];
    let Some(first) = run.find(char::is_alphanumeric) else {
        out.push(WordSpan { start, end });
        return;
    };
    let opens_name = run[..first].ends_with(['@', '#']);
    let first = if opens_name { first - 1 } else { first };
    let last =
        run.rfind(char::is_alphanumeric).map_or(run.len(), |i| i + run[i..].chars().next().map_or(1, char::len_utf8));
    for (s, e) in [(0, first), (first, last), (last, run.len())] {
        if s < e {
            out.push(WordSpan { start: start + s, end: start + e });
        }
    }
}

/// `text` without the words `left_out` (byte spans of [`explained_words`], in order).
pub fn without_words(text: &str, left_out: &[WordSpan]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in left_out {
        out.push_str(&text[at..span.start]);
        at = span.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Explains how `enricher`'s sentence heads read `text`, the way the service does ([`Method::Sampled`]).
pub fn explain(enricher: &dyn Enricher, text: &str) -> Result<Explanation, BoxError> {
    explain_with(enricher, text, Method::Sampled)
}

/// Explains how `enricher`'s sentence heads read `text` by `method`: one model call over the text and its
/// readings with words left out (of its first [`MAX_EXPLAINED_WORDS`] words).
pub fn explain_with(enricher: &dyn Enricher, text: &str, method: Method) -> Result<Explanation, BoxError> {
    let mut words = explained_words(text);
    let truncated = words.len() > MAX_EXPLAINED_WORDS;
    words.truncate(MAX_EXPLAINED_WORDS);
    let masks = method.masks(words.len(), fnv1a(text.as_bytes()));
    let mut texts = vec![text.to_owned()];
    for mask in &masks {
        let left_out: Vec<WordSpan> = words.iter().zip(mask).filter(|(_, kept)| !**kept).map(|(w, _)| *w).collect();
        texts.push(without_words(text, &left_out));
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let readings = crate::one_per_text(refs.len(), enricher.classify(&refs)?)?;
    let (whole, each) = readings.split_first().ok_or("the model read no text")?;
    let explain_label = |label: &str, probability: &dyn Fn(&Enrichment) -> Option<f32>| -> Option<LabelExplanation> {
        let p = probability(whole)?;
        let each: Vec<f32> = each.iter().map(|r| probability(r).unwrap_or(p)).collect();
        let weights = method.weights(p, &masks, &each, words.len());
        let strongest = weights.iter().copied().fold(0.0f32, f32::max);
        let words = words
            .iter()
            .zip(weights)
            .map(|(span, weight)| {
                let start = text[..span.start].chars().count();
                let word = &text[span.start..span.end];
                let strength = if weight >= MIN_STRENGTH_WEIGHT { weight / strongest } else { 0.0 };
                WordWeight { text: word.to_owned(), start, end: start + word.chars().count(), weight, strength }
            })
            .collect();
        Some(LabelExplanation { label: label.to_owned(), probability: p, words })
    };
    let sentiment = whole.sentiment.as_ref().and_then(|s| {
        let label = s.label;
        explain_label(label.as_str(), &|e| e.sentiment.as_ref().map(|s| s.probability(label)))
    });
    let emotion = whole.emotion.as_ref().and_then(|e| {
        let label = e.primary();
        explain_label(label.as_str(), &|r| r.emotion.as_ref().map(|e| e.probability(label)))
    });
    Ok(Explanation { method: method.as_str().to_owned(), sentiment, emotion, truncated })
}

/// Coefficients of the `n` words in the least-squares fit `y ≈ b + Σ β_i · kept_i` over the readings (a
/// faint ridge keeps the system solvable when a word was kept in every reading or in none).
fn least_squares(masks: &[Vec<bool>], y: &[f32], n: usize) -> Vec<f32> {
    const RIDGE: f64 = 1e-3;
    let m = n + 1;
    // The normal equations (XᵀX + λI) β = Xᵀy, with column 0 the intercept.
    let mut a = vec![0f64; m * m];
    let mut b = vec![0f64; m];
    for (mask, &y) in masks.iter().zip(y) {
        let x: Vec<usize> = std::iter::once(0).chain((0..n).filter(|&i| mask[i]).map(|i| i + 1)).collect();
        for &i in &x {
            b[i] += f64::from(y);
            for &j in &x {
                a[i * m + j] += 1.0;
            }
        }
    }
    for i in 1..m {
        a[i * m + i] += RIDGE;
    }
    // Cholesky: a = L Lᵀ (a is symmetric positive definite with the ridge).
    for j in 0..m {
        let diagonal = a[j * m + j] - (0..j).map(|k| a[j * m + k] * a[j * m + k]).sum::<f64>();
        let l = diagonal.max(1e-12).sqrt();
        a[j * m + j] = l;
        for i in j + 1..m {
            let off = a[i * m + j] - (0..j).map(|k| a[i * m + k] * a[j * m + k]).sum::<f64>();
            a[i * m + j] = off / l;
        }
    }
    for i in 0..m {
        b[i] = (b[i] - (0..i).map(|k| a[i * m + k] * b[k]).sum::<f64>()) / a[i * m + i];
    }
    for i in (0..m).rev() {
        b[i] = (b[i] - (i + 1..m).map(|k| a[k * m + i] * b[k]).sum::<f64>()) / a[i * m + i];
    }
    b[1..].iter().map(|&w| w as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sentiment;

    fn words(text: &str) -> Vec<&str> {
        explained_words(text).iter().map(|w| &text[w.start..w.end]).collect()
    }

    #[test]
    fn words_split_off_punctuation_and_keep_handles() {
        assert_eq!(words("@united lost my bag... AGAIN!!"), ["@united", "lost", "my", "bag", "...", "AGAIN", "!!"]);
        assert_eq!(words("(don't) love😍 #fail"), ["(", "don't", ")", "love", "😍", "#fail"]);
        assert_eq!(words("  café crème — très bon 👍👍 "), ["café", "crème", "—", "très", "bon", "👍👍"]);
        assert!(words(" \n\t").is_empty());
    }

    #[test]
    fn leaving_words_out_keeps_the_rest() {
        let text = "the screen is gorgeous!";
        let spans = explained_words(text);
        assert_eq!(without_words(text, &[spans[3]]), "the screen is !");
        assert_eq!(without_words(text, &[spans[0], spans[4]]), " screen is gorgeous");
    }

    /// Reads "bad" as negative and "good" as positive, more surely the more such words; neutral otherwise.
    struct Lexicon;

    impl Enricher for Lexicon {
        fn model_id(&self) -> &str {
            "lexicon"
        }

        fn enrich(&self, texts: &[&str]) -> Result<Vec<Enrichment>, BoxError> {
            Ok(texts
                .iter()
                .map(|t| {
                    let bad = t.matches("bad").count() as f32;
                    let good = t.matches("good").count() as f32;
                    let (negative, positive) = (0.1 + 0.3 * bad, 0.1 + 0.3 * good);
                    let neutral = (1.0 - negative - positive).max(0.0);
                    let label = if negative > positive.max(neutral) {
                        crate::SentimentLabel::Negative
                    } else if positive > neutral {
                        crate::SentimentLabel::Positive
                    } else {
                        crate::SentimentLabel::Neutral
                    };
                    Enrichment {
                        sentiment: Some(Sentiment { label, negative, neutral, positive }),
                        ..Enrichment::embedding_only("lexicon", vec![])
                    }
                })
                .collect())
        }
    }

    #[test]
    fn both_methods_find_the_words_that_carry_the_label() {
        let text = "so bad, 😡 really bad café";
        for method in [Method::Sampled, Method::LeaveOneOut] {
            let explanation = explain_with(&Lexicon, text, method).expect("explained");
            assert_eq!(explanation.method, method.as_str());
            assert!(explanation.emotion.is_none() && !explanation.truncated);
            let sentiment = explanation.sentiment.expect("sentiment");
            assert_eq!(sentiment.label, "negative");
            assert!((sentiment.probability - 0.7).abs() < 1e-6);
            // The lexicon is linear in "bad": each one adds 0.3 to p(negative), whatever else is there.
            let weighed: Vec<(f32, f32)> = sentiment.words.iter().map(|w| (w.weight, w.strength)).collect();
            let expected = [(0.0, 0.0), (0.3, 1.0), (0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (0.3, 1.0), (0.0, 0.0)];
            let close = |a: (f32, f32), b: (f32, f32)| (a.0 - b.0).abs() < 1e-3 && (a.1 - b.1).abs() < 1e-2;
            assert!(weighed.iter().zip(expected).all(|(a, b)| close(*a, b)), "{method:?}: {weighed:?}");
            let top: Vec<&str> = sentiment.top(3).iter().map(|w| w.text.as_str()).collect();
            assert_eq!(top, ["bad", "bad"], "only the words that carry the label weigh");
            for word in &sentiment.words {
                let chars: String = text.chars().skip(word.start).take(word.end - word.start).collect();
                assert_eq!(chars, word.text, "offsets count characters through emoji and accents");
            }
            assert_eq!(sentiment.words.last().map(|w| (w.start, w.end)), Some((21, 25)));
        }
    }

    /// Negative when "awful" or "rude" is there, whichever: the redundancy leaving one word out cannot see.
    struct EitherWord;

    impl Enricher for EitherWord {
        fn model_id(&self) -> &str {
            "either"
        }

        fn enrich(&self, texts: &[&str]) -> Result<Vec<Enrichment>, BoxError> {
            Ok(texts
                .iter()
                .map(|t| {
                    let negative = if t.contains("awful") || t.contains("rude") { 0.9 } else { 0.2 };
                    let label =
                        if negative > 0.5 { crate::SentimentLabel::Negative } else { crate::SentimentLabel::Neutral };
                    let sentiment = Sentiment { label, negative, neutral: 1.0 - negative, positive: 0.0 };
                    Enrichment { sentiment: Some(sentiment), ..Enrichment::embedding_only("either", vec![]) }
                })
                .collect())
        }
    }

    #[test]
    fn sampling_credits_words_that_each_suffice() {
        let text = "the food was awful and the waiter rude";
        let top = |method| {
            let explanation = explain_with(&EitherWord, text, method).expect("explained");
            let sentiment = explanation.sentiment.expect("sentiment");
            sentiment.top(2).iter().map(|w| w.text.clone()).collect::<Vec<_>>()
        };
        assert_eq!(top(Method::LeaveOneOut), Vec::<String>::new(), "neither word alone changes the label");
        let mut sampled = top(Method::Sampled);
        sampled.sort();
        assert_eq!(sampled, ["awful", "rude"]);
        let again = explain(&EitherWord, text).expect("explained");
        assert_eq!(Some(again), explain(&EitherWord, text).ok(), "the same text, the same explanation");
    }
}
