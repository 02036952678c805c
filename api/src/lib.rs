//! The HTTP API. Handlers parse, call the store or the index, and map errors in one place ([`ApiError`]);
//! every error is JSON: `{"error": {"code": "...", "message": "..."}}`. Overload is a 429, never an
//! unbounded queue (the model is served by one bounded [`murmur_core::ModelQueue`]).

pub mod admin;
mod auth;
mod dashboard;
pub mod deleter;
mod docs;
mod error;
mod metrics;
pub mod openapi;
mod params;
mod rate_limit;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use murmur_core::ModelQueue;
use murmur_search::SearchIndex;
use murmur_store::{CopyProgress, Postgres, Rematcher, ThemeProgress};
use murmur_trends::Trends;

pub use auth::ApiKeys;
pub use deleter::{Deleter, Eraser, ErasureOptions};
pub use error::{ApiError, ErrorBody, ErrorCode, ErrorDetail};
pub use metrics::{KafkaLag, LagProbe, Metrics};
pub use rate_limit::{RateLimit, RateLimiter};

/// What the handlers read from.
#[derive(Clone)]
pub struct AppState {
    pub postgres: Postgres,
    pub index: SearchIndex,
    /// The model for `POST /v1/enrich` and query embeddings; `None` answers 503.
    pub enrich: Option<ModelQueue>,
    pub trends: Trends,
    pub keys: ApiKeys,
    pub metrics: Metrics,
    /// Consumer lag for `/metrics`, where the server knows the broker.
    pub lag: Option<Arc<dyn LagProbe>>,
    /// Per-client request limits; `None`: unlimited.
    pub rate_limiter: Option<RateLimiter>,
    /// The background re-matching of stored comments after a brand catalogue change, where this process runs
    /// it (woken by `/v1/brands` changes; its progress in `/readyz`).
    pub rematcher: Option<Rematcher>,
    /// The copy finder's progress, where this process runs one (in `/readyz`).
    pub copy_finder: Option<Arc<CopyProgress>>,
    /// The themer's progress, where this process runs one (in `/readyz`).
    pub themer: Option<Arc<ThemeProgress>>,
    /// How comments are deleted and authors erased; `None` (no broker for tombstones) answers 503.
    pub deleter: Option<Deleter>,
}

impl AppState {
    pub fn new(postgres: Postgres, index: SearchIndex, enrich: Option<ModelQueue>, keys: ApiKeys) -> Self {
        let trends = Trends::new(postgres.clone(), index.clone());
        Self {
            postgres,
            index,
            enrich,
            trends,
            keys,
            metrics: Metrics::new(),
            lag: None,
            rate_limiter: None,
            rematcher: None,
            copy_finder: None,
            themer: None,
            deleter: None,
        }
    }
}

/// Binds the API on `addr` (port 0 picks a free port) and returns the server, to be awaited, with the
/// address it listens on.
pub fn bind(state: AppState, addr: SocketAddr, workers: usize) -> std::io::Result<(Server, SocketAddr)> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(actix_web::middleware::from_fn(params::refuse_long_uri))
            .wrap(actix_web::middleware::from_fn(rate_limit::enforce))
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
