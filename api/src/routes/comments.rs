//! `GET /v1/comments/{source}/{id}`: one stored comment and what the models found in it.

use actix_web::{web, HttpResponse};
use murmur_core::Explanation;
use murmur_store::{Cluster, StoredComment};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

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
    /// Include why the served model reads the comment's sentiment and emotion so: each word's weight, found
    /// by leaving it out (costs a model reading per word; needs the model on this server).
    #[serde(default)]
    explain: bool,
}

/// A stored comment, what the models found in it and its cluster of near-duplicates.
#[derive(Serialize, ToSchema)]
pub(crate) struct CommentAnswer {
    #[serde(flatten)]
    comment: StoredComment,
    #[serde(flatten)]
    cluster: Cluster,
    /// With `explain=true`: the served model's reading of the text, word by word. It may differ from the
    /// stored enrichment when the comment was enriched by another model.
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<Explanation>,
}

/// The stored comment, its enrichment and its cluster of near-duplicates.
#[utoipa::path(get, path = "/v1/comments/{source}/{id}", tag = "comments",
    params(
        ("source" = String, Path, description = "The comment's source, as its producer sent it"),
        ("id" = String, Path, description = "The producer's id of the comment, unique within its source"),
        CommentParams,
    ),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The comment", body = CommentAnswer),
        (status = 404, description = "No such comment", body = ErrorBody),
        (status = 424, description = "The model failed on the comment's text", body = ErrorBody),
        (status = 503, description = "explain=true on a server without the model", body = ErrorBody),
        Refusals,
    ))]
pub(crate) async fn comment(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    Query((params,)): Query<(CommentParams,)>,
) -> Result<HttpResponse, ApiError> {
    let (source, id) = path.into_inner();
    let model = match params.explain {
        true => Some(state.enrich.as_ref().ok_or_else(|| {
            ApiError::NotReady("explain: this server runs without the model, so it cannot explain".into())
        })?),
        false => None,
    };
    let Some(comment) = state.postgres.get_comment(&source, &id, params.embedding).await? else {
        return Err(ApiError::NotFound(format!("no comment {source}/{id}")));
    };
    let key = (source, id);
    let cluster = state.postgres.clusters(std::slice::from_ref(&key)).await?.remove(&key);
    // The comment was deleted between the two reads.
    let Some(cluster) = cluster else { return Err(ApiError::NotFound(format!("no comment {}/{}", key.0, key.1))) };
    let explanation = match model {
        Some(model) => Some(model.explain(comment.text.clone()).await?),
        None => None,
    };
    Ok(HttpResponse::Ok().json(CommentAnswer { comment, cluster, explanation }))
}
