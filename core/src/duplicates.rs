//! Near-duplicates: retweets (`RT @x: …`), copy-paste and template spam, recognised so that a thousand copies
//! count as one opinion.
//!
//! A comment's text is **normalised** first: lower case, retweet prefixes (`RT @x:`, repeated) removed, URLs
//! and @handles removed (a copy names another account or a shortened link), every run of digits written `0`
//! (templates vary an order number, a price or a date), punctuation dropped, whitespace collapsed. Its
//! **shingles** are the normalised words and adjacent word pairs (so word order counts some).
//!
//! Two comments are **copies** when their normalised texts are equal, or when the Jaccard similarity of their
//! shingles is at least [`THRESHOLD`]. Texts of fewer than [`MIN_WORDS`] words are never copies: "thank you"
//! written by a hundred people is a hundred opinions, not a campaign.
//!
//! A store finds the candidates without comparing every pair: each comment has a **MinHash** of
//! [`BANDS`] × [`ROWS`] values, cut into [`BANDS`] band keys; comments sharing a band key are candidates,
//! which are then compared exactly. A pair at the threshold (J = 0.55) shares a band with probability
//! 1 − (1 − 0.55²)⁸ ≈ 0.94, a pair at J = 0.7 with 0.995.
//!
//! The threshold was chosen on the dev half of a labelled sample of real tweets (pairs of corpus rows in
//! `tests/fixtures/near_duplicates.tsv`, scored by `tests/near_duplicates.rs`); its test half's precision and
//! recall are in `docs/duplicates.md`.

use std::collections::{HashMap, VecDeque};

use crate::hash::{fnv1a, splitmix64};

/// Fewest words a text needs to be anybody's copy.
pub const MIN_WORDS: usize = 5;
/// Least Jaccard similarity of two copies' shingles.
pub const THRESHOLD: f64 = 0.55;
/// Band keys per comment.
pub const BANDS: usize = 8;
/// MinHash values per band.
pub const ROWS: usize = 2;

/// A text's shingles, as a store compares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shingles {
    /// Hash of the normalised text: equal for exact copies.
    pub exact: u64,
    /// The shingles' hashes, sorted, each once.
    hashes: Vec<u64>,
}

impl Shingles {
    /// The shingles of a text, or `None` for one too short to be a copy.
    pub fn of(text: &str) -> Option<Self> {
        let normalized = normalize(text);
        let words: Vec<&str> = normalized.split(' ').filter(|w| !w.is_empty()).collect();
        if words.len() < MIN_WORDS {
            return None;
        }
        let mut hashes: Vec<u64> = words.iter().map(|w| fnv1a(w.as_bytes())).collect();
        hashes.extend(
            words.windows(2).map(|p| splitmix64(fnv1a(p[0].as_bytes()) ^ fnv1a(p[1].as_bytes()).rotate_left(1))),
        );
        hashes.sort_unstable();
        hashes.dedup();
        Some(Self { exact: fnv1a(normalized.as_bytes()), hashes })
    }

    /// Jaccard similarity of two shingle sets.
    pub fn jaccard(&self, other: &Self) -> f64 {
        let (mut i, mut j, mut common) = (0, 0, 0);
        while i < self.hashes.len() && j < other.hashes.len() {
            match self.hashes[i].cmp(&other.hashes[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    common += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        let union = self.hashes.len() + other.hashes.len() - common;
        if union == 0 {
            0.0
        } else {
            common as f64 / union as f64
        }
    }

    /// Whether `other` is a copy of this text (see the module docs).
    pub fn is_copy(&self, other: &Self) -> bool {
        self.exact == other.exact || self.jaccard(other) >= THRESHOLD
    }

    /// The band keys candidates are looked up by: a hash of each band of the MinHash (and of its position).
    pub fn bands(&self) -> [i64; BANDS] {
        let minhash: Vec<u64> = (0..BANDS * ROWS)
            .map(|k| {
                let seed = splitmix64(k as u64);
                self.hashes.iter().map(|h| splitmix64(h ^ seed)).min().unwrap_or(u64::MAX)
            })
            .collect();
        std::array::from_fn(|band| {
            let rows = &minhash[band * ROWS..(band + 1) * ROWS];
            rows.iter().fold(splitmix64(band as u64 + 1), |key, value| splitmix64(key ^ value)) as i64
        })
    }
}

/// The originals new comments are compared with, in the order they were seen: at most `capacity` of them,
/// the oldest forgotten first (a copy of a forgotten original starts a cluster of its own). About 600 bytes
/// an original for a tweet-sized text.
#[derive(Debug)]
pub struct CopyIndex<K> {
    capacity: usize,
    /// Serial number of `originals[0]`; an original's serial is its position in the stream of originals.
    first: u64,
    originals: VecDeque<(K, Shingles)>,
    /// Band key → serials of the originals with it, oldest first.
    bands: HashMap<i64, Vec<u64>>,
}

impl<K: Clone> CopyIndex<K> {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, first: 0, originals: VecDeque::new(), bands: HashMap::new() }
    }

    pub fn len(&self) -> usize {
        self.originals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }

    /// The first-seen original `text` is a copy of, or `None` after adding it as an original itself (texts too
    /// short to be copies are neither).
    pub fn check(&mut self, key: K, text: &str) -> Option<K> {
        let shingles = Shingles::of(text)?;
        let bands = shingles.bands();
        let mut candidates: Vec<u64> =
            bands.iter().filter_map(|band| self.bands.get(band)).flatten().copied().collect();
        candidates.sort_unstable();
        candidates.dedup();
        for serial in candidates {
            let (original, theirs) = &self.originals[(serial - self.first) as usize];
            if theirs.is_copy(&shingles) {
                return Some(original.clone());
            }
        }
        self.add(key, shingles, bands);
        None
    }

    /// Adds a known original (as a store reloads them, oldest first), unless its text is too short.
    pub fn add_original(&mut self, key: K, text: &str) {
        if let Some(shingles) = Shingles::of(text) {
            let bands = shingles.bands();
            self.add(key, shingles, bands);
        }
    }

    fn add(&mut self, key: K, shingles: Shingles, bands: [i64; BANDS]) {
        if self.capacity == 0 {
            return;
        }
        if self.originals.len() == self.capacity {
            self.forget_oldest();
        }
        let serial = self.first + self.originals.len() as u64;
        for band in bands {
            self.bands.entry(band).or_default().push(serial);
        }
        self.originals.push_back((key, shingles));
    }

    fn forget_oldest(&mut self) {
        let Some((_, shingles)) = self.originals.pop_front() else { return };
        for band in shingles.bands() {
            if let Some(serials) = self.bands.get_mut(&band) {
                serials.retain(|&s| s != self.first);
                if serials.is_empty() {
                    self.bands.remove(&band);
                }
            }
        }
        self.first += 1;
    }
}

/// The text as copies are compared (see the module docs).
pub fn normalize(text: &str) -> String {
    let mut rest = text.trim_start();
    // Retweet prefixes, possibly nested: "RT @a: RT @b: text".
    while let Some(after) = strip_retweet(rest) {
        rest = after;
    }
    let mut out = String::with_capacity(rest.len());
    for token in rest.split_whitespace() {
        let lower = token.to_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("www.") {
            continue;
        }
        if lower.starts_with('@') {
            continue;
        }
        let mut digits = false;
        for c in lower.chars() {
            if c.is_numeric() {
                if !digits {
                    out.push('0');
                }
                digits = true;
                continue;
            }
            digits = false;
            if c.is_alphanumeric() || c == '#' {
                out.push(c);
            } else if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
        }
        if !out.ends_with(' ') && !out.is_empty() {
            out.push(' ');
        }
    }
    out.trim_end().to_owned()
}

fn strip_retweet(text: &str) -> Option<&str> {
    let head = text.get(..3)?;
    if !head.eq_ignore_ascii_case("rt ") {
        return None;
    }
    let after = text[3..].trim_start().strip_prefix('@')?;
    let end = after.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(after.len());
    let after = after[end..].trim_start();
    Some(after.strip_prefix(':').unwrap_or(after).trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copies(a: &str, b: &str) -> bool {
        match (Shingles::of(a), Shingles::of(b)) {
            (Some(a), Some(b)) => a.is_copy(&b),
            _ => false,
        }
    }

    #[test]
    fn normalisation_drops_what_copies_change() {
        assert_eq!(
            normalize("RT @united: RT @jo_b: Flight UA123 delayed 3 HOURS!! https://t.co/x @someone"),
            "flight ua0 delayed 0 hours"
        );
        assert_eq!(normalize("#DeflateGate   is   over…"), "#deflategate is over");
        assert_eq!(normalize("Café au lait"), "café au lait");
    }

    #[test]
    fn retweets_templates_and_small_edits_are_copies_but_different_words_are_not() {
        let tweet = "I made a #deflategate sad Einstein Brady for you http://t.co/abc";
        assert!(copies(tweet, &format!("RT @fan: {tweet}")));
        assert!(copies(
            "Win a free iPhone 15, click now, offer ends at midnight",
            "Win a free iPhone 16, click now, offer ends at midnight"
        ));
        assert!(copies(tweet, "I made a #deflategate sad Einstein Brady for you _ lol"));
        assert!(!copies("my flight to boston was cancelled again", "my flight to denver was great, thanks united"));
        assert!(!copies("thank you so", "thank you so"), "too short to be anybody's copy");
    }

    #[test]
    fn the_index_names_the_first_original_and_forgets_the_oldest_beyond_its_capacity() {
        let mut index = CopyIndex::new(2);
        assert_eq!(index.check(1, "the new phone battery dies before lunch every single day"), None);
        assert_eq!(index.check(2, "RT @x: the new phone battery dies before lunch every single day"), Some(1));
        assert_eq!(index.check(3, "the new phone battery dies before lunch every single day!!"), Some(1));
        assert_eq!(index.check(4, "thanks so much"), None, "too short to be a copy or an original");
        assert_eq!(index.check(5, "great support from the airline crew on my flight home"), None);
        assert_eq!(index.check(6, "my order 12345 arrived broken and nobody answers the phone"), None);
        assert_eq!(index.len(), 2, "the capacity holds");
        assert_eq!(
            index.check(7, "the new phone battery dies before lunch every single day"),
            None,
            "the first original was forgotten, so this one starts a cluster"
        );
        assert_eq!(index.check(8, "my order 99 arrived broken and nobody answers the phone"), Some(6));
        assert!(index.bands.values().flatten().all(|&s| s >= index.first), "forgotten serials leave the bands");
    }

    #[test]
    fn copies_share_a_band_and_unrelated_texts_do_not() {
        let a = Shingles::of("the new phone battery dies before lunch every single day").expect("long enough");
        let b = Shingles::of("RT @x: the new phone battery dies before lunch every single day").expect("long enough");
        let c = Shingles::of("great support from the airline crew on my flight home").expect("long enough");
        assert_eq!(a.bands(), b.bands(), "exact copies have the same bands");
        assert!(a.bands().iter().all(|band| !c.bands().contains(band)));
    }
}
