//! The HTTP API. Handlers parse, call the store or the index, and map errors in one place ([`ApiError`]);
//! every error is JSON: `{"error": {"code": "...", "message": "..."}}`. Overload is a 429, never an
//! unbounded queue ([`EnrichService`]).

mod enrich_service;
mod error;
mod routes;

use std::net::SocketAddr;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use murmur_search::SearchIndex;
use murmur_store::Postgres;

pub use enrich_service::EnrichService;
pub use error::ApiError;

/// What the handlers read from.
#[derive(Clone)]
pub struct AppState {
    pub postgres: Postgres,
    pub index: SearchIndex,
    /// `POST /v1/enrich`; `None` answers 503.
    pub enrich: Option<EnrichService>,
}

/// Binds the API on `addr` (port 0 picks a free port) and returns the server, to be awaited, with the
/// address it listens on.
pub fn bind(state: AppState, addr: SocketAddr, workers: usize) -> std::io::Result<(Server, SocketAddr)> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(routes::configure))
        .workers(workers.max(1))
        .shutdown_timeout(5)
        .bind(addr)?;
    let bound = server.addrs().first().copied().unwrap_or(addr);
    Ok((server.run(), bound))
}
