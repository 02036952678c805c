use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

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
    #[error("{0}")]
    Conflict(String),
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("the enrichment queue is full; retry shortly")]
    Overloaded,
    #[error("too many requests from this client; retry in {0} s")]
    RateLimited(u64),
    #[error("{0}")]
    TooLarge(String),
    #[error(
        "the request URI is {0} bytes, more than the {max} accepted; send long input in a request body",
        max = crate::params::MAX_URI_BYTES
    )]
    UriTooLong(usize),
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
            too_deep @ murmur_search::SearchError::TooDeep { .. } => Self::BadRequest(too_deep.to_string()),
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

/// The body of every error answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// What went wrong, naming the parameter or field at fault and what was expected.
    pub message: String,
}

/// What kind of failure an error is, for programs (the message is for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    NotReady,
    Overloaded,
    RateLimited,
    PayloadTooLarge,
    UriTooLong,
    ModelFailed,
    Internal,
}

impl ApiError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::NotReady(_) => ErrorCode::NotReady,
            Self::Overloaded => ErrorCode::Overloaded,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::TooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::UriTooLong(_) => ErrorCode::UriTooLong,
            Self::ModelFailed(_) => ErrorCode::ModelFailed,
            Self::Store(_) | Self::Search(_) | Self::Trends(_) | Self::Internal => ErrorCode::Internal,
        }
    }
}

/// The refusals every `/v1` operation may answer, for the OpenAPI document (never built: handlers return
/// [`ApiError`], whose [`ResponseError`] writes these).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code, reason = "describes responses in the OpenAPI document")]
pub(crate) enum Refusals {
    /// A parameter or body field is not what was expected; the message names it, what was expected and what came.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No API key, or an unknown one (reads need a key once the server has any).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The key's scope does not cover this operation.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The path and query are longer than the server takes (`MAX_URI_BYTES`, 16 KiB).
    #[response(status = 414)]
    UriTooLong(ErrorBody),
    /// Over this client's request rate (`Retry-After` says when to come back), or the model queue is full.
    #[response(status = 429)]
    TooManyRequests(ErrorBody),
    /// Postgres or the index failed; the cause goes to the server's log, not to the client.
    #[response(status = 500)]
    Internal(ErrorBody),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Overloaded | Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong(_) => StatusCode::URI_TOO_LONG,
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
            .json(ErrorBody { error: ErrorDetail { code: self.code(), message: self.to_string() } })
    }
}
