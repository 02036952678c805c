/// Everything a trend query or a report can fail with.
#[derive(Debug, thiserror::Error)]
pub enum TrendsError {
    /// A request that cannot be answered as asked (the message says why); callers map it to a 400.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] murmur_store::StoreError),
    #[error(transparent)]
    Search(#[from] murmur_search::SearchError),
    #[error("a trend task stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}
