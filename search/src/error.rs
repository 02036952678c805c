#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("offset + limit: {mode} results go at most {deepest} deep")]
    TooDeep { mode: &'static str, deepest: usize },
    #[error("{0} search needs the query's embedding (is the encoder loaded?)")]
    EmbeddingRequired(&'static str),
    #[error(
        "embedding width {got} does not match the index's {index}: the model changed; rebuild with `murmur reindex`"
    )]
    EmbeddingWidth { index: usize, got: usize },
    #[error("index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("index directory {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    #[error("index directory: {0}")]
    OpenDirectory(#[from] tantivy::directory::error::OpenDirectoryError),
    #[error("the index in {0} was built with another schema: rebuild it with `murmur reindex`")]
    SchemaMismatch(String),
    #[error("the index folder {0} holds an index from an older murmur: rebuild it with `murmur reindex` (or remove the folder)")]
    OldLayout(String),
    #[error("vector graph: {0}")]
    Graph(String),
    #[error("index files damaged: {0}")]
    Corrupt(String),
    #[error("another process writes the index in {0} (a sink, the demo or `murmur reindex`): one writer at a time")]
    WriterBusy(String),
    #[error("the index was opened without write access")]
    ReadOnly,
    #[error("index write task failed")]
    WriteTask,
}

impl SearchError {
    /// A failed file operation on `path` in the index folder.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Directory { path: path.display().to_string(), source }
    }
}
