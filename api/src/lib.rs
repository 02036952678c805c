//! The HTTP API. Handlers parse, call the store or the index, and map errors in one place ([`ApiError`]);
//! every error is JSON: `{"error": {"code": "...", "message": "..."}}`. Overload is a 429, never an
//! unbounded queue ([`EnrichService`]).

mod auth;
mod dashboard;
mod enrich_service;
mod error;
mod metrics;
pub mod openapi;
mod report_routes;
mod routes;
mod trend_routes;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use murmur_search::SearchIndex;
use murmur_store::Postgres;
use murmur_trends::Trends;

pub use auth::ApiKeys;
pub use enrich_service::EnrichService;
pub use error::ApiError;
pub use metrics::{LagProbe, Metrics};

/// What the handlers read from.
#[derive(Clone)]
pub struct AppState {
    pub postgres: Postgres,
    pub index: SearchIndex,
    /// `POST /v1/enrich`; `None` answers 503.
    pub enrich: Option<EnrichService>,
    pub trends: Trends,
    pub keys: ApiKeys,
    pub metrics: Metrics,
    /// Consumer lag for `/metrics`, where the server knows the broker.
    pub lag: Option<Arc<dyn LagProbe>>,
}

impl AppState {
    pub fn new(postgres: Postgres, index: SearchIndex, enrich: Option<EnrichService>, keys: ApiKeys) -> Self {
        let trends = Trends::new(postgres.clone(), index.clone());
        Self { postgres, index, enrich, trends, keys, metrics: Metrics::new(), lag: None }
    }
}

/// Binds the API on `addr` (port 0 picks a free port) and returns the server, to be awaited, with the
/// address it listens on.
pub fn bind(state: AppState, addr: SocketAddr, workers: usize) -> std::io::Result<(Server, SocketAddr)> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(actix_web::middleware::from_fn(metrics::track))
            // gzip where the client asks for it (charts and search pages shrink several times).
            .wrap(actix_web::middleware::Compress::default())
            .configure(routes::configure)
    })
    .workers(workers.max(1))
    .shutdown_timeout(5)
    .bind(addr)?;
    let bound = server.addrs().first().copied().unwrap_or(addr);
    Ok((server.run(), bound))
}

/// FNV-1a: a hash that is the same in every process and release (cursors, ETags), not a secure one.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
