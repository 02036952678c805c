//! Aspects counted within a slice (migration 0014): the aspect terms of the comments under one rollup dim in a
//! window, by name, with their polarities, and the most confident examples of each. Read from
//! `comments.aspects` directly: the slice's dim narrows the rows through the dims index first.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::trends::{Dim, Duplicates};
use crate::{Postgres, StoreError};

/// One aspect name's mentions in a slice: comments that mention it (a comment once per name, under the
/// polarity of its most confident mention of that name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AspectCount {
    pub name: String,
    pub mentions: i64,
    pub positive: i64,
    pub neutral: i64,
    pub negative: i64,
}

/// A comment that judges an aspect, with the term as written and the polarity's probability.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AspectMention {
    pub name: String,
    /// `positive` or `negative`.
    pub label: String,
    pub probability: f32,
    pub source: String,
    pub id: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
    /// The term as written and its character offsets in the text.
    pub term: String,
    pub start: i32,
    pub end: i32,
}

/// Where a slice's aspects are read from: the comments under `dim` (every comment for [`Dim::All`]) in
/// `window`, of `source` if given.
pub struct AspectScope<'a> {
    pub dim: &'a Dim,
    pub source: Option<&'a str>,
    pub duplicates: Duplicates,
    pub window: (DateTime<Utc>, DateTime<Utc>),
}

impl AspectScope<'_> {
    /// Each (comment, aspect) row of the scope as `c`, `a`, over parameters `$1` (the dims, see
    /// [`Dim::stored_any`]) to `$4`. The dims condition is left out rather than made optional, so that the
    /// `comments.dims` index serves every plan.
    fn rows(&self) -> String {
        let under = if self.dim.stored_any().is_some() { "c.dims && $1::text[]" } else { "$1::text[] IS NULL" };
        format!(
            "FROM comments c CROSS JOIN LATERAL jsonb_array_elements(c.aspects) AS a \
             WHERE c.aspects IS NOT NULL AND {under} AND c.created_at >= $2 AND c.created_at < $3 \
               AND ($4::text IS NULL OR c.source = $4) AND {}",
            self.duplicates.keeps_comment()
        )
    }
}

impl Postgres {
    /// The `limit` most mentioned aspect names in `scope`, most mentioned first (ties by name).
    pub async fn aspect_counts(&self, scope: &AspectScope<'_>, limit: i64) -> Result<Vec<AspectCount>, StoreError> {
        let sql = format!(
            "WITH mentioned AS ( \
               SELECT DISTINCT ON (c.source, c.id, a->>'name') a->>'name' AS name, a->'sentiment'->>'label' AS label \
               {} ORDER BY c.source, c.id, a->>'name', (a->>'score')::real DESC) \
             SELECT name, count(*) AS mentions, count(*) FILTER (WHERE label = 'positive') AS positive, \
                    count(*) FILTER (WHERE label = 'neutral') AS neutral, \
                    count(*) FILTER (WHERE label = 'negative') AS negative \
             FROM mentioned GROUP BY name ORDER BY mentions DESC, name LIMIT $5",
            scope.rows()
        );
        Ok(sqlx::query_as::<_, AspectCount>(&sql)
            .bind(scope.dim.stored_any())
            .bind(scope.window.0)
            .bind(scope.window.1)
            .bind(scope.source)
            .bind(limit)
            .fetch_all(self.pool())
            .await?)
    }

    /// For each of `names` and each of positive and negative, the `per` mentions judged most confidently
    /// (newest first among equals).
    pub async fn aspect_mentions(
        &self,
        scope: &AspectScope<'_>,
        names: &[String],
        per: i64,
    ) -> Result<Vec<AspectMention>, StoreError> {
        let sql = format!(
            "SELECT name, label, probability, source, id, text, created_at, term, start, \"end\" FROM ( \
               SELECT a->>'name' AS name, a->'sentiment'->>'label' AS label, \
                      (a->'sentiment'->>(a->'sentiment'->>'label'))::real AS probability, \
                      c.source, c.id, c.text, c.created_at, a->>'text' AS term, (a->>'start')::int4 AS start, \
                      (a->>'end')::int4 AS \"end\", \
                      row_number() OVER (PARTITION BY a->>'name', a->'sentiment'->>'label' \
                          ORDER BY (a->'sentiment'->>(a->'sentiment'->>'label'))::real DESC, c.created_at DESC, \
                                   c.source, c.id) AS rank \
               {} AND a->>'name' = ANY($5) AND a->'sentiment'->>'label' IN ('positive', 'negative')) m \
             WHERE rank <= $6 ORDER BY name, label, rank",
            scope.rows()
        );
        Ok(sqlx::query_as::<_, AspectMention>(&sql)
            .bind(scope.dim.stored_any())
            .bind(scope.window.0)
            .bind(scope.window.1)
            .bind(scope.source)
            .bind(names)
            .bind(per)
            .fetch_all(self.pool())
            .await?)
    }
}
