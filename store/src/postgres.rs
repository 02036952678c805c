use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use murmur_core::{BoxError, Comment, CommentStore, EnrichedComment, Enrichment, Entity, Sentiment};
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::trends::Dim;
use crate::StoreError;

#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
}

/// A comment as stored, with what the models added.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredComment {
    pub source: String,
    pub id: String,
    pub author: Option<String>,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub lang: Option<String>,
    pub url: Option<String>,
    pub tags: Vec<String>,
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
        };
        Ok(EnrichedComment::new(comment, enrichment))
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredEnrichment {
    pub model: Option<String>,
    pub enriched_at: Option<DateTime<Utc>>,
    /// Absent when the comment was enriched without a sentiment head.
    pub sentiment: Option<sqlx::types::Json<Sentiment>>,
    /// Absent when the comment was enriched without a NER head.
    pub entities: Option<sqlx::types::Json<Vec<Entity>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<PackedVector>,
}

/// An embedding as the `embeddings.vector` column holds it: float32s in network byte order, 4 bytes each.
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

/// A comment and its enrichment as stored; `$3` says whether to read the embedding. Callers add the joins
/// (`e`: enrichments, `v`: embeddings) and the conditions.
const SELECT_STORED: &str = r#"
SELECT c.source, c.id, c.author, c.text, c.created_at, c.lang, c.url, c.tags, c.metadata,
       c.ingested_at, e.model, e.enriched_at,
       CASE WHEN e.sentiment IS NOT NULL THEN jsonb_build_object(
           'label', e.sentiment, 'negative', e.sentiment_negative,
           'neutral', e.sentiment_neutral, 'positive', e.sentiment_positive) END AS sentiment,
       CASE WHEN e.entity_count IS NOT NULL THEN (
           SELECT coalesce(jsonb_agg(jsonb_build_object(
               'label', m.label, 'text', m.text, 'start', m.start_char, 'end', m.end_char,
               'score', m.score) ORDER BY m.ordinal), '[]'::jsonb)
           FROM entities m WHERE m.source = c.source AND m.id = c.id) END AS entities,
       CASE WHEN $3 THEN v.vector END AS embedding
FROM comments c
"#;

const UPSERT_COMMENTS: &str = r#"
INSERT INTO comments (source, id, author, text, created_at, lang, url, tags, metadata)
SELECT u.source, u.id, u.author, u.text, u.created_at, u.lang, u.url,
       ARRAY(SELECT jsonb_array_elements_text(u.tags)), u.metadata
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[],
            $8::jsonb[], $9::jsonb[]) AS u(source, id, author, text, created_at, lang, url, tags, metadata)
ON CONFLICT (source, id) DO UPDATE SET
    author = EXCLUDED.author, text = EXCLUDED.text, created_at = EXCLUDED.created_at, lang = EXCLUDED.lang,
    url = EXCLUDED.url, tags = EXCLUDED.tags, metadata = EXCLUDED.metadata, updated_at = now()
WHERE (comments.author, comments.text, comments.created_at, comments.lang, comments.url, comments.tags,
       comments.metadata)
      IS DISTINCT FROM
      (EXCLUDED.author, EXCLUDED.text, EXCLUDED.created_at, EXCLUDED.lang, EXCLUDED.url, EXCLUDED.tags,
       EXCLUDED.metadata)
"#;

const UPSERT_ENRICHMENTS: &str = r#"
INSERT INTO enrichments (source, id, model, sentiment, sentiment_negative, sentiment_neutral, sentiment_positive,
                         entity_count)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::real[], $6::real[], $7::real[],
                     $8::integer[])
ON CONFLICT (source, id) DO UPDATE SET
    model = EXCLUDED.model, sentiment = EXCLUDED.sentiment, sentiment_negative = EXCLUDED.sentiment_negative,
    sentiment_neutral = EXCLUDED.sentiment_neutral, sentiment_positive = EXCLUDED.sentiment_positive,
    entity_count = EXCLUDED.entity_count, enriched_at = now()
WHERE (enrichments.model, enrichments.sentiment, enrichments.sentiment_negative, enrichments.sentiment_neutral,
       enrichments.sentiment_positive, enrichments.entity_count)
      IS DISTINCT FROM
      (EXCLUDED.model, EXCLUDED.sentiment, EXCLUDED.sentiment_negative, EXCLUDED.sentiment_neutral,
       EXCLUDED.sentiment_positive, EXCLUDED.entity_count)
"#;

// A comment's mentions beyond its new count go; the rest are upserted by ordinal, unchanged ones untouched.
const TRIM_ENTITIES: &str = r#"
DELETE FROM entities e
USING UNNEST($1::text[], $2::text[], $3::integer[]) AS u(source, id, n)
WHERE e.source = u.source AND e.id = u.id AND e.ordinal >= u.n
"#;

const UPSERT_ENTITIES: &str = r#"
INSERT INTO entities (source, id, ordinal, label, text, name, start_char, end_char, score)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::text[], $7::integer[],
                     $8::integer[], $9::real[])
ON CONFLICT (source, id, ordinal) DO UPDATE SET
    label = EXCLUDED.label, text = EXCLUDED.text, name = EXCLUDED.name, start_char = EXCLUDED.start_char,
    end_char = EXCLUDED.end_char, score = EXCLUDED.score
WHERE (entities.label, entities.text, entities.start_char, entities.end_char, entities.score)
      IS DISTINCT FROM
      (EXCLUDED.label, EXCLUDED.text, EXCLUDED.start_char, EXCLUDED.end_char, EXCLUDED.score)
"#;

// Vectors travel packed (see `PackedVector`).
const UPSERT_EMBEDDINGS: &str = r#"
INSERT INTO embeddings (source, id, model, vector)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[])
ON CONFLICT (source, id) DO UPDATE SET model = EXCLUDED.model, vector = EXCLUDED.vector
WHERE (embeddings.model, embeddings.vector) IS DISTINCT FROM (EXCLUDED.model, EXCLUDED.vector)
"#;

// What each comment counts under in the trend rollups (see migration 0004): rewritten only when it changed,
// so a replayed comment fires no rollup delta.
const UPSERT_FACTS: &str = r#"
INSERT INTO comment_facts (source, id, minute, sentiment, dims)
SELECT u.source, u.id, date_trunc('minute', u.created_at, 'UTC'), u.sentiment,
       ARRAY(SELECT jsonb_array_elements_text(u.dims))
FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::jsonb[])
     AS u(source, id, created_at, sentiment, dims)
ON CONFLICT (source, id) DO UPDATE SET
    minute = EXCLUDED.minute, sentiment = EXCLUDED.sentiment, dims = EXCLUDED.dims
WHERE (comment_facts.minute, comment_facts.sentiment, comment_facts.dims)
      IS DISTINCT FROM (EXCLUDED.minute, EXCLUDED.sentiment, EXCLUDED.dims)
"#;

/// Entity mentions of a batch as columns for one UNNEST insert.
#[derive(Default)]
struct Mentions<'a> {
    sources: Vec<&'a str>,
    ids: Vec<&'a str>,
    ordinals: Vec<i32>,
    labels: Vec<&'static str>,
    texts: Vec<&'a str>,
    names: Vec<String>,
    starts: Vec<i32>,
    ends: Vec<i32>,
    scores: Vec<f32>,
}

impl<'a> Mentions<'a> {
    fn push(&mut self, source: &'a str, id: &'a str, ordinal: usize, entity: &'a Entity) -> Result<(), StoreError> {
        let offset = |n: usize| i32::try_from(n).map_err(|_| StoreError::Invalid(format!("entity offset {n}")));
        if entity.end <= entity.start {
            return Err(StoreError::Invalid(format!("entity span {}..{} of {source}/{id}", entity.start, entity.end)));
        }
        self.sources.push(source);
        self.ids.push(id);
        self.ordinals.push(offset(ordinal)?);
        self.labels.push(entity.label.as_str());
        self.texts.push(&entity.text);
        self.names.push(entity.name());
        self.starts.push(offset(entity.start)?);
        self.ends.push(offset(entity.end)?);
        self.scores.push(entity.score);
        Ok(())
    }
}

impl Postgres {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the migrations that are not applied yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Writes a batch in one transaction. The batch must not hold the same (source, id) twice (the sink
    /// keeps the last version of each).
    pub async fn upsert_batch(&self, batch: &[EnrichedComment]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
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
        let mut entity_counts: Vec<Option<i32>> = Vec::with_capacity(n);
        let mut dims: Vec<serde_json::Value> = Vec::with_capacity(n);
        let mut mentions = Mentions::default();
        let mut vectors: Vec<Vec<u8>> = Vec::with_capacity(n);
        for e in batch {
            let c = &e.comment;
            sources.push(c.source.as_str());
            ids.push(c.id.as_str());
            authors.push(c.author.as_deref());
            texts.push(c.text.as_str());
            created.push(c.created_at);
            langs.push(c.lang.as_deref());
            urls.push(c.url.as_deref());
            tags.push(serde_json::Value::from(c.tags.clone()));
            metadata.push(serde_json::Value::Object(c.metadata.clone()));
            models.push(e.enrichment.model.as_str());
            let sentiment = e.enrichment.sentiment.as_ref();
            sentiments.push(sentiment.map(|s| s.label.as_str()));
            negative.push(sentiment.map(|s| s.negative));
            neutral.push(sentiment.map(|s| s.neutral));
            positive.push(sentiment.map(|s| s.positive));
            entity_counts.push(e.enrichment.entities.as_ref().map(|list| list.len() as i32));
            dims.push(serde_json::Value::from(Dim::of(e)));
            for (ordinal, entity) in e.enrichment.entities.iter().flatten().enumerate() {
                mentions.push(c.source.as_str(), c.id.as_str(), ordinal, entity)?;
            }
            vectors.push(PackedVector::pack(&e.enrichment.embedding));
        }
        let mut tx = self.pool.begin().await?;
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
            .execute(&mut *tx)
            .await?;
        sqlx::query(UPSERT_ENRICHMENTS)
            .bind(&sources)
            .bind(&ids)
            .bind(&models)
            .bind(&sentiments)
            .bind(&negative)
            .bind(&neutral)
            .bind(&positive)
            .bind(&entity_counts)
            .execute(&mut *tx)
            .await?;
        let counts: Vec<i32> = entity_counts.iter().map(|n| n.unwrap_or(0)).collect();
        sqlx::query(TRIM_ENTITIES).bind(&sources).bind(&ids).bind(&counts).execute(&mut *tx).await?;
        if !mentions.ordinals.is_empty() {
            sqlx::query(UPSERT_ENTITIES)
                .bind(&mentions.sources)
                .bind(&mentions.ids)
                .bind(&mentions.ordinals)
                .bind(&mentions.labels)
                .bind(&mentions.texts)
                .bind(&mentions.names)
                .bind(&mentions.starts)
                .bind(&mentions.ends)
                .bind(&mentions.scores)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(UPSERT_FACTS)
            .bind(&sources)
            .bind(&ids)
            .bind(&created)
            .bind(&sentiments)
            .bind(&dims)
            .execute(&mut *tx)
            .await?;
        sqlx::query(UPSERT_EMBEDDINGS).bind(&sources).bind(&ids).bind(&models).bind(&vectors).execute(&mut *tx).await?;
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
        let row = sqlx::query_as::<_, StoredComment>(&format!(
            "{SELECT_STORED} LEFT JOIN enrichments e USING (source, id) LEFT JOIN embeddings v USING (source, id) \
             WHERE c.source = $1 AND c.id = $2"
        ))
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
            "{SELECT_STORED} JOIN enrichments e USING (source, id) LEFT JOIN embeddings v USING (source, id) \
             WHERE (c.source, c.id) > ($1, $2) ORDER BY c.source, c.id LIMIT $4"
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
}
