//! The route table. Each resource's handlers, parameter types and answer types live in their own module;
//! every route registered here must be in the generated OpenAPI document ([`crate::openapi`]).

pub(crate) mod alerts;
pub(crate) mod aspects;
pub(crate) mod brands;
pub(crate) mod comments;
pub(crate) mod enrich;
pub(crate) mod privacy;
pub(crate) mod reports;
pub(crate) mod search;
pub(crate) mod system;
pub(crate) mod themes;
pub(crate) mod trends;

use actix_web::error::{InternalError, JsonPayloadError};
use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, HttpRequest, HttpResponse, Responder};

use crate::{dashboard, docs, metrics, openapi, ApiError};

/// Largest JSON body of any route (64 texts of 100 KB fit).
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().limit(MAX_BODY_BYTES).error_handler(|e, _| {
        let error = match &e {
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                ApiError::TooLarge(format!("{e} (bodies are limited to {MAX_BODY_BYTES} bytes)"))
            }
            _ => ApiError::BadRequest(e.to_string()),
        };
        InternalError::from_response(e.to_string(), error.into()).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|e, _| {
        InternalError::from_response(e.to_string(), ApiError::BadRequest(e.to_string()).into()).into()
    }))
    .configure(dashboard::configure)
    .configure(docs::configure);
    route(cfg, Method::GET, "/healthz", system::healthz);
    route(cfg, Method::GET, "/readyz", system::readyz);
    route(cfg, Method::GET, "/metrics", metrics::scrape);
    route(cfg, Method::GET, "/openapi.json", openapi::serve);
    route(cfg, Method::GET, "/v1/search", search::search);
    route(cfg, Method::POST, "/v1/enrich", enrich::enrich);
    route(cfg, Method::GET, "/v1/comments/{source}/{id}", comments::comment);
    route(cfg, Method::DELETE, "/v1/comments/{source}/{id}", privacy::delete_comment);
    route(cfg, Method::POST, "/v1/erasure", privacy::erase);
    route(cfg, Method::GET, "/v1/erasure/{id}", privacy::erasure);
    route(cfg, Method::GET, "/v1/trends/timeline", trends::timeline);
    route(cfg, Method::GET, "/v1/trends/share", trends::share);
    route(cfg, Method::GET, "/v1/trends/entities", trends::top_entities);
    route(cfg, Method::GET, "/v1/trends/trending", trends::trending);
    route(cfg, Method::GET, "/v1/trends/spikes", trends::spikes);
    route(cfg, Method::GET, "/v1/trends/examples", trends::examples);
    route(cfg, Method::GET, "/v1/brands", brands::brands);
    route(cfg, Method::POST, "/v1/brands", brands::create_brand);
    route(cfg, Method::GET, "/v1/brands/{name}", brands::brand);
    route(cfg, Method::PUT, "/v1/brands/{name}", brands::put_brand);
    route(cfg, Method::DELETE, "/v1/brands/{name}", brands::delete_brand);
    route(cfg, Method::GET, "/v1/aspects", aspects::aspects);
    route(cfg, Method::GET, "/v1/themes", themes::themes);
    route(cfg, Method::GET, "/v1/themes/{id}", themes::theme);
    route(cfg, Method::POST, "/v1/alerts/rules", alerts::create_rule);
    route(cfg, Method::GET, "/v1/alerts/rules", alerts::rules);
    route(cfg, Method::DELETE, "/v1/alerts/rules/{id}", alerts::delete_rule);
    route(cfg, Method::GET, "/v1/alerts", alerts::alerts);
    route(cfg, Method::POST, "/v1/reports/schedules", reports::create_schedule);
    route(cfg, Method::GET, "/v1/reports/schedules", reports::schedules);
    route(cfg, Method::DELETE, "/v1/reports/schedules/{id}", reports::delete_schedule);
    route(cfg, Method::GET, "/v1/reports", reports::reports);
    route(cfg, Method::GET, "/v1/reports/{id}", reports::report);
    cfg.default_service(web::to(not_found));
}

/// Registers an API route; every one must be in the OpenAPI document (checked as the server starts, and
/// the other way round by the tests), so the document cannot drift from what is served.
fn route<F, Args>(cfg: &mut web::ServiceConfig, method: Method, path: &str, handler: F)
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    assert!(openapi::documents(&method, path), "{method} {path} is served but has no #[utoipa::path] in the document");
    cfg.route(path, web::method(method).to(handler));
}

impl From<ApiError> for HttpResponse {
    fn from(e: ApiError) -> Self {
        actix_web::ResponseError::error_response(&e)
    }
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    ApiError::NotFound(format!("no route for {} {}", request.method(), request.path())).into()
}

#[cfg(test)]
mod tests {
    /// `route` asserts each registration against the OpenAPI document: configuring the app is the test.
    #[actix_web::test]
    async fn every_route_is_in_the_openapi_document() {
        actix_web::test::init_service(actix_web::App::new().configure(super::configure)).await;
        assert!(!crate::openapi::documents(&super::Method::GET, "/v1/undocumented"));
    }
}
