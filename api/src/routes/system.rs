//! Liveness and readiness, for probes (open, never rate limited). `/metrics` and `/openapi.json` are the
//! other system routes; they live with what they serve ([`crate::metrics`], [`crate::openapi`]).

use std::sync::atomic::Ordering::Relaxed;

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
    copies: CopyStatus,
    themes: ThemeStatus,
    rollups: RollupStatus,
}

/// Finding themes: the queue all processes share, and this process's themer where it runs one.
#[derive(Serialize, ToSchema)]
pub(crate) struct ThemeStatus {
    /// Comments stored but not yet given a theme.
    queued: i64,
    /// Whether this process finds themes now (one process at a time does); absent where it runs no themer.
    #[serde(skip_serializing_if = "Option::is_none")]
    finding: Option<bool>,
    /// Comments in its window, comments it gave a theme (or none) and re-clusterings since it started, and how
    /// long the last re-clustering took.
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    observed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reclusterings: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_recluster_ms: Option<u64>,
}

/// Trend rollups: stored comments' deltas the writers logged and no folder has folded yet (every trend read
/// folds them first, so answers do not wait for a folder; a growing number means no folder keeps up).
#[derive(Serialize, ToSchema)]
pub(crate) struct RollupStatus {
    pending: i64,
}

/// Finding near-duplicates: the queue all processes share, and this process's finder where it runs one.
#[derive(Serialize, ToSchema)]
pub(crate) struct CopyStatus {
    /// Comments stored but not yet compared (they count as originals meanwhile).
    queued: i64,
    /// Whether this process finds copies now (one process at a time does); absent where it runs no finder.
    #[serde(skip_serializing_if = "Option::is_none")]
    finding: Option<bool>,
    /// Originals this process holds to compare with, comments it compared and copies it found since it
    /// started finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    originals: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compared: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    found: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct VectorCounts {
    /// Embeddings stored beside the index.
    stored: usize,
    /// Of those, the ones the HNSW graph holds (the rest are searched exactly until the graph catches up).
    in_graph: usize,
    /// Embeddings taken out of the graph again because their comments were deleted, replaced or expired.
    removed: usize,
    /// `ready`: semantic searches use the graph; `loading`: the graph is being loaded or built, and
    /// semantic searches compare every vector meanwhile (exact, slower at scale; each answer says
    /// `"ann": "exact"`).
    #[schema(example = "ready")]
    graph: &'static str,
}

/// Ready when Postgres answers and the index is open.
#[utoipa::path(get, path = "/readyz", tag = "system", responses(
    (status = 200, description = "Postgres answers and the index is open", body = Readiness),
    (status = 503, description = "Postgres does not answer", body = ErrorBody),
))]
pub(crate) async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.postgres.ping().await.map_err(|e| ApiError::NotReady(format!("postgres: {e}")))?;
    let graph = state.index.graph_status();
    let finder = state.copy_finder.as_deref();
    let themer = state.themer.as_deref();
    Ok(HttpResponse::Ok().json(Readiness {
        status: "ready",
        indexed: state.index.num_docs(),
        vectors: VectorCounts {
            stored: graph.stored,
            in_graph: graph.in_graph,
            removed: graph.removed,
            graph: if graph.ready { "ready" } else { "loading" },
        },
        brand_rematch: super::brands::RematchStatus::of(&state),
        copies: CopyStatus {
            queued: state.postgres.copies_queued().await.map_err(|e| ApiError::NotReady(format!("postgres: {e}")))?,
            finding: finder.map(|p| p.leading.load(Relaxed)),
            originals: finder.map(|p| p.originals.load(Relaxed)),
            compared: finder.map(|p| p.checked.load(Relaxed)),
            found: finder.map(|p| p.copies.load(Relaxed)),
        },
        themes: ThemeStatus {
            queued: state.postgres.themes_queued().await.map_err(|e| ApiError::NotReady(format!("postgres: {e}")))?,
            finding: themer.map(|p| p.leading.load(Relaxed)),
            window: themer.map(|p| p.window.load(Relaxed)),
            observed: themer.map(|p| p.observed.load(Relaxed)),
            reclusterings: themer.map(|p| p.reclusterings.load(Relaxed)),
            last_recluster_ms: themer.map(|p| p.last_recluster_ms.load(Relaxed)),
        },
        rollups: RollupStatus {
            pending: state
                .postgres
                .rollups_pending()
                .await
                .map_err(|e| ApiError::NotReady(format!("postgres: {e}")))?,
        },
    }))
}
