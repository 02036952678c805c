//! Brands a user tracks, and finding them in comments. A [`Brand`] is a name with the ways comments refer to
//! it (aliases, `@handles`, `#hashtags`), the phrases that look like it but are not (exclusions: "apple pie"
//! is not Apple) and an optional group for comparing competitors ("airlines"). [`BrandMatcher`] finds every
//! brand of a catalogue in one pass over a comment (Aho-Corasick over all terms at once).
//!
//! The matching rules, in one place:
//! - text and terms are compared in lower case with accents folded and runs of whitespace as one space, so
//!   "Citroën", "CITROEN" and "citroen" are one;
//! - an alias (the brand's name is one too) or a handle or hashtag counts on word boundaries only: "apple"
//!   is not found in "pineapple" nor `@united` in `@unitedstates`;
//! - an occurrence inside an occurrence of one of the brand's exclusions does not count ("apple pie" hides
//!   that "apple", not another one in the same comment);
//! - a name the NER model found links to a brand when it equals an alias compared as entity names are
//!   ([`normalize_entity_name`]: "U.S. Airways" is "us airways"), and an `@handle` or `#hashtag` mention when
//!   it is one of the brand's; such a link counts unless the comment holds one of the brand's exclusions.

use std::collections::{BTreeSet, HashMap};

use aho_corasick::{AhoCorasick, MatchKind};
use serde::{Deserialize, Serialize};

use crate::comment::fold_accent;
use crate::{normalize_entity_name, Entity, EntityLabel};

/// Terms of one kind a brand may have at most.
pub const MAX_BRAND_TERMS: usize = 200;
const MAX_NAME_CHARS: usize = 64;
const MAX_TERM_CHARS: usize = 100;

/// A tracked brand, as the catalogue API and the brands file take it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Brand {
    /// How the brand is shown and sliced (`brand:NAME`), unique ignoring case; also matched as an alias.
    /// 1-64 characters, without `,` or `:`.
    #[schema(example = "United Airlines")]
    pub name: String,
    /// Other words or phrases meaning the brand (`united`, `united air`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Accounts, with or without the `@` (`united`).
    #[serde(default)]
    pub handles: Vec<String>,
    /// Tags, with or without the `#` (`flyunited`).
    #[serde(default)]
    pub hashtags: Vec<String>,
    /// Phrases an alias inside of does not count (`united states`, `manchester united`).
    #[serde(default)]
    pub exclusions: Vec<String>,
    /// A set of competitors compared together (`airlines`); same rules as the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// The key a brand or group name is stored and sliced by: lower case, whitespace collapsed.
pub fn brand_key(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

impl Brand {
    pub fn key(&self) -> String {
        brand_key(&self.name)
    }

    pub fn group_key(&self) -> Option<String> {
        self.group.as_deref().map(brand_key)
    }

    /// The brand as stored: names trimmed, handles and hashtags without their marker, empty and repeated
    /// terms dropped (compared as matched). Validate first.
    pub fn normalized(self) -> Self {
        fn tidy(terms: Vec<String>, marker: Option<char>) -> Vec<String> {
            let mut seen = BTreeSet::new();
            terms
                .into_iter()
                .map(|t| {
                    let t = t.trim();
                    marker.map_or(t, |m| t.trim_start_matches(m)).to_owned()
                })
                .filter(|t| !t.is_empty() && seen.insert(fold(t)))
                .collect()
        }
        Self {
            name: self.name.split_whitespace().collect::<Vec<_>>().join(" "),
            aliases: tidy(self.aliases, None),
            handles: tidy(self.handles, Some('@')),
            hashtags: tidy(self.hashtags, Some('#')),
            exclusions: tidy(self.exclusions, None),
            group: self.group.map(|g| g.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|g| !g.is_empty()),
        }
    }

    /// Checks every field; the message names the field at fault and what was expected.
    pub fn validate(&self) -> Result<(), String> {
        check_name("name", &self.name)?;
        if let Some(group) = &self.group {
            check_name("group", group)?;
        }
        let lists: [(&str, &Vec<String>, Option<char>); 4] = [
            ("aliases", &self.aliases, None),
            ("handles", &self.handles, Some('@')),
            ("hashtags", &self.hashtags, Some('#')),
            ("exclusions", &self.exclusions, None),
        ];
        for (field, terms, marker) in lists {
            if terms.len() > MAX_BRAND_TERMS {
                return Err(format!("{field}: at most {MAX_BRAND_TERMS} terms, got {}", terms.len()));
            }
            for (i, term) in terms.iter().enumerate() {
                let bare = marker.map_or(term.trim(), |m| term.trim().trim_start_matches(m));
                let chars = bare.chars().count();
                let fine = match marker {
                    // Account and tag names: letters, digits and `_`, as the platforms allow.
                    Some(_) => (1..=MAX_TERM_CHARS).contains(&chars) && bare.chars().all(is_word_char),
                    None => (1..=MAX_TERM_CHARS).contains(&chars) && bare.chars().any(char::is_alphanumeric),
                };
                if !fine {
                    let expected = match marker {
                        Some(m) => format!("{m}name of 1-{MAX_TERM_CHARS} letters, digits or '_'"),
                        None => format!("a word or phrase of 1-{MAX_TERM_CHARS} characters with a letter or digit"),
                    };
                    return Err(format!("{field}[{i}]: expected {expected}, got {term:?}"));
                }
            }
        }
        Ok(())
    }
}

/// Checks a brand or group name (`field` names it in the message).
pub fn check_name(field: &str, name: &str) -> Result<(), String> {
    let trimmed = name.trim();
    let chars = trimmed.chars().count();
    if (1..=MAX_NAME_CHARS).contains(&chars)
        && !trimmed.contains([',', ':'])
        && trimmed.chars().any(char::is_alphanumeric)
        && !trimmed.chars().any(char::is_control)
    {
        Ok(())
    } else {
        Err(format!(
            "{field}: expected 1-{MAX_NAME_CHARS} characters with a letter or digit and without ',' or ':', got {name:?}"
        ))
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Text as brand terms are compared: lower case, accents folded, each run of whitespace one space.
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(fold_accent(c));
    }
    out
}

/// What a pattern of the automaton stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Term {
    /// An alias, the name, a handle or a hashtag: finds the brand.
    Finds,
    /// An exclusion: hides the brand's occurrences inside it.
    Excludes,
}

/// The brands a comment mentions: their keys and their groups' keys, each sorted and distinct.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrandHits {
    pub brands: Vec<String>,
    pub groups: Vec<String>,
}

/// A catalogue compiled for matching; build once per catalogue version, share, call [`find`](Self::find)
/// per comment.
#[derive(Debug)]
pub struct BrandMatcher {
    /// Each brand's key and group key, by index.
    brands: Vec<(String, Option<String>)>,
    automaton: Option<AhoCorasick>,
    /// For each automaton pattern, the brands it stands for and how.
    meanings: Vec<Vec<(usize, Term)>>,
    /// Entity names, handles and hashtags (as [`normalize_entity_name`] writes them) to brands.
    by_name: HashMap<String, Vec<usize>>,
    by_handle: HashMap<String, Vec<usize>>,
    by_hashtag: HashMap<String, Vec<usize>>,
}

impl BrandMatcher {
    /// Compiles `brands` (validated and normalised).
    pub fn new(brands: &[Brand]) -> Result<Self, String> {
        let mut patterns: Vec<String> = Vec::new();
        let mut meanings: Vec<Vec<(usize, Term)>> = Vec::new();
        let mut index_of: HashMap<String, usize> = HashMap::new();
        let mut add = |pattern: String, meaning: (usize, Term)| {
            if pattern.is_empty() {
                return;
            }
            let at = *index_of.entry(pattern.clone()).or_insert_with(|| {
                patterns.push(pattern);
                meanings.push(Vec::new());
                meanings.len() - 1
            });
            if !meanings[at].contains(&meaning) {
                meanings[at].push(meaning);
            }
        };
        let (mut by_name, mut by_handle, mut by_hashtag) = (HashMap::new(), HashMap::new(), HashMap::new());
        let link = |map: &mut HashMap<String, Vec<usize>>, name: String, brand: usize| {
            let entry = map.entry(name).or_default();
            if !entry.contains(&brand) {
                entry.push(brand);
            }
        };
        for (b, brand) in brands.iter().enumerate() {
            for alias in std::iter::once(&brand.name).chain(&brand.aliases) {
                add(fold(alias), (b, Term::Finds));
                link(&mut by_name, normalize_entity_name(alias), b);
            }
            for handle in &brand.handles {
                add(fold(&format!("@{handle}")), (b, Term::Finds));
                link(&mut by_handle, normalize_entity_name(handle), b);
            }
            for hashtag in &brand.hashtags {
                add(fold(&format!("#{hashtag}")), (b, Term::Finds));
                link(&mut by_hashtag, normalize_entity_name(hashtag), b);
            }
            for exclusion in &brand.exclusions {
                add(fold(exclusion), (b, Term::Excludes));
            }
        }
        by_name.remove("");
        let automaton = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
                    .map_err(|e| format!("compiling the brand catalogue: {e}"))?,
            )
        };
        Ok(Self {
            brands: brands.iter().map(|b| (b.key(), b.group_key())).collect(),
            automaton,
            meanings,
            by_name,
            by_handle,
            by_hashtag,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.brands.is_empty()
    }

    /// The brands `text` mentions, by its words and by the `entities` the model found in it.
    pub fn find(&self, text: &str, entities: Option<&[Entity]>) -> BrandHits {
        let Some(automaton) = &self.automaton else { return BrandHits::default() };
        let folded = fold(text);
        let mut found: Vec<(usize, Term, usize, usize)> = Vec::new();
        for m in automaton.find_overlapping_iter(&folded) {
            if on_word_boundaries(&folded, m.start(), m.end()) {
                found.extend(self.meanings[m.pattern().as_usize()].iter().map(|&(b, t)| (b, t, m.start(), m.end())));
            }
        }
        let excluded = |brand: usize, start: usize, end: usize| {
            found.iter().any(|&(b, t, s, e)| b == brand && t == Term::Excludes && s <= start && end <= e)
        };
        let has_exclusion = |brand: usize| found.iter().any(|&(b, t, ..)| b == brand && t == Term::Excludes);
        let mut hits: BTreeSet<usize> =
            found.iter().filter(|&&(b, t, s, e)| t == Term::Finds && !excluded(b, s, e)).map(|&(b, ..)| b).collect();
        for entity in entities.into_iter().flatten() {
            let map = match entity.label {
                EntityLabel::Handle => &self.by_handle,
                EntityLabel::Hashtag => &self.by_hashtag,
                _ => &self.by_name,
            };
            for &brand in map.get(&normalize_entity_name(&entity.text)).into_iter().flatten() {
                if !has_exclusion(brand) {
                    hits.insert(brand);
                }
            }
        }
        let brands: BTreeSet<&String> = hits.iter().map(|&b| &self.brands[b].0).collect();
        let groups: BTreeSet<&String> = hits.iter().filter_map(|&b| self.brands[b].1.as_ref()).collect();
        BrandHits { brands: brands.into_iter().cloned().collect(), groups: groups.into_iter().cloned().collect() }
    }
}

/// Whether `text[start..end]` stands as whole words: where the match begins with a letter, digit, `_`, `@` or
/// `#` (ends with a letter, digit or `_`), the character before (after) it is no letter, digit or `_`.
fn on_word_boundaries(text: &str, start: usize, end: usize) -> bool {
    let matched = &text[start..end];
    let first_is_word = matched.chars().next().is_some_and(|c| is_word_char(c) || c == '@' || c == '#');
    let last_is_word = matched.chars().next_back().is_some_and(is_word_char);
    let before_is_word = text[..start].chars().next_back().is_some_and(is_word_char);
    let after_is_word = text[end..].chars().next().is_some_and(is_word_char);
    !(first_is_word && before_is_word || last_is_word && after_is_word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brand(name: &str, aliases: &[&str], handles: &[&str], hashtags: &[&str], exclusions: &[&str]) -> Brand {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Brand {
            name: name.into(),
            aliases: strings(aliases),
            handles: strings(handles),
            hashtags: strings(hashtags),
            exclusions: strings(exclusions),
            group: None,
        }
    }

    fn catalogue() -> BrandMatcher {
        let mut apple =
            brand("Apple", &["iphone", "mac book"], &["apple"], &["appleevent"], &["apple pie", "big apple"]);
        apple.group = Some("Tech".into());
        let mut united = brand("United Airlines", &["united", "U.S. Airways"], &["united"], &[], &["united states"]);
        united.group = Some("Airlines".into());
        let citroen = brand("Citroën", &[], &[], &[], &[]);
        let delta = brand("Delta", &[], &["DeltaAssist"], &[], &[]);
        BrandMatcher::new(&[apple, united, citroen, delta]).expect("compiles")
    }

    fn found(text: &str) -> Vec<String> {
        catalogue().find(text, None).brands
    }

    #[test]
    fn aliases_match_on_word_boundaries_whatever_the_case_accents_and_spacing() {
        assert_eq!(found("My IPHONE died"), ["apple"]);
        assert_eq!(found("new MAC   book pro"), ["apple"]);
        assert!(found("pineapple and iphones").is_empty(), "inside a word or with a suffix: not found");
        assert_eq!(found("CITROEN and citroën"), ["citroën"]);
        assert_eq!(found("Apple's keynote"), ["apple"]);
    }

    #[test]
    fn handles_and_hashtags_are_whole_accounts_and_tags() {
        assert_eq!(found("thanks @United for nothing"), ["united airlines"]);
        assert!(found("hi @unitedstates").is_empty());
        assert_eq!(found("ask @deltaassist"), ["delta"]);
        assert!(found("mail someone@deltaassist").is_empty(), "an address is not a handle");
        assert_eq!(found("watching #AppleEvent now"), ["apple"]);
        assert!(found("#appleevents2026").is_empty());
    }

    #[test]
    fn exclusions_hide_only_the_occurrences_inside_them() {
        assert!(found("grandma's apple pie").is_empty());
        assert!(found("I love the Big Apple").is_empty());
        assert_eq!(found("apple pie on my apple watch"), ["apple"]);
        assert!(found("flying across the United States").is_empty());
        assert_eq!(found("United States flight on united was late"), ["united airlines"]);
    }

    #[test]
    fn names_the_model_found_link_to_aliases_and_groups_follow_brands() {
        let matcher = catalogue();
        let entity = |label, text: &str| Entity { label, text: text.into(), start: 0, end: 0, score: 1.0 };
        // "US Airways" is not the alias "U.S. Airways" as words, but is as an entity name.
        let hits = matcher.find("US Airways lost my bag", Some(&[entity(EntityLabel::Org, "US Airways")]));
        assert_eq!(hits.brands, ["united airlines"]);
        assert_eq!(hits.groups, ["airlines"]);
        let hits = matcher.find("iphone vs united", None);
        assert_eq!(hits.brands, ["apple", "united airlines"]);
        assert_eq!(hits.groups, ["airlines", "tech"]);
        // A linked name still yields to the brand's exclusions.
        let pie = matcher.find("apple pie", Some(&[entity(EntityLabel::Org, "apple")]));
        assert!(pie.brands.is_empty());
    }

    #[test]
    fn validation_names_the_field_and_normalising_tidies_terms() {
        let bad = |b: Brand| b.validate().expect_err("refused");
        assert!(bad(brand("", &[], &[], &[], &[])).starts_with("name: expected 1-64 characters"));
        assert!(bad(brand("a,b", &[], &[], &[], &[])).starts_with("name:"));
        assert!(bad(brand("ok", &["fine", " "], &[], &[], &[])).starts_with("aliases[1]: expected a word or phrase"));
        assert!(bad(brand("ok", &[], &["bad handle"], &[], &[])).starts_with("handles[0]: expected @name"));
        let tidy = brand(" Delta  Air ", &["delta", "DELTA", " "], &["@delta"], &["#flydelta"], &[]).normalized();
        assert_eq!(tidy.name, "Delta Air");
        assert_eq!(tidy.aliases, ["delta"]);
        assert_eq!(tidy.handles, ["delta"]);
        assert_eq!(tidy.hashtags, ["flydelta"]);
        assert_eq!(tidy.key(), "delta air");
    }
}
