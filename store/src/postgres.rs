use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use murmur_core::{
    Aspect, BoxError, Comment, CommentId, CommentStore, DetectedLanguage, Emotion, EnrichedComment, Enrichment, Entity,
    Expired, Expiry, MultilingualEmbedding, Sentiment, Skipped,
};
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::types::Json;
use sqlx::PgPool;

use crate::brands::MatcherCache;
use crate::trends::{Dim, Parts};
use crate::StoreError;

#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
    /// The brand matcher of the catalogue version last written with.
    pub(crate) matchers: Arc<MatcherCache>,
}

/// A comment as stored, with what the models added.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StoredComment {
    pub source: String,
    pub id: String,
    pub author: Option<String>,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub lang: Option<String>,
    pub url: Option<String>,
    pub tags: Vec<String>,
    /// The keys of the catalogue's brands the comment mentions (as of the last match), sorted.
    pub brands: Vec<String>,
    /// What the producer sent beside the fields above.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub ingested_at: DateTime<Utc>,
    #[sqlx(flatten)]
    pub enrichment: StoredEnrichment,
}

impl StoredComment {
    /// Back to the wire form the sink stored (what a rebuilt index is fed).
    pub fn into_enriched(self) -> Result<EnrichedComment, StoreError> {
        let metadata = match self.metadata {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let comment = Comment {
            source: self.source,
            id: self.id,
            author: self.author,
            text: self.text,
            created_at: self.created_at,
            lang: self.lang,
            url: self.url,
            tags: self.tags,
            metadata,
        };
        let e = self.enrichment;
        let model = e.model.ok_or_else(|| StoreError::NotEnriched(comment.key().joined()))?;
        let enrichment = Enrichment {
            model,
            embedding: e.embedding.map(|v| v.0).unwrap_or_default(),
            sentiment: e.sentiment.map(|s| s.0),
            entities: e.entities.map(|list| list.0),
            emotion: e.emotion.map(|x| x.0),
            aspects: e.aspects.map(|x| x.0),
            language: e.language.map(|x| x.0),
            skipped: e.skipped.as_deref().and_then(Skipped::parse),
            multilingual: e.multilingual.map(|x| x.0),
        };
        Ok(EnrichedComment::new(comment, enrichment))
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StoredEnrichment {
    pub model: Option<String>,
    pub enriched_at: Option<DateTime<Utc>>,
    /// Absent when the comment was enriched without a sentiment head.
    #[schema(value_type = Option<Sentiment>)]
    pub sentiment: Option<Json<Sentiment>>,
    /// Absent when the comment was enriched without a NER head.
    #[schema(value_type = Option<Vec<Entity>>)]
    pub entities: Option<Json<Vec<Entity>>>,
    /// Absent when the comment was enriched without an emotion head.
    #[schema(value_type = Option<Emotion>)]
    pub emotion: Option<Json<Emotion>>,
    /// Aspect terms and the sentiment toward each; absent when the comment was enriched without an aspect head.
    #[schema(value_type = Option<Vec<Aspect>>)]
    pub aspects: Option<Json<Vec<Aspect>>>,
    /// The language murmur detected in the text (the producer's is `lang`); absent when it was sure of none, or
    /// for comments enriched before detection.
    #[schema(value_type = Option<DetectedLanguage>)]
    pub language: Option<Json<DetectedLanguage>>,
    /// `language` when the heads did not read the comment because it is in a language they never learned.
    pub skipped: Option<String>,
    /// The sentence embedding, with `embedding=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<f32>>)]
    pub embedding: Option<PackedVector>,
    /// The multilingual encoder's embedding (model and base64 of little-endian float32s), with
    /// `embedding=true`, where the worker ran one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub multilingual: Option<Json<MultilingualEmbedding>>,
}

/// An embedding as the `comments.embedding` column holds it: float32s in network byte order, 4 bytes each.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct PackedVector(pub Vec<f32>);

impl PackedVector {
    pub fn pack(vector: &[f32]) -> Vec<u8> {
        vector.iter().flat_map(|x| x.to_be_bytes()).collect()
    }
}

impl sqlx::Type<sqlx::Postgres> for PackedVector {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <Vec<u8> as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for PackedVector {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let bytes = <&[u8] as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        if bytes.len() % 4 != 0 {
            return Err(format!("a packed embedding of {} bytes is not whole float32s", bytes.len()).into());
        }
        let floats = bytes.chunks_exact(4).map(|b| f32::from_be_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok(Self(floats))
    }
}

/// A comment and its enrichment as stored; `$3` says whether to read the embedding. Callers add the conditions.
pub(crate) const SELECT_STORED: &str = r#"
SELECT c.source, c.id, c.author, c.text, c.created_at, c.lang, c.url, c.tags,
       ARRAY(SELECT substr(d, 7) FROM unnest(c.dims) AS d WHERE d LIKE 'brand:%' ORDER BY 1) AS brands,
       c.metadata, c.ingested_at, c.model, c.enriched_at,
       CASE WHEN c.sentiment IS NOT NULL THEN jsonb_build_object(
           'label', c.sentiment, 'negative', c.sentiment_negative,
           'neutral', c.sentiment_neutral, 'positive', c.sentiment_positive) END AS sentiment,
       c.entities, c.emotion, c.aspects,
       CASE WHEN c.lang_detected IS NOT NULL THEN jsonb_build_object(
           'code', c.lang_detected, 'confidence', c.lang_confidence) END AS language,
       c.skipped,
       CASE WHEN $3 THEN c.embedding END AS embedding,
       CASE WHEN $3 THEN c.multilingual END AS multilingual
FROM comments c
"#;

/// A batch as one row per comment (see migration 0006). Only rows that changed are rewritten, so a replayed
/// comment fires no rollup delta; `updated_at` moves when the comment changed, `enriched_at` when what the
/// models said did; the comment's theme is kept while its text is (see migration 0013). Tags and dims travel as array literals (see `array_literal`), vectors packed (see
/// `PackedVector`).
const UPSERT_COMMENTS: &str = r#"
INSERT INTO comments AS c (source, id, author, text, created_at, lang, url, tags, metadata, model, enriched_at,
                           sentiment, sentiment_negative, sentiment_neutral, sentiment_positive, entities,
                           embedding, dims, emotion, aspects, lang_detected, lang_confidence, skipped, multilingual)
SELECT u.source, u.id, u.author, u.text, u.created_at, u.lang, u.url, u.tags::text[], u.metadata, u.model, now(),
       u.sentiment, u.negative, u.neutral, u.positive, u.entities, u.embedding, u.dims::text[], u.emotion, u.aspects,
       u.lang_detected, u.lang_confidence, u.skipped, u.multilingual
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[],
            $8::text[], $9::jsonb[], $10::text[], $11::text[], $12::real[], $13::real[], $14::real[], $15::jsonb[],
            $16::bytea[], $17::text[], $18::jsonb[], $19::jsonb[], $20::text[], $21::real[], $22::text[],
            $23::jsonb[])
     AS u(source, id, author, text, created_at, lang, url, tags, metadata, model, sentiment, negative, neutral,
          positive, entities, embedding, dims, emotion, aspects, lang_detected, lang_confidence, skipped,
          multilingual)
ON CONFLICT (source, id) DO UPDATE SET
    author = EXCLUDED.author, text = EXCLUDED.text, created_at = EXCLUDED.created_at, lang = EXCLUDED.lang,
    url = EXCLUDED.url, tags = EXCLUDED.tags, metadata = EXCLUDED.metadata,
    updated_at = CASE
        WHEN (c.author, c.text, c.created_at, c.lang, c.url, c.tags, c.metadata)
             IS DISTINCT FROM (EXCLUDED.author, EXCLUDED.text, EXCLUDED.created_at, EXCLUDED.lang, EXCLUDED.url,
                               EXCLUDED.tags, EXCLUDED.metadata)
        THEN now() ELSE c.updated_at END,
    model = EXCLUDED.model, sentiment = EXCLUDED.sentiment, sentiment_negative = EXCLUDED.sentiment_negative,
    sentiment_neutral = EXCLUDED.sentiment_neutral, sentiment_positive = EXCLUDED.sentiment_positive,
    entities = EXCLUDED.entities, embedding = EXCLUDED.embedding, dims = CASE WHEN c.text = EXCLUDED.text THEN with_theme(EXCLUDED.dims, c.dims) ELSE EXCLUDED.dims END, emotion = EXCLUDED.emotion,
    aspects = EXCLUDED.aspects, lang_detected = EXCLUDED.lang_detected, lang_confidence = EXCLUDED.lang_confidence,
    skipped = EXCLUDED.skipped, multilingual = EXCLUDED.multilingual,
    enriched_at = CASE
        WHEN (c.model, c.sentiment, c.sentiment_negative, c.sentiment_neutral, c.sentiment_positive, c.entities,
              c.embedding, c.emotion, c.aspects, c.lang_detected, c.lang_confidence, c.skipped, c.multilingual)
             IS DISTINCT FROM (EXCLUDED.model, EXCLUDED.sentiment, EXCLUDED.sentiment_negative,
                               EXCLUDED.sentiment_neutral, EXCLUDED.sentiment_positive, EXCLUDED.entities,
                               EXCLUDED.embedding, EXCLUDED.emotion, EXCLUDED.aspects, EXCLUDED.lang_detected,
                               EXCLUDED.lang_confidence, EXCLUDED.skipped, EXCLUDED.multilingual)
        THEN now() ELSE c.enriched_at END
WHERE (c.author, c.text, c.created_at, c.lang, c.url, c.tags, c.metadata, c.model, c.sentiment,
       c.sentiment_negative, c.sentiment_neutral, c.sentiment_positive, c.entities, c.embedding, c.dims, c.emotion,
       c.aspects, c.lang_detected, c.lang_confidence, c.skipped, c.multilingual)
      IS DISTINCT FROM
      (EXCLUDED.author, EXCLUDED.text, EXCLUDED.created_at, EXCLUDED.lang, EXCLUDED.url, EXCLUDED.tags,
       EXCLUDED.metadata, EXCLUDED.model, EXCLUDED.sentiment, EXCLUDED.sentiment_negative,
       EXCLUDED.sentiment_neutral, EXCLUDED.sentiment_positive, EXCLUDED.entities, EXCLUDED.embedding,
       CASE WHEN c.text = EXCLUDED.text THEN with_theme(EXCLUDED.dims, c.dims) ELSE EXCLUDED.dims END, EXCLUDED.emotion,
       EXCLUDED.aspects, EXCLUDED.lang_detected, EXCLUDED.lang_confidence, EXCLUDED.skipped, EXCLUDED.multilingual)
"#;

/// An entity as `comments.entities` holds it: the wire form plus its name, so SQL can count by name.
#[derive(Serialize)]
struct StoredEntity<'a> {
    label: &'static str,
    text: &'a str,
    name: String,
    start: usize,
    end: usize,
    score: f32,
}

impl<'a> From<&'a Entity> for StoredEntity<'a> {
    fn from(entity: &'a Entity) -> Self {
        Self {
            label: entity.label.as_str(),
            text: &entity.text,
            name: entity.name(),
            start: entity.start,
            end: entity.end,
            score: entity.score,
        }
    }
}

/// A text array as Postgres reads it back with `::text[]`: every element quoted, `"` and `\` escaped, so any
/// text (commas, braces, "NULL") stays one element as written.
pub(crate) fn array_literal<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut literal = String::from("{");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            literal.push(',');
        }
        literal.push('"');
        for ch in item.chars() {
            if ch == '"' || ch == '\\' {
                literal.push('\\');
            }
            literal.push(ch);
        }
        literal.push('"');
    }
    literal.push('}');
    literal
}

impl Postgres {
    /// Connects to `url`; a database that does not exist is [`StoreError::MissingDatabase`], saying how to
    /// create it.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await;
        match pool {
            Ok(pool) => Ok(Self { pool, matchers: Arc::default() }),
            // 3D000: invalid_catalog_name, the database named in the URL does not exist.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
                let database = url
                    .parse::<sqlx::postgres::PgConnectOptions>()
                    .ok()
                    .and_then(|o| o.get_database().map(str::to_owned))
                    .unwrap_or_default();
                Err(StoreError::MissingDatabase { database })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the migrations that are not applied yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    /// Re-derives every enriched comment's entities through `rewrite` (given the comment's text and its
    /// stored entities), then each entity's name and the comment's dims by today's rules, in pages of 1,000
    /// (one statement each; rows that do not change are not written). The rollup triggers move the counts, so
    /// the rollups keep equalling a recount. Runs once under `name` (recorded in `data_migrations`); returns
    /// the rows changed, or `None` when it had already run. Processes starting together take turns (an
    /// advisory lock), so it runs once.
    pub async fn rederive_entities(
        &self,
        name: &str,
        rewrite: impl FnMut(&str, Vec<Entity>) -> Vec<Entity>,
    ) -> Result<Option<u64>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))").bind(name).execute(&mut *conn).await?;
        let result = rederive_locked(&mut conn, name, rewrite).await;
        sqlx::query("SELECT pg_advisory_unlock(hashtext($1))").bind(name).execute(&mut *conn).await?;
        result
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Writes a batch in one statement, durable when it returns, each comment matched with the brand
    /// catalogue. The batch must not hold the same (source, id) twice (the sink keeps the last version of each).
    pub async fn upsert_batch(&self, batch: &[EnrichedComment]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let matcher = self.locked_matcher(&mut tx).await?;
        let n = batch.len();
        let mut sources = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        let mut authors = Vec::with_capacity(n);
        let mut texts = Vec::with_capacity(n);
        let mut created = Vec::with_capacity(n);
        let mut langs = Vec::with_capacity(n);
        let mut urls = Vec::with_capacity(n);
        let mut tags = Vec::with_capacity(n);
        let mut metadata = Vec::with_capacity(n);
        let mut models = Vec::with_capacity(n);
        let mut sentiments: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut negative: Vec<Option<f32>> = Vec::with_capacity(n);
        let mut neutral: Vec<Option<f32>> = Vec::with_capacity(n);
        let mut positive: Vec<Option<f32>> = Vec::with_capacity(n);
        let mut entities: Vec<Option<Json<Vec<StoredEntity>>>> = Vec::with_capacity(n);
        let mut vectors: Vec<Vec<u8>> = Vec::with_capacity(n);
        let mut dims = Vec::with_capacity(n);
        let mut emotions: Vec<Option<Json<&Emotion>>> = Vec::with_capacity(n);
        let mut aspects: Vec<Option<Json<&Vec<Aspect>>>> = Vec::with_capacity(n);
        let mut languages: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut confidences: Vec<Option<f32>> = Vec::with_capacity(n);
        let mut skipped: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut multilingual: Vec<Option<Json<&MultilingualEmbedding>>> = Vec::with_capacity(n);
        for e in batch {
            let c = &e.comment;
            sources.push(c.source.as_str());
            ids.push(c.id.as_str());
            authors.push(c.author.as_deref());
            texts.push(c.text.as_str());
            created.push(c.created_at);
            langs.push(c.lang.as_deref());
            urls.push(c.url.as_deref());
            tags.push(array_literal(c.tags.iter().map(String::as_str)));
            metadata.push(Json(&c.metadata));
            models.push(e.enrichment.model.as_str());
            let sentiment = e.enrichment.sentiment.as_ref();
            sentiments.push(sentiment.map(|s| s.label.as_str()));
            negative.push(sentiment.map(|s| s.negative));
            neutral.push(sentiment.map(|s| s.neutral));
            positive.push(sentiment.map(|s| s.positive));
            entities
                .push(e.enrichment.entities.as_ref().map(|list| Json(list.iter().map(StoredEntity::from).collect())));
            vectors.push(PackedVector::pack(&e.enrichment.embedding));
            let brands = matcher.find(&c.text, e.enrichment.entities.as_deref());
            dims.push(array_literal(Dim::of(e, &brands).iter().map(String::as_str)));
            emotions.push(e.enrichment.emotion.as_ref().map(Json));
            aspects.push(e.enrichment.aspects.as_ref().map(Json));
            languages.push(e.enrichment.language.as_ref().map(|l| l.code.as_str()));
            confidences.push(e.enrichment.language.as_ref().map(|l| l.confidence));
            skipped.push(e.enrichment.skipped.map(Skipped::as_str));
            multilingual.push(e.enrichment.multilingual.as_ref().map(Json));
        }
        sqlx::query(UPSERT_COMMENTS)
            .bind(&sources)
            .bind(&ids)
            .bind(&authors)
            .bind(&texts)
            .bind(&created)
            .bind(&langs)
            .bind(&urls)
            .bind(&tags)
            .bind(&metadata)
            .bind(&models)
            .bind(&sentiments)
            .bind(&negative)
            .bind(&neutral)
            .bind(&positive)
            .bind(&entities)
            .bind(&vectors)
            .bind(&dims)
            .bind(&emotions)
            .bind(&aspects)
            .bind(&languages)
            .bind(&confidences)
            .bind(&skipped)
            .bind(&multilingual)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One comment with its enrichment; the embedding only when asked for.
    pub async fn get_comment(
        &self,
        source: &str,
        id: &str,
        with_embedding: bool,
    ) -> Result<Option<StoredComment>, StoreError> {
        let row = sqlx::query_as::<_, StoredComment>(&format!("{SELECT_STORED} WHERE c.source = $1 AND c.id = $2"))
            .bind(source)
            .bind(id)
            .bind(with_embedding)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    /// Enriched comments in key order, after `after` (exclusive), at most `limit`: what the search index is
    /// rebuilt from, page by page.
    pub async fn enriched_page(
        &self,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<EnrichedComment>, StoreError> {
        let (source, id) = after.unwrap_or(("", ""));
        let rows = sqlx::query_as::<_, StoredComment>(&format!(
            "{SELECT_STORED} WHERE c.model IS NOT NULL AND (c.source, c.id) > ($1, $2) ORDER BY c.source, c.id LIMIT $4"
        ))
        .bind(source)
        .bind(id)
        .bind(true)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(StoredComment::into_enriched).collect()
    }

    pub async fn count_comments(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM comments").fetch_one(&self.pool).await?)
    }
}

#[async_trait]
impl CommentStore for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn upsert(&self, batch: &[EnrichedComment]) -> Result<(), BoxError> {
        Ok(self.upsert_batch(batch).await?)
    }

    async fn delete(&self, comments: &[CommentId]) -> Result<(), BoxError> {
        self.delete_comments(comments).await?;
        Ok(())
    }

    async fn expire(&self, expiry: &Expiry) -> Result<Expired, BoxError> {
        Ok(Postgres::expire(self, expiry).await?)
    }
}

/// A stored comment's source, id, text, tags, entities, emotion, dims, the producer's language, the detected
/// one and its confidence, as re-derivation reads it.
type RederiveRow = (
    String,
    String,
    String,
    Vec<String>,
    Json<Vec<Entity>>,
    Option<Json<Emotion>>,
    Vec<String>,
    Option<String>,
    Option<String>,
    Option<f32>,
);

/// [`Postgres::rederive_entities`] once its lock is held.
async fn rederive_locked(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Postgres>,
    name: &str,
    mut rewrite: impl FnMut(&str, Vec<Entity>) -> Vec<Entity>,
) -> Result<Option<u64>, StoreError> {
    let done: Option<String> = sqlx::query_scalar("SELECT name FROM data_migrations WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut **conn)
        .await?;
    if done.is_some() {
        return Ok(None);
    }
    let mut after = (String::new(), String::new());
    let mut changed = 0;
    loop {
        let rows: Vec<RederiveRow> = sqlx::query_as(
            "SELECT source, id, text, tags, entities, emotion, dims, lang, lang_detected, lang_confidence \
             FROM comments \
             WHERE entities IS NOT NULL AND dims IS NOT NULL AND (source, id) > ($1, $2) \
             ORDER BY source, id LIMIT 1000",
        )
        .bind(&after.0)
        .bind(&after.1)
        .fetch_all(&mut **conn)
        .await?;
        let Some(last) = rows.last() else { break };
        after = (last.0.clone(), last.1.clone());
        let (mut sources, mut ids, mut entities, mut dims) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (source, id, text, tags, stored, emotion, stored_dims, lang, detected, confidence) in rows {
            let rewritten = rewrite(&text, stored.0);
            // Brands are the catalogue's business (see `brands.rs`): kept as matched.
            let brands = Dim::brands_in(&stored_dims);
            let parts = Parts {
                tags: &tags,
                entities: Some(&rewritten),
                emotion: emotion.as_ref().map(|e| &e.0),
                language: murmur_core::language_key(detected.as_deref().zip(confidence), lang.as_deref()),
            };
            let parts = Dim::of_parts(parts, &brands);
            dims.push(array_literal(parts.iter().map(String::as_str)));
            entities.push(Json(
                rewritten
                    .iter()
                    .map(StoredEntity::from)
                    .map(|e| serde_json::to_value(e).unwrap_or_default())
                    .collect::<Vec<_>>(),
            ));
            sources.push(source);
            ids.push(id);
        }
        let result = sqlx::query(
            "UPDATE comments c SET entities = u.entities, dims = with_theme(u.dims::text[], c.dims) \
             FROM UNNEST($1::text[], $2::text[], $3::jsonb[], $4::text[]) AS u(source, id, entities, dims) \
             WHERE c.source = u.source AND c.id = u.id \
               AND (c.entities, c.dims) IS DISTINCT FROM (u.entities, with_theme(u.dims::text[], c.dims))",
        )
        .bind(&sources)
        .bind(&ids)
        .bind(&entities)
        .bind(&dims)
        .execute(&mut **conn)
        .await?;
        changed += result.rows_affected();
        tracing::info!(after = %format!("{}/{}", after.0, after.1), changed, "re-deriving entities");
    }
    sqlx::query("INSERT INTO data_migrations (name) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(name)
        .execute(&mut **conn)
        .await?;
    Ok(Some(changed))
}
