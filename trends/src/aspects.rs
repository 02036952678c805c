//! Aspects as the API shows them: what the comments of a slice judge ("battery", "customer service"), how
//! often, liked or disliked, with the clearest examples of each. Names are normalised when the model finds
//! them (`murmur_core::aspect_name`: case, articles, plurals); near-synonyms ("customer service", "customer
//! support") are merged here by their embeddings, when the server has the encoder.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use murmur_core::ModelQueue;
use murmur_store::{AspectCount, AspectScope};
use serde::Serialize;

use crate::service::{Trends, Window};
use crate::{Slice, TrendsError};

/// Cosine similarity at or above which two aspect names are one aspect (the pairs it was chosen on are in
/// docs/aspects.md).
pub const SYNONYM_SIMILARITY: f32 = 0.8;

/// Names read before merging, per aspect asked for: merging can fold several into one.
const CANDIDATES_PER_ASPECT: usize = 3;

#[derive(Debug, Clone)]
pub struct AspectQuery {
    pub slice: Slice,
    pub limit: usize,
    /// Examples per aspect and polarity (positive, negative).
    pub examples: usize,
}

/// An aspect of a slice's comments.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AspectSummary {
    /// The aspect's name (its most mentioned spelling).
    pub name: String,
    /// Other names merged into it as near-synonyms, most mentioned first.
    pub also: Vec<String>,
    /// Comments mentioning it, and how many of them judge it positively, neutrally or negatively.
    pub mentions: i64,
    pub positive: i64,
    pub neutral: i64,
    pub negative: i64,
    /// (positive − negative) / mentions, in [-1, 1].
    pub net_sentiment: f64,
    /// The comments that like it most clearly, then those that dislike it most clearly.
    pub examples: Vec<AspectExample>,
}

/// A comment judging an aspect.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AspectExample {
    pub source: String,
    pub id: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
    /// The term as written, at character offsets `start..end` of the text.
    pub term: String,
    pub start: i32,
    pub end: i32,
    /// `positive` or `negative`.
    pub sentiment: String,
    /// The probability of that polarity.
    pub probability: f32,
}

/// The aspects of a window.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AspectList {
    pub slice: Slice,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Whether near-synonyms were merged (the server has the encoder).
    pub merged: bool,
    pub aspects: Vec<AspectSummary>,
}

/// Groups `counts` (most mentioned first) into aspects: a name joins the first earlier group whose first
/// name's vector is at least `threshold` similar to its own (vectors L2-normalised, one per name).
pub fn merge_near_synonyms(counts: &[AspectCount], vectors: &[Vec<f32>], threshold: f32) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, vector) in vectors.iter().enumerate().take(counts.len()) {
        let similar = |g: &Vec<usize>| vectors[g[0]].iter().zip(vector).map(|(a, b)| a * b).sum::<f32>() >= threshold;
        match groups.iter_mut().find(|g| similar(g)) {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

impl Trends {
    /// The aspects most mentioned by the comments of `query.slice` in `window`, near-synonyms merged by the
    /// encoder behind `model` when there is one.
    pub async fn aspects(
        &self,
        query: &AspectQuery,
        window: Window,
        model: Option<&ModelQueue>,
    ) -> Result<AspectList, TrendsError> {
        query.slice.validate()?;
        let dim = query.slice.dim().ok_or_else(|| {
            TrendsError::Invalid(
                "slice: aspects are read for a brand, brand group, theme, tag, entity, emotion, source or all \
                 comments, not for words or combinations"
                    .into(),
            )
        })?;
        let scope = AspectScope {
            dim: &dim,
            source: query.slice.source.as_deref(),
            duplicates: query.slice.duplicates,
            window: window.pair(),
        };
        let candidates = (query.limit * CANDIDATES_PER_ASPECT) as i64;
        let counts = self.postgres().aspect_counts(&scope, candidates).await?;
        let vectors = match model {
            // Merging is best effort: with the model's queue full the names stand alone (`merged: false`).
            Some(model) if counts.len() > 1 => {
                model.embed_all(counts.iter().map(|c| c.name.clone()).collect()).await.ok()
            }
            _ => None,
        };
        let groups = match &vectors {
            Some(vectors) => merge_near_synonyms(&counts, vectors, SYNONYM_SIMILARITY),
            None => (0..counts.len()).map(|i| vec![i]).collect(),
        };
        let mut aspects: Vec<AspectSummary> = groups
            .iter()
            .map(|group| {
                let sum = |f: fn(&AspectCount) -> i64| group.iter().map(|&i| f(&counts[i])).sum::<i64>();
                let (mentions, positive, negative) = (sum(|c| c.mentions), sum(|c| c.positive), sum(|c| c.negative));
                AspectSummary {
                    name: counts[group[0]].name.clone(),
                    also: group[1..].iter().map(|&i| counts[i].name.clone()).collect(),
                    mentions,
                    positive,
                    neutral: sum(|c| c.neutral),
                    negative,
                    net_sentiment: (positive - negative) as f64 / mentions.max(1) as f64,
                    examples: Vec::new(),
                }
            })
            .collect();
        aspects.sort_by(|a, b| b.mentions.cmp(&a.mentions).then_with(|| a.name.cmp(&b.name)));
        aspects.truncate(query.limit);
        if query.examples > 0 && !aspects.is_empty() {
            let owner: HashMap<&str, usize> = aspects
                .iter()
                .enumerate()
                .flat_map(|(k, a)| {
                    std::iter::once(a.name.as_str()).chain(a.also.iter().map(String::as_str)).map(move |n| (n, k))
                })
                .collect();
            let names: Vec<String> = owner.keys().map(|n| (*n).to_owned()).collect();
            let mentions = self.postgres().aspect_mentions(&scope, &names, query.examples as i64).await?;
            let mut found: Vec<Vec<AspectExample>> = vec![Vec::new(); aspects.len()];
            for m in mentions {
                let Some(&k) = owner.get(m.name.as_str()) else { continue };
                if found[k].iter().any(|e| e.source == m.source && e.id == m.id && e.sentiment == m.label) {
                    continue;
                }
                found[k].push(AspectExample {
                    source: m.source,
                    id: m.id,
                    text: m.text,
                    created_at: m.created_at,
                    term: m.term,
                    start: m.start,
                    end: m.end,
                    sentiment: m.label,
                    probability: m.probability,
                });
            }
            for (aspect, mut examples) in aspects.iter_mut().zip(found) {
                examples.sort_by(|a, b| {
                    let side = |e: &AspectExample| u8::from(e.sentiment != "positive");
                    side(a).cmp(&side(b)).then_with(|| b.probability.total_cmp(&a.probability))
                });
                let mut kept: Vec<AspectExample> = Vec::new();
                for e in examples {
                    if kept.iter().filter(|k| k.sentiment == e.sentiment).count() < query.examples {
                        kept.push(e);
                    }
                }
                aspect.examples = kept;
            }
        }
        let (from, to) = window.pair();
        Ok(AspectList { slice: query.slice.clone(), from, to, merged: vectors.is_some(), aspects })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(name: &str, mentions: i64) -> AspectCount {
        AspectCount { name: name.into(), mentions, positive: 0, neutral: mentions, negative: 0 }
    }

    #[test]
    fn near_synonyms_join_the_first_similar_group() {
        let counts = [count("service", 9), count("food", 5), count("customer service", 3), count("price", 2)];
        let v = |x: f32, y: f32| {
            let n = (x * x + y * y).sqrt();
            vec![x / n, y / n]
        };
        let vectors = [v(1.0, 0.1), v(0.0, 1.0), v(1.0, 0.3), v(0.7, 0.7)];
        assert_eq!(merge_near_synonyms(&counts, &vectors, 0.9), vec![vec![0, 2], vec![1], vec![3]]);
    }
}
