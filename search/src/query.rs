//! What a search asks for and what it answers.

use chrono::{DateTime, Utc};
use murmur_core::{normalize_entity_name, EmotionLabel, EntityLabel, SentimentLabel};
use serde::Serialize;
use tantivy::schema::Facet;

use crate::vectors::AnnMethod;

/// How comments are ranked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// BM25 over the words of the text (tantivy query syntax).
    #[default]
    Bm25,
    /// Nearest neighbours of the query's embedding: finds paraphrases that share no word with the query.
    Semantic,
    /// Both, fused by reciprocal rank.
    Hybrid,
}

impl SearchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bm25 => "bm25",
            Self::Semantic => "semantic",
            Self::Hybrid => "hybrid",
        }
    }

    /// Whether the query's embedding is needed.
    pub fn needs_embedding(self) -> bool {
        self != Self::Bm25
    }
}

/// How deep semantic and hybrid results go: the nearest neighbours are listed this deep at most, and hybrid
/// search fuses the top this many of each list (its rank window, as Elasticsearch's `rank_window_size`), so
/// every hybrid page is a page of that one ranking.
pub const RANK_WINDOW: usize = 1_000;

/// Reciprocal rank fusion: a comment at rank `r` (from 1) in a list adds `weight / (k + r)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fusion {
    pub bm25_weight: f32,
    pub semantic_weight: f32,
    pub k: f32,
}

impl Fusion {
    /// What a comment at `rank` (from 1) in a list of `weight` adds to its fused score.
    pub fn contribution(&self, rank: usize, weight: f32) -> f32 {
        weight / (self.k + rank as f32)
    }
}

impl Default for Fusion {
    fn default() -> Self {
        Self { bm25_weight: 1.0, semantic_weight: 1.0, k: 60.0 }
    }
}

/// Which comments may match, whatever the ranking.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    pub source: Option<String>,
    pub sentiment: Option<SentimentLabel>,
    pub entity: Option<EntityFilter>,
    pub tag: Option<String>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    /// Words the comments must match, in tantivy's query syntax (a text slice of the trends).
    pub text: Option<String>,
    /// Comments the model found this emotion in.
    pub emotion: Option<EmotionLabel>,
    /// Comments in this language ([`murmur_core::language_key`]: `en`, `fr`, `und`).
    pub language: Option<String>,
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Whether `q` is valid tantivy query syntax (what BM25 and word slices accept), without an index at hand: a
/// query stored for later (a report schedule) is refused when written, not when it runs.
pub fn check_query_syntax(q: &str) -> Result<(), crate::SearchError> {
    tantivy::query_grammar::parse_query(q)
        .map(|_| ())
        .map_err(|_| crate::SearchError::InvalidQuery(format!("{q:?} is not valid query syntax")))
}

/// A search over the comments.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Words in tantivy's query syntax (`"phrases"`, `+must -not`, `a OR b`) for BM25; plain text for the
    /// embedding.
    pub q: String,
    pub mode: SearchMode,
    /// The embedding of `q` by the English encoder; `semantic` and `hybrid` need it or `multilingual_embedding`.
    pub embedding: Option<Vec<f32>>,
    /// The embedding of `q` by the multilingual encoder, which searches the comments it embedded (in languages
    /// the heads never learned) beside the English ones.
    pub multilingual_embedding: Option<Vec<f32>>,
    pub filters: Filters,
    pub limit: usize,
    pub offset: usize,
    /// Also count the matching comments per sentiment and per entity.
    pub facets: bool,
    /// Say why each hit ranks where it does.
    pub explain: bool,
    pub fusion: Fusion,
}

/// Comments that mention an entity: by type, by name (a name written in the text, whatever its type), or
/// both (`handle:united` for the account). Names compare after [`normalize_entity_name`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityFilter {
    pub label: Option<EntityLabel>,
    pub name: Option<String>,
}

impl EntityFilter {
    /// `ORG:Google`, `ORG` (a type alone) or `Google` (a name of any type).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let (label, name) = match s.split_once(':') {
            Some((label, name)) => match EntityLabel::parse(label) {
                Some(label) => (Some(label), Some(name)),
                None => (None, Some(s)),
            },
            None => match EntityLabel::parse(s) {
                Some(label) => (Some(label), None),
                None => (None, Some(s)),
            },
        };
        let name = name.map(normalize_entity_name).filter(|n| !n.is_empty());
        (label.is_some() || name.is_some()).then_some(Self { label, name })
    }

    pub(crate) fn facets(&self) -> Vec<Facet> {
        let labels = match (self.label, &self.name) {
            (Some(label), _) => vec![label],
            (None, Some(_)) => EntityLabel::NAMES.to_vec(),
            (None, None) => EntityLabel::ALL.to_vec(),
        };
        labels.into_iter().map(|label| entity_facet(label, self.name.as_deref())).collect()
    }
}

pub(crate) fn entity_facet(label: EntityLabel, name: Option<&str>) -> Facet {
    match name {
        Some(name) => Facet::from_path([label.as_str(), name]),
        None => Facet::from_path([label.as_str()]),
    }
}

/// An entity a hit mentions, by type and normalised name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HitEntity {
    pub label: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    /// BM25 score, cosine similarity (for a comment in the multilingual space, put on the English space's scale) or
    /// fused score, by mode.
    pub score: f32,
    pub source: String,
    pub id: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
    /// The producer's language tag, as sent.
    pub lang: Option<String>,
    /// The comment's language as murmur counts and filters it: the detected one, else the producer's, else
    /// `und`.
    pub language: String,
    pub tags: Vec<String>,
    pub sentiment: Option<String>,
    /// The emotions found, most probable first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub emotions: Vec<String>,
    /// Distinct entities, in order of first mention.
    pub entities: Vec<HitEntity>,
    /// The text's best fragment (at most [`SNIPPET_CHARS`] characters), HTML-escaped, the query's words in
    /// `<b>…</b>`; empty when no word of the query occurs in the text.
    pub snippet: String,
    /// How the score was reached (with `explain=true`): tantivy's explanation, or the fused ranks.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub explain: Option<serde_json::Value>,
    /// With copies collapsed (`collapse=true`): how many comments the hit's cluster of near-duplicates holds,
    /// itself included. The index does not know clusters; the API fills this from Postgres.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_size: Option<i64>,
}

/// Longest snippet, in characters.
pub const SNIPPET_CHARS: usize = 200;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchResults {
    pub mode: SearchMode,
    /// Comments the ranking covers: those matching the words (BM25) or passing the filters (semantic,
    /// hybrid: every such comment has a similarity).
    pub total: usize,
    pub hits: Vec<SearchHit>,
    /// How the vector side was answered (semantic and hybrid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ann: Option<AnnMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<Facets>,
}

/// Counts over every comment that matches (not only the page of hits).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Facets {
    /// Comments per sentiment class (classes with none included).
    pub sentiment: std::collections::BTreeMap<&'static str, usize>,
    /// Comments per emotion found (emotions with none included; a comment may count under several).
    pub emotion: std::collections::BTreeMap<&'static str, usize>,
    /// The most mentioned entities, most first (ties by type, then name): each name written in the text once
    /// whatever its type (shown with the type most of its comments give it), each mention kind apart.
    pub entities: Vec<EntityFacet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EntityFacet {
    pub label: String,
    pub name: String,
    pub comments: u64,
    /// A name's comments per type, most first (absent for mentions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<(String, u64)>)]
    pub types: Vec<(String, u64)>,
}
