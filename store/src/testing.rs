//! Throwaway databases for tests and benchmarks: created (dropped first if left over) on the server of
//! `MURMUR_TEST_ADMIN_DATABASE_URL` (default: the local Postgres `infra/postgres.sh` sets up), migrated.

use sqlx::Connection;

use crate::{Postgres, StoreError};

/// A fresh, migrated database `murmur_test_<name>`.
pub async fn fresh_database(name: &str) -> Result<Postgres, StoreError> {
    database(name, true).await
}

/// The database `murmur_test_<name>`, migrated: emptied first when `fresh`, else kept as a previous run left it
/// (created if missing).
pub async fn database(name: &str, fresh: bool) -> Result<Postgres, StoreError> {
    let admin_url = std::env::var("MURMUR_TEST_ADMIN_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
    let db = format!("murmur_test_{name}");
    if !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Invalid(format!("database name {db:?}")));
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
    let url = match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => return Err(StoreError::Invalid(format!("admin URL {admin_url:?} names no database"))),
    };
    let store = Postgres::connect(&url, 8).await?;
    store.migrate().await?;
    Ok(store)
}
