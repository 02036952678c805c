//! For tests and benchmarks: throwaway databases, created (dropped first if left over) on the server of
//! `MURMUR_TEST_ADMIN_DATABASE_URL` (default: the local Postgres `infra/postgres.sh` sets up) and migrated;
//! and counts straight from the raw rows, the truth the rollups are checked against.

use chrono::{DateTime, Utc};
use sqlx::Connection;

use crate::{Counts, Postgres, StoreError};

/// A fresh, migrated database `murmur_test_<name>`.
pub async fn fresh_database(name: &str) -> Result<Postgres, StoreError> {
    database(name, true).await
}

/// The database `murmur_test_<name>`, migrated: emptied first when `fresh`, else kept as a previous run left it
/// (created if missing).
pub async fn database(name: &str, fresh: bool) -> Result<Postgres, StoreError> {
    let url = create(name, fresh).await?;
    let store = Postgres::connect(&url, 8).await?;
    store.migrate().await?;
    Ok(store)
}

/// A fresh database `murmur_test_<name>` (a leftover one dropped first) with no tables: for murmur's own
/// processes to migrate, or for tests of migrating. Its URL.
pub async fn empty_database(name: &str) -> Result<String, StoreError> {
    create(name, true).await
}

/// The server of the test databases: `MURMUR_TEST_ADMIN_DATABASE_URL`, default the local Postgres
/// `infra/postgres.sh` sets up.
pub fn admin_url() -> String {
    std::env::var("MURMUR_TEST_ADMIN_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://murmur@127.0.0.1:5432/postgres".into())
}

/// Creates `murmur_test_<name>` if missing, or anew when `fresh`; its URL.
async fn create(name: &str, fresh: bool) -> Result<String, StoreError> {
    let (admin_url, mut admin, db) = admin(name).await?;
    if fresh {
        set_reachable(name, true).await?;
    }
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&db)
        .fetch_one(&mut admin)
        .await?;
    if fresh && exists {
        sqlx::query(&format!("DROP DATABASE {db} WITH (FORCE)")).execute(&mut admin).await?;
    }
    if fresh || !exists {
        sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut admin).await?;
    }
    match admin_url.rsplit_once('/') {
        Some((base, _)) => Ok(format!("{base}/{db}")),
        None => Err(StoreError::Invalid(format!("admin URL {admin_url:?} names no database"))),
    }
}

/// The admin URL, a connection on it, and the test database's name for `name`.
async fn admin(name: &str) -> Result<(String, sqlx::PgConnection, String), StoreError> {
    let admin_url = admin_url();
    let admin = sqlx::PgConnection::connect(&admin_url).await?;
    let db = format!("murmur_test_{name}");
    if !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Invalid(format!("database name {db:?}")));
    }
    Ok((admin_url, admin, db))
}

/// Makes the test database `murmur_test_<name>` unreachable (connections refused, open ones ended) or
/// reachable again: Postgres "down" for one test while the server keeps serving the others.
pub async fn set_reachable(name: &str, reachable: bool) -> Result<(), StoreError> {
    let (_, mut admin, db) = admin(name).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&db)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        return Ok(());
    }
    sqlx::query(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS {reachable}")).execute(&mut admin).await?;
    if !reachable {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(&db)
            .execute(&mut admin)
            .await?;
    }
    Ok(())
}

/// Comments per bucket counted straight from the raw rows (the truth rollup answers are checked against):
/// `date_trunc(unit, created_at, tz)` buckets of `[from, to)` where `condition` (SQL on `c`, the comments) holds;
/// empty buckets are absent. Entities are `jsonb_array_elements(c.entities)`, each with `label` and `name`.
pub async fn raw_series(
    postgres: &Postgres,
    condition: &str,
    unit: &str,
    tz: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, Counts)>, StoreError> {
    let rows: Vec<(DateTime<Utc>, i64, i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT date_trunc($1, c.created_at, $2), count(*), count(*) FILTER (WHERE c.sentiment = 'negative'), \
         count(*) FILTER (WHERE c.sentiment = 'neutral'), count(*) FILTER (WHERE c.sentiment = 'positive') \
         FROM comments c \
         WHERE c.model IS NOT NULL AND c.created_at >= $3 AND c.created_at < $4 AND ({condition}) GROUP BY 1 ORDER BY 1"
    ))
    .bind(unit)
    .bind(tz)
    .bind(from)
    .bind(to)
    .fetch_all(postgres.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(b, comments, negative, neutral, positive)| (b, Counts { comments, negative, neutral, positive }))
        .collect())
}

/// Each comment's entities as it counts them, over the raw rows of `[from, to)` (`$1`, `$2`): a name written in
/// the text once, with the type of its first mention; each mention (`handle`, `hashtag`) once. Columns
/// `source, id, sentiment, label, name`.
pub const COUNTED_ENTITIES: &str = "SELECT c.source, c.id, c.sentiment, m.label, m.name \
     FROM comments c CROSS JOIN LATERAL ( \
         SELECT DISTINCT ON (e->>'name', CASE WHEN e->>'label' IN ('handle', 'hashtag') THEN e->>'label' END) \
                e->>'label' AS label, e->>'name' AS name \
         FROM jsonb_array_elements(c.entities) WITH ORDINALITY AS x(e, n) WHERE e->>'name' <> '' \
         ORDER BY e->>'name', CASE WHEN e->>'label' IN ('handle', 'hashtag') THEN e->>'label' END, n) m \
     WHERE c.created_at >= $1 AND c.created_at < $2";

/// Names written in the text (mentions left out) over the raw rows: each name's comments and sentiment, and
/// the type most of them give it (ties by type), most mentioned first: `(type, name, counts)`.
pub async fn raw_names(
    postgres: &Postgres,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, String, Counts)>, StoreError> {
    let rows: Vec<(String, String, i64, i64, i64, i64)> = sqlx::query_as(&format!(
        "WITH mentions AS ({COUNTED_ENTITIES} AND m.label NOT IN ('handle', 'hashtag')), \
         types AS (SELECT name, label, count(*) AS n FROM mentions GROUP BY 1, 2), \
         main AS (SELECT DISTINCT ON (name) name, label FROM types ORDER BY name, n DESC, label) \
         SELECT main.label, m.name, count(*), count(*) FILTER (WHERE m.sentiment = 'negative'), \
         count(*) FILTER (WHERE m.sentiment = 'neutral'), count(*) FILTER (WHERE m.sentiment = 'positive') \
         FROM mentions m JOIN main USING (name) GROUP BY 1, 2 ORDER BY 3 DESC, 2"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(postgres.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(label, name, comments, negative, neutral, positive)| {
            (label, name, Counts { comments, negative, neutral, positive })
        })
        .collect())
}

/// Comments per entity (`LABEL:name`) in `[from, to)` counted straight from the raw rows (see
/// [`COUNTED_ENTITIES`]), most first (ties by key).
pub async fn raw_entities(
    postgres: &Postgres,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, Counts)>, StoreError> {
    let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT m.label || ':' || m.name, count(*), count(*) FILTER (WHERE m.sentiment = 'negative'), \
         count(*) FILTER (WHERE m.sentiment = 'neutral'), count(*) FILTER (WHERE m.sentiment = 'positive') \
         FROM ({COUNTED_ENTITIES}) m GROUP BY 1 ORDER BY 2 DESC, 1"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(postgres.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(key, comments, negative, neutral, positive)| (key, Counts { comments, negative, neutral, positive }))
        .collect())
}
