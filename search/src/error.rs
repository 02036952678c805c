#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("index directory {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    #[error("index directory: {0}")]
    OpenDirectory(#[from] tantivy::directory::error::OpenDirectoryError),
    #[error("the index in {0} was built with another schema: rebuild it from Postgres, or remove the folder")]
    SchemaMismatch(String),
    #[error("the index was opened read-only")]
    ReadOnly,
    #[error("index write task failed")]
    WriteTask,
}
