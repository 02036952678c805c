//! `GET /v1/comments/{source}/{id}`: one stored comment and what the models found in it.

use actix_web::{web, HttpResponse};
use murmur_store::StoredComment;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Authorized, Read};
use crate::error::{ErrorBody, Refusals};
use crate::params::Query;
use crate::{ApiError, AppState};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CommentParams {
    /// Include the sentence embedding.
    #[serde(default)]
    embedding: bool,
}

/// The stored comment and its enrichment.
#[utoipa::path(get, path = "/v1/comments/{source}/{id}", tag = "comments",
    params(
        ("source" = String, Path, description = "The comment's source, as its producer sent it"),
        ("id" = String, Path, description = "The producer's id of the comment, unique within its source"),
        CommentParams,
    ),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The comment", body = StoredComment),
        (status = 404, description = "No such comment", body = ErrorBody),
        Refusals,
    ))]
pub(crate) async fn comment(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    Query((params,)): Query<(CommentParams,)>,
) -> Result<HttpResponse, ApiError> {
    let (source, id) = path.into_inner();
    match state.postgres.get_comment(&source, &id, params.embedding).await? {
        Some(comment) => Ok(HttpResponse::Ok().json(comment)),
        None => Err(ApiError::NotFound(format!("no comment {source}/{id}"))),
    }
}
