//! Liveness and readiness, for probes (open, never rate limited). `/metrics` and `/openapi.json` are the
//! other system routes; they live with what they serve ([`crate::metrics`], [`crate::openapi`]).

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ErrorBody;
use crate::{ApiError, AppState};

#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "Alive", body = Health)))]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// Always `ready`.
    status: &'static str,
    /// Comments in the search index.
    indexed: u64,
    vectors: VectorCounts,
    /// Re-matching stored comments after a brand catalogue change, where this server runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    brand_rematch: Option<super::brands::RematchStatus>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct VectorCounts {
    /// Embeddings stored beside the index.
    stored: usize,
    /// Of those, the ones the HNSW graph holds (the rest are searched exactly until the graph catches up).
    in_graph: usize,
}

/// Ready when Postgres answers and the index is open.
#[utoipa::path(get, path = "/readyz", tag = "system", responses(
    (status = 200, description = "Postgres answers and the index is open", body = Readiness),
    (status = 503, description = "Postgres does not answer", body = ErrorBody),
))]
pub(crate) async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.postgres.ping().await.map_err(|e| ApiError::NotReady(format!("postgres: {e}")))?;
    let (in_graph, stored) = state.index.vector_counts();
    Ok(HttpResponse::Ok().json(Readiness {
        status: "ready",
        indexed: state.index.num_docs(),
        vectors: VectorCounts { stored, in_graph },
        brand_rematch: super::brands::RematchStatus::of(&state),
    }))
}
