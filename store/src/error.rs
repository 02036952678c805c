#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
    #[error("postgres migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("comment {0} has no enrichment")]
    NotEnriched(String),
    #[error("invalid enrichment: {0}")]
    Invalid(String),
}
