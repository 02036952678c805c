//! Deleting a comment (`DELETE /v1/comments/{source}/{id}`) and erasing an author (`/v1/erasure`): admin keys
//! only; see [`crate::deleter`] for how deletions reach every store, and docs/privacy.md.

use actix_web::{web, HttpResponse};
use murmur_core::CommentId;
use murmur_store::Erasure;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Admin, Authorized};
use crate::deleter::{DeleteError, Deleter};
use crate::error::{ErrorBody, Refusals};
use crate::params::Body;
use crate::{ApiError, AppState};

/// Longest author handle accepted (as the worker accepts).
const MAX_HANDLE_BYTES: usize = 256;

/// A deletion on its way to every store.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeletionAccepted {
    source: String,
    id: String,
    /// Whether Postgres held the comment when the request came (a comment still in the pipeline is deleted on
    /// arrival all the same).
    stored: bool,
}

/// The server's deleter, or why it has none.
fn deleter(state: &AppState) -> Result<&Deleter, ApiError> {
    state.deleter.as_ref().ok_or_else(|| {
        ApiError::NotReady("deleting needs the broker: this server was started without one for tombstones".into())
    })
}

impl From<DeleteError> for ApiError {
    fn from(e: DeleteError) -> Self {
        match e {
            DeleteError::Store(e) => Self::Store(e),
            e @ (DeleteError::Send(_) | DeleteError::Timeout(_)) => Self::NotReady(format!("{e}; retry")),
        }
    }
}

/// Delete a comment from every store (Postgres, the search index and its vectors, the rollups); a replayed
/// or late copy of it is never stored again. Applied by the sinks within about a second of the request.
#[utoipa::path(delete, path = "/v1/comments/{source}/{id}", tag = "privacy",
    params(
        ("source" = String, Path, description = "The comment's source, as its producer sent it"),
        ("id" = String, Path, description = "The producer's id of the comment, unique within its source"),
    ),
    security(("api_key" = ["admin"])),
    responses(
        (status = 202, description = "Remembered as deleted; the sinks delete it from every store", body = DeletionAccepted),
        (status = 400, description = "Not a valid source or id", body = ErrorBody),
        (status = 503, description = "No broker to send the tombstone to, or it did not take it", body = ErrorBody),
        Refusals,
    ))]
pub(crate) async fn delete_comment(
    _: Authorized<Admin>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (source, id) = path.into_inner();
    let comment = CommentId::new(&source, &id).map_err(ApiError::BadRequest)?;
    let deleter = deleter(&state)?;
    let stored = state.postgres.get_comment(&source, &id, false).await?.is_some();
    deleter.delete(&state.postgres, std::slice::from_ref(&comment), None).await?;
    state.metrics.deletions_requested.inc();
    tracing::info!(comment = %comment.key().joined(), stored, "deletion requested");
    Ok(HttpResponse::Accepted().json(DeletionAccepted { source, id, stored }))
}

/// Whose comments to erase.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErasureRequest {
    /// The platform, as comments name it (`twitter`).
    source: String,
    /// The author's handle or id as the platform knows it (what producers send as `author`). murmur keeps
    /// only its keyed pseudonym, never this.
    author: String,
}

/// Erase everything an author wrote on a source: every stored comment, found by the same keyed pseudonym the
/// workers stored, deleted from every store in the background, and the author's comments still in flight
/// erased on arrival for the configured window. The request is kept (without the handle) with its outcome.
#[utoipa::path(post, path = "/v1/erasure", tag = "privacy", request_body = ErasureRequest,
    security(("api_key" = ["admin"])),
    responses(
        (status = 202, description = "The erasure, as recorded; follow it at /v1/erasure/{id}", body = Erasure),
        (status = 400, description = "Not a valid source or author", body = ErrorBody),
        (status = 503, description = "This server has no broker or no pseudonym key", body = ErrorBody),
        Refusals,
    ))]
pub(crate) async fn erase(
    _: Authorized<Admin>,
    state: web::Data<AppState>,
    body: Body<ErasureRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    murmur_core::check_source(&request.source).map_err(ApiError::BadRequest)?;
    if request.author.is_empty() || request.author.len() > MAX_HANDLE_BYTES {
        return Err(ApiError::BadRequest(format!("author: expected 1-{MAX_HANDLE_BYTES} bytes")));
    }
    let deleter = deleter(&state)?;
    let pseudonym = deleter.pseudonym(&request.source, &request.author).ok_or_else(|| {
        ApiError::NotReady(
            "erasing an author needs the workers' pseudonym key (MURMUR_PSEUDONYM_KEY) on this server".into(),
        )
    })?;
    let erasure = state.postgres.start_erasure(&request.source, &pseudonym, deleter.options.arrivals).await?;
    state.metrics.erasures_requested.inc();
    tracing::info!(erasure = erasure.id, source = %erasure.source, "erasure requested");
    Ok(HttpResponse::Accepted().insert_header(("location", format!("/v1/erasure/{}", erasure.id))).json(erasure))
}

/// An erasure and how far it got: `sweeping`, `settling` (waiting to sweep once more for comments whose write
/// was under way), `done`; how many comments it deleted.
#[utoipa::path(get, path = "/v1/erasure/{id}", tag = "privacy",
    params(("id" = i64, Path, description = "The erasure's id")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, description = "The erasure", body = Erasure),
        (status = 404, description = "No such erasure", body = ErrorBody),
        Refusals,
    ))]
pub(crate) async fn erasure(
    _: Authorized<Admin>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    match state.postgres.erasure(id).await? {
        Some(erasure) => Ok(HttpResponse::Ok().json(erasure)),
        None => Err(ApiError::NotFound(format!("no erasure {id}"))),
    }
}
