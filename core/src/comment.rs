use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the `comments.enriched` wire format workers write. 2: the embedding travels packed (see
/// [`crate::packed`]); sinks also read version 1, where it was a JSON array of numbers.
pub const ENRICHED_SCHEMA_VERSION: u32 = 2;

/// The oldest `comments.enriched` version sinks still read.
pub const OLDEST_READABLE_ENRICHED_SCHEMA: u32 = 1;

/// A comment after validation: every field is known good, and `author` holds a pseudonym, never the
/// producer's author id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub source: String,
    pub id: String,
    /// Keyed hash of the producer's author id (see `murmur_ingest::Pseudonymizer`); `None` when the
    /// producer sent no author.
    pub author: Option<String>,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub lang: Option<String>,
    pub url: Option<String>,
    pub tags: Vec<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Comment {
    pub fn key(&self) -> CommentKey<'_> {
        CommentKey { source: &self.source, id: &self.id }
    }
}

/// The identity of a comment: the producer's id is unique per source. Every store is keyed by it, which
/// makes redelivery (at-least-once) idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommentKey<'a> {
    pub source: &'a str,
    pub id: &'a str,
}

impl CommentKey<'_> {
    /// One string for stores that need a single-field key. Sources are slugs (no `/`), so the first `/`
    /// separates source from id unambiguously.
    pub fn joined(&self) -> String {
        format!("{}/{}", self.source, self.id)
    }

    pub fn to_owned(&self) -> CommentId {
        CommentId { source: self.source.to_owned(), id: self.id.to_owned() }
    }
}

/// A comment's identity, owned and checked: what a deletion names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommentId {
    pub source: String,
    pub id: String,
}

impl CommentId {
    /// Checked by the rules a comment's `source` and `id` follow on entry.
    pub fn new(source: &str, id: &str) -> Result<Self, String> {
        check_source(source)?;
        check_comment_id(id)?;
        Ok(Self { source: source.to_owned(), id: id.to_owned() })
    }

    /// From a message key, `source/id` (what [`CommentKey::joined`] writes and a tombstone carries).
    pub fn parse_key(key: &[u8]) -> Result<Self, String> {
        let key = std::str::from_utf8(key).map_err(|_| "key: expected UTF-8 text `source/id`".to_owned())?;
        let (source, id) =
            key.split_once('/').ok_or_else(|| format!("key {key:?}: expected `source/id`, found no '/'"))?;
        Self::new(source, id).map_err(|why| format!("key {key:?}: {why}"))
    }

    pub fn key(&self) -> CommentKey<'_> {
        CommentKey { source: &self.source, id: &self.id }
    }
}

/// What the models add to a comment, all from one encoder pass. A task whose head is not loaded is absent,
/// never guessed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrichment {
    /// Identifier of the encoder that produced the embedding, e.g. `all-MiniLM-L6-v2`.
    pub model: String,
    /// L2-normalised sentence embedding.
    #[serde(with = "crate::packed")]
    pub embedding: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<Sentiment>,
    /// Named entities and mentions in text order; `Some(vec![])` when the NER head ran and found none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<Entity>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotion: Option<Emotion>,
    /// Aspect terms and the sentiment toward each, in text order; `Some(vec![])` when the aspect head ran and
    /// found none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspects: Option<Vec<crate::Aspect>>,
    /// The language detected in the text; absent when the detector is sure of none (no letters, too short).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<DetectedLanguage>,
    /// Why the heads did not read the text, when they did not: their fields are then absent for that reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Skipped>,
    /// The multilingual encoder's embedding, for a text in a language the heads never learned, where the worker
    /// runs one: semantic search reads it instead of `embedding`, so an English query finds such comments too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multilingual: Option<MultilingualEmbedding>,
}

/// A sentence embedding from the multilingual encoder (one vector space for every language).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultilingualEmbedding {
    /// Identifier of the encoder, e.g. `multilingual-e5-small-q4`.
    pub model: String,
    /// L2-normalised embedding of the text.
    #[serde(with = "crate::packed")]
    pub vector: Vec<f32>,
}

impl Enrichment {
    /// An embedding with every head's field absent: what a model without heads returns, and what the heads
    /// fill in.
    pub fn embedding_only(model: impl Into<String>, embedding: Vec<f32>) -> Self {
        Self {
            model: model.into(),
            embedding,
            sentiment: None,
            entities: None,
            emotion: None,
            aspects: None,
            language: None,
            skipped: None,
            multilingual: None,
        }
    }
}

/// The language a comment's text is written in, as murmur detects it (the producer's `lang` is kept apart,
/// as sent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DetectedLanguage {
    /// ISO 639-1 code: `en`, `fr`, `zh`, …
    pub code: String,
    /// The detector's confidence, in (0, 1], relative to the other languages it knows.
    pub confidence: f32,
}

/// What a comment's language is taken to be where murmur counts and filters by language (the `lang:` trend
/// dimension, the `lang=` filter of search and trends): the detected language (`(code, confidence)`) when the
/// detector's confidence is at least [`COUNTED_FROM_CONFIDENCE`]; else the primary subtag of the producer's
/// `lang` (`pt-BR` → `pt`); else [`UNDETERMINED_LANGUAGE`].
pub fn language_key(detected: Option<(&str, f32)>, given: Option<&str>) -> String {
    let detected = detected.filter(|(_, confidence)| *confidence >= COUNTED_FROM_CONFIDENCE).map(|(code, _)| code);
    let given = given
        .and_then(|tag| tag.split(['-', '_']).next())
        .map(str::to_ascii_lowercase)
        .filter(|code| check_language_key(code).is_ok() && code != UNDETERMINED_LANGUAGE);
    detected.map(str::to_owned).or(given).unwrap_or_else(|| UNDETERMINED_LANGUAGE.to_owned())
}

/// The detector's confidence from which a comment is counted under the language it detected: below it, 1.9%
/// of English tweets would be counted under another language; from it, 0.15%, while 98.9% of lingua's test
/// sentences keep their (right) language (`murmur-bench languages`, docs/languages.md).
pub const COUNTED_FROM_CONFIDENCE: f32 = 0.5;

/// The language key of a comment whose language neither the detector nor the producer told (ISO 639-2's
/// "undetermined").
pub const UNDETERMINED_LANGUAGE: &str = "und";

/// Whether `code` is a language key as [`language_key`] gives them (what `lang=` filters accept): 2 or 3
/// lower-case ASCII letters.
pub fn check_language_key(code: &str) -> Result<(), String> {
    if (2..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err(format!("expected a language code of 2 or 3 lower-case letters (en, fr, und), got {code:?}"))
    }
}

/// Why the heads did not read a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Skipped {
    /// Written in a language the heads never learned: no sentiment, emotion, entities or aspects rather than a
    /// guess. The comment is still embedded, stored and searchable.
    Language,
}

impl Skipped {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Language => "language",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        (s == "language").then_some(Self::Language)
    }
}

/// A sentiment prediction: the most probable class and the probability of each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sentiment {
    pub label: SentimentLabel,
    pub negative: f32,
    pub neutral: f32,
    pub positive: f32,
}

impl Sentiment {
    /// The probability of `label`.
    pub fn probability(&self, label: SentimentLabel) -> f32 {
        match label {
            SentimentLabel::Negative => self.negative,
            SentimentLabel::Neutral => self.neutral,
            SentimentLabel::Positive => self.positive,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    Negative,
    Neutral,
    Positive,
}

impl SentimentLabel {
    pub const ALL: [SentimentLabel; 3] = [Self::Negative, Self::Neutral, Self::Positive];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Negative => "negative",
            Self::Neutral => "neutral",
            Self::Positive => "positive",
        }
    }
}

/// An emotion prediction (Ekman's six and neutral, several may hold at once): the emotions that reached
/// their thresholds, most probable first (`[neutral]` when none did), and each one's probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Emotion {
    pub labels: Vec<EmotionLabel>,
    pub anger: f32,
    pub disgust: f32,
    pub fear: f32,
    pub joy: f32,
    pub sadness: f32,
    pub surprise: f32,
    pub neutral: f32,
}

impl Emotion {
    /// From probabilities in the order of [`EmotionLabel::ALL`].
    pub fn new(labels: Vec<EmotionLabel>, p: [f32; 7]) -> Self {
        let [anger, disgust, fear, joy, sadness, surprise, neutral] = p;
        Self { labels, anger, disgust, fear, joy, sadness, surprise, neutral }
    }

    /// The most probable of the predicted emotions.
    pub fn primary(&self) -> EmotionLabel {
        self.labels.first().copied().unwrap_or(EmotionLabel::Neutral)
    }

    /// The probability of `label`.
    pub fn probability(&self, label: EmotionLabel) -> f32 {
        [self.anger, self.disgust, self.fear, self.joy, self.sadness, self.surprise, self.neutral][label as usize]
    }
}

/// Declared in the order of [`EmotionLabel::ALL`] and of the emotion head's outputs, so `label as usize` is
/// its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EmotionLabel {
    Anger,
    Disgust,
    Fear,
    Joy,
    Sadness,
    Surprise,
    Neutral,
}

impl EmotionLabel {
    pub const ALL: [EmotionLabel; 7] =
        [Self::Anger, Self::Disgust, Self::Fear, Self::Joy, Self::Sadness, Self::Surprise, Self::Neutral];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anger => "anger",
            Self::Disgust => "disgust",
            Self::Fear => "fear",
            Self::Joy => "joy",
            Self::Sadness => "sadness",
            Self::Surprise => "surprise",
            Self::Neutral => "neutral",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str().eq_ignore_ascii_case(s))
    }
}

/// A named entity found in a comment's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entity {
    pub label: EntityLabel,
    /// The entity as written, `text[start..end]` counted in characters.
    pub text: String,
    /// Offsets into the comment's text in characters (Unicode scalar values, what Python's `str` indexes),
    /// end exclusive.
    pub start: usize,
    pub end: usize,
    /// Mean probability the model gave the entity's tags, in (0, 1].
    pub score: f32,
}

impl Entity {
    /// The entity's name for counting and filtering (see [`normalize_entity_name`]).
    pub fn name(&self) -> String {
        normalize_entity_name(&self.text)
    }
}

/// What a comment's entities count under, each once, in the order first mentioned: a name written in the text
/// under the type of its first mention (a comment reads a name one way, so counting a name over its types
/// counts the comment once), each mention (`@handle`, `#hashtag`) under its own label; empty names left out.
/// The rule the rollups, the search index's entity facets and every count by entity share.
pub fn counted_entities(entities: &[Entity]) -> Vec<(EntityLabel, String)> {
    // Names of every type are one group; each mention label is a group of its own.
    let group = |label: EntityLabel| label.is_mention().then_some(label);
    let mut out: Vec<(EntityLabel, String)> = Vec::new();
    for entity in entities {
        let name = entity.name();
        if !name.is_empty() && !out.iter().any(|(l, n)| *n == name && group(*l) == group(entity.label)) {
            out.push((entity.label, name));
        }
    }
    out
}

/// One name per entity, however it is written: lower case, accents folded, a leading `@`/`#` marker and
/// punctuation dropped, words separated by single spaces. "Google", "google" and "GOOGLE" are one entity, so
/// are "US Airways", "U.S. Airways" and "us  airways", and "Montréal" and "MONTREAL"; "Google" and
/// "Alphabet" stay two. Also what a filter on an entity name is compared with.
pub fn normalize_entity_name(text: &str) -> String {
    let text = text.trim_start().trim_start_matches(['@', '#', '＠', '＃']);
    let kept: String = text
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .flat_map(char::to_lowercase)
        .map(fold_accent)
        .collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The base letter of a Latin letter with a diacritic (é → e, ß stays ß); other characters unchanged.
pub(crate) fn fold_accent(c: char) -> char {
    const FROM: &str = "àáâãäåāăąçćĉċčďđèéêëēĕėęěĝğġģĥħìíîïĩīĭįıĵķĺļľŀłñńņňòóôõöøōŏőŕŗřśŝşšţťŧùúûüũūŭůűųŵýÿŷźżž";
    const TO: &str = "aaaaaaaaacccccddeeeeeeeeegggghhiiiiiiiiijklllllnnnnooooooooorrrssssttttuuuuuuuuuuwyyyzzz";
    FROM.chars().position(|f| f == c).and_then(|i| TO.chars().nth(i)).unwrap_or(c)
}

/// What an entity is: a name written in the text (CoNLL-2003's four types, found by the NER head), or a
/// mention of an account or a tag (`@handle`, `#hashtag`, read by rule, never guessed as a person or place).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EntityLabel {
    /// People.
    #[serde(rename = "PER")]
    Per,
    /// Companies, brands, institutions.
    #[serde(rename = "ORG")]
    Org,
    /// Places.
    #[serde(rename = "LOC")]
    Loc,
    /// Everything else with a name: products, events, nationalities, works.
    #[serde(rename = "MISC")]
    Misc,
    /// An account mentioned as `@name`.
    #[serde(rename = "handle")]
    Handle,
    /// A tag written as `#name`.
    #[serde(rename = "hashtag")]
    Hashtag,
}

impl EntityLabel {
    pub const ALL: [EntityLabel; 6] = [Self::Per, Self::Org, Self::Loc, Self::Misc, Self::Handle, Self::Hashtag];

    /// The types the NER head gives to names written in the text.
    pub const NAMES: [EntityLabel; 4] = [Self::Per, Self::Org, Self::Loc, Self::Misc];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Per => "PER",
            Self::Org => "ORG",
            Self::Loc => "LOC",
            Self::Misc => "MISC",
            Self::Handle => "handle",
            Self::Hashtag => "hashtag",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether this is a mention (`@handle`, `#hashtag`) rather than a name written in the text.
    pub fn is_mention(self) -> bool {
        matches!(self, Self::Handle | Self::Hashtag)
    }
}

/// The message on `comments.enriched`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrichedComment {
    pub schema: u32,
    pub comment: Comment,
    pub enrichment: Enrichment,
}

impl EnrichedComment {
    pub fn new(comment: Comment, enrichment: Enrichment) -> Self {
        Self { schema: ENRICHED_SCHEMA_VERSION, comment, enrichment }
    }

    /// The comment's [`language_key`].
    pub fn language_key(&self) -> String {
        let detected = self.enrichment.language.as_ref().map(|l| (l.code.as_str(), l.confidence));
        language_key(detected, self.comment.lang.as_deref())
    }

    /// What the stores rely on and a worker always produces: every entity span lies within the text and
    /// holds the entity's text. A message that breaks it is refused whole (the reason is returned) rather
    /// than stored half right or retried forever.
    pub fn check(&self) -> Result<(), String> {
        let text = &self.comment.text;
        let mut boundaries: Vec<usize> = text.char_indices().map(|(byte, _)| byte).collect();
        boundaries.push(text.len());
        let spans =
            self.enrichment.entities.iter().flatten().enumerate().map(|(i, e)| ("entity", i, &e.text, e.start, e.end));
        let aspects =
            self.enrichment.aspects.iter().flatten().enumerate().map(|(i, a)| ("aspect", i, &a.text, a.start, a.end));
        for (what, i, written, start, end) in spans.chain(aspects) {
            let span = match (boundaries.get(start), boundaries.get(end)) {
                (Some(&from), Some(&to)) if start < end => &text[from..to],
                _ => return Err(format!("{what} {i} span {start}..{end} is not within the text")),
            };
            if span != written {
                return Err(format!("{what} {i} text {written:?} is not the text at {start}..{end}"));
            }
        }
        Ok(())
    }
}

/// The rule for a source name (`twitter`, `app-store`): 1-64 characters of a-z, 0-9, '.', '_' or '-'. One
/// rule for what the worker accepts and what queries may ask for; the error names the field.
pub fn check_source(source: &str) -> Result<(), String> {
    let valid = !source.is_empty()
        && source.len() <= 64
        && source.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!("source {source:?} must be 1-64 characters of a-z, 0-9, '.', '_' or '-'"))
    }
}

/// The rule for a comment's `id` (the producer's, unique per source): 1-256 bytes without control characters.
pub fn check_comment_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
        Err("id must be 1-256 bytes without control characters".to_owned())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_a_comment_by_the_entry_rules() {
        let id = CommentId::parse_key(b"app-store/7/b").expect("the first '/' splits");
        assert_eq!((id.source.as_str(), id.id.as_str()), ("app-store", "7/b"));
        assert_eq!(id.key().joined(), "app-store/7/b");
        let refused = |key: &[u8]| CommentId::parse_key(key).expect_err("refused");
        assert!(refused(b"no-slash").contains("found no '/'"));
        assert!(refused(b"Twitter/1").contains("source"));
        assert!(refused(b"twitter/").contains("id must be"));
        assert!(refused(&[0xff, b'/', b'1']).contains("UTF-8"));
    }

    #[test]
    fn a_comment_language_is_the_detected_one_else_the_producers_primary_subtag() {
        assert_eq!(language_key(Some(("fr", 0.9)), Some("en")), "fr");
        assert_eq!(language_key(Some(("tr", 0.4)), Some("en")), "en", "an unsure detection gives way");
        assert_eq!(language_key(Some(("tr", 0.4)), None), UNDETERMINED_LANGUAGE);
        assert_eq!(language_key(None, Some("pt-BR")), "pt");
        assert_eq!(language_key(None, Some("ZH_Hant")), "zh");
        assert_eq!(language_key(None, Some("english")), UNDETERMINED_LANGUAGE, "not a language code");
        assert_eq!(language_key(None, Some("und")), UNDETERMINED_LANGUAGE);
        assert_eq!(language_key(None, None), UNDETERMINED_LANGUAGE);
        assert!(["und", "en"].into_iter().all(|c| check_language_key(c).is_ok()));
        assert!(["EN", "e", "engl", "e1"].into_iter().all(|c| check_language_key(c).is_err()));
    }

    #[test]
    fn a_name_counts_once_under_its_first_type_and_mentions_apart() {
        let entity = |label, text: &str| Entity { label, text: text.into(), start: 0, end: 0, score: 0.9 };
        let entities = [
            entity(EntityLabel::Misc, "APPLE"),
            entity(EntityLabel::Org, "Apple"),
            entity(EntityLabel::Handle, "@apple"),
            entity(EntityLabel::Hashtag, "#Apple"),
            entity(EntityLabel::Handle, "@Apple"),
            entity(EntityLabel::Per, "Tim  Cook"),
            entity(EntityLabel::Loc, "..."),
        ];
        let counted = counted_entities(&entities);
        let want = [
            (EntityLabel::Misc, "apple"),
            (EntityLabel::Handle, "apple"),
            (EntityLabel::Hashtag, "apple"),
            (EntityLabel::Per, "tim cook"),
        ];
        assert_eq!(counted, want.map(|(l, n)| (l, n.to_owned())));
    }

    #[test]
    fn emotion_labels_index_their_list() {
        for (i, label) in EmotionLabel::ALL.iter().enumerate() {
            assert_eq!(*label as usize, i, "{label:?}");
        }
    }

    fn enriched(text: &str, entities: Vec<(usize, usize, &str)>) -> EnrichedComment {
        let comment = Comment {
            source: "s".into(),
            id: "1".into(),
            author: None,
            text: text.into(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            lang: None,
            url: None,
            tags: Vec::new(),
            metadata: serde_json::Map::new(),
        };
        let entities = entities
            .into_iter()
            .map(|(start, end, text)| Entity { label: EntityLabel::Org, text: text.into(), start, end, score: 0.9 })
            .collect();
        EnrichedComment::new(
            comment,
            Enrichment {
                model: "m".into(),
                embedding: vec![],
                sentiment: None,
                entities: Some(entities),
                emotion: None,
                aspects: None,
                language: None,
                skipped: None,
                multilingual: None,
            },
        )
    }

    #[test]
    fn one_name_however_it_is_written() {
        let same = ["US Airways", "U.S. Airways", "us  airways", "#US Airways", " US-Airways"];
        let names: Vec<String> = same.iter().map(|t| normalize_entity_name(t)).collect();
        assert!(names.iter().filter(|n| *n == "us airways").count() == 4, "{names:?}");
        assert_eq!(normalize_entity_name("@usairways"), "usairways");
        assert_eq!(normalize_entity_name("McDonald's"), "mcdonalds");
        assert_eq!(normalize_entity_name("Montréal"), normalize_entity_name("MONTREAL"));
        assert_ne!(normalize_entity_name("Google"), normalize_entity_name("Alphabet"));
        assert_eq!(normalize_entity_name("東京"), "東京");
        assert_eq!(EntityLabel::parse("HANDLE"), Some(EntityLabel::Handle));
        assert_eq!(serde_json::to_string(&EntityLabel::Hashtag).expect("json"), "\"hashtag\"");
        assert_eq!(serde_json::to_string(&EntityLabel::Org).expect("json"), "\"ORG\"");
    }

    #[test]
    fn entity_spans_are_checked_in_characters() {
        assert_eq!(enriched("😍 Café Nestlé", vec![(2, 6, "Café"), (7, 13, "Nestlé")]).check(), Ok(()));
        assert!(enriched("😍 Café", vec![(2, 7, "Café")]).check().is_err(), "past the end");
        assert!(enriched("😍 Café", vec![(3, 3, "")]).check().is_err(), "empty");
        assert!(enriched("😍 Café", vec![(1, 5, "Café")]).check().is_err(), "text differs");
        assert_eq!(enriched("x", vec![]).check(), Ok(()));
    }
}
