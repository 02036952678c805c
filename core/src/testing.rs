//! Comments for tests and benchmarks (feature `testing`, never in the served binary): one builder instead of
//! a hand-written [`Comment`] and [`Enrichment`] in every suite.
//!
//! ```
//! use murmur_core::testing::Fixture;
//! use murmur_core::{EntityLabel, SentimentLabel};
//!
//! let at = chrono::DateTime::UNIX_EPOCH;
//! let c = Fixture::new("twitter", "t1", "the battery died", at)
//!     .tags(["pixel"])
//!     .mention(EntityLabel::Org, "Google")
//!     .sentiment(SentimentLabel::Negative)
//!     .build();
//! assert_eq!(c.comment.text, "the battery died Google");
//! assert!(c.check().is_ok());
//! ```

use chrono::{DateTime, Utc};

use crate::{Comment, Emotion, EnrichedComment, Enrichment, Entity, EntityLabel, Sentiment, SentimentLabel};

/// An [`EnrichedComment`] under construction: English, no author or URL, model `test`, a plain embedding,
/// no sentiment, emotion or entities until asked for (`entities` is `Some(vec![])`: the NER head ran).
#[derive(Debug, Clone)]
pub struct Fixture {
    comment: Comment,
    enrichment: Enrichment,
}

impl Fixture {
    pub fn new(source: &str, id: impl Into<String>, text: impl Into<String>, created_at: DateTime<Utc>) -> Self {
        Self {
            comment: Comment {
                source: source.into(),
                id: id.into(),
                author: None,
                text: text.into(),
                created_at,
                lang: Some("en".into()),
                url: None,
                tags: Vec::new(),
                metadata: serde_json::Map::new(),
            },
            enrichment: Enrichment {
                model: "test".into(),
                embedding: vec![1.0, 0.0, 0.0, 0.0],
                sentiment: None,
                entities: Some(Vec::new()),
                emotion: None,
                aspects: None,
                language: None,
                skipped: None,
                multilingual: None,
            },
        }
    }

    pub fn tags<T: Into<String>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
        self.comment.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Appends `" name"` to the text and records it as an entity at its true character offsets.
    pub fn mention(mut self, label: EntityLabel, name: &str) -> Self {
        let text = &mut self.comment.text;
        text.push(' ');
        let start = text.chars().count();
        text.push_str(name);
        let entity = Entity { label, text: name.into(), start, end: start + name.chars().count(), score: 0.9 };
        self.enrichment.entities.get_or_insert_with(Vec::new).push(entity);
        self
    }

    /// See [`sentiment`].
    pub fn sentiment(mut self, label: SentimentLabel) -> Self {
        self.enrichment.sentiment = Some(sentiment(label));
        self
    }

    pub fn emotion(mut self, emotion: Option<Emotion>) -> Self {
        self.enrichment.emotion = emotion;
        self
    }

    /// The embedding as given (callers normalise it when the test depends on it).
    pub fn embedding(mut self, embedding: Vec<f32>) -> Self {
        self.enrichment.embedding = embedding;
        self
    }

    pub fn model(mut self, model: &str) -> Self {
        self.enrichment.model = model.into();
        self
    }

    /// As if enriched without a NER head (`entities` absent).
    pub fn without_entities(mut self) -> Self {
        self.enrichment.entities = None;
        self
    }

    pub fn build(self) -> EnrichedComment {
        EnrichedComment::new(self.comment, self.enrichment)
    }
}

/// A sentiment of `label` with probability 0.8, the other two classes 0.1 each.
pub fn sentiment(label: SentimentLabel) -> Sentiment {
    let p = |l: SentimentLabel| if l == label { 0.8 } else { 0.1 };
    Sentiment {
        label,
        negative: p(SentimentLabel::Negative),
        neutral: p(SentimentLabel::Neutral),
        positive: p(SentimentLabel::Positive),
    }
}

/// `count` letters-only words that no other `n` gets (with the same `count`). Appended to test comments that
/// share the rest of their text, they keep them from being each other's near-duplicates
/// ([`crate::duplicates`]: digits are normalised away, so "order 1" and "order 2" are copies); six of them
/// outweigh a shared text of up to about a dozen words.
pub fn unique_words(n: u64, count: usize) -> String {
    let count = count as u64;
    (0..count)
        .map(|k| {
            let mut x = n * count + k;
            let mut word = String::from("zq");
            loop {
                word.push(char::from(b'a' + (x % 26) as u8));
                x /= 26;
                if x == 0 {
                    break word;
                }
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
