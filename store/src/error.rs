#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "the database {database:?} does not exist: create it (`createdb {database}`, or `CREATE DATABASE {database}` \
         in psql), or point MURMUR_DATABASE_URL at one that does"
    )]
    MissingDatabase { database: String },
    #[error("postgres migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("comment {0} has no enrichment")]
    NotEnriched(String),
    #[error("invalid enrichment: {0}")]
    Invalid(String),
}
