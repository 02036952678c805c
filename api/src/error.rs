use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// Every failure a handler can return, and its HTTP status; nothing caused by input is a 500.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("the enrichment queue is full; retry shortly")]
    Overloaded,
    #[error("too many requests from this client; retry in {0} s")]
    RateLimited(u64),
    #[error("{0}")]
    TooLarge(String),
    #[error("model failed: {0}")]
    ModelFailed(String),
    #[error("storage error")]
    Store(#[from] murmur_store::StoreError),
    #[error("search error")]
    Search(murmur_search::SearchError),
    #[error("trend query failed")]
    Trends(murmur_trends::TrendsError),
    #[error("internal error")]
    Internal,
}

impl From<murmur_search::SearchError> for ApiError {
    fn from(e: murmur_search::SearchError) -> Self {
        match e {
            murmur_search::SearchError::InvalidQuery(message) => Self::BadRequest(format!("invalid query: {message}")),
            other => Self::Search(other),
        }
    }
}

impl From<murmur_core::ModelQueueError> for ApiError {
    fn from(e: murmur_core::ModelQueueError) -> Self {
        use murmur_core::ModelQueueError;
        match e {
            ModelQueueError::Full => Self::Overloaded,
            ModelQueueError::Stopped => Self::NotReady("the model thread stopped".into()),
            ModelQueueError::Model(message) => Self::ModelFailed(message),
        }
    }
}

impl From<murmur_trends::TrendsError> for ApiError {
    fn from(e: murmur_trends::TrendsError) -> Self {
        use murmur_trends::TrendsError;
        match e {
            TrendsError::Invalid(message) => Self::BadRequest(message),
            TrendsError::Store(e) => Self::Store(e),
            TrendsError::Search(e) => e.into(),
            other => Self::Trends(other),
        }
    }
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::NotReady(_) => "not_ready",
            Self::Overloaded => "overloaded",
            Self::RateLimited(_) => "rate_limited",
            Self::TooLarge(_) => "payload_too_large",
            Self::ModelFailed(_) => "model_failed",
            Self::Store(_) | Self::Search(_) | Self::Trends(_) | Self::Internal => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Overloaded | Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ModelFailed(_) => StatusCode::FAILED_DEPENDENCY,
            Self::Store(_) | Self::Search(_) | Self::Trends(_) | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if self.status_code().is_server_error() {
            // The cause goes to the log, not to the client.
            match self {
                Self::Store(e) => tracing::error!(error = %e, "request failed"),
                Self::Search(e) => tracing::error!(error = %e, "request failed"),
                Self::Trends(e) => tracing::error!(error = %e, "request failed"),
                _ => tracing::error!(error = %self, "request failed"),
            }
        }
        HttpResponse::build(self.status_code())
            .json(json!({ "error": { "code": self.code(), "message": self.to_string() } }))
    }
}
