//! `/docs`: Swagger UI over [`crate::openapi`]'s document. Its files come from the Swagger UI release the
//! `utoipa-swagger-ui` crate vendors (no CDN at run time) and are served with a strict content security
//! policy, like the dashboard's.

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};
use utoipa_swagger_ui::Config;

use crate::ApiError;

/// Only this server's own scripts, styles and API; images may also be inline `data:` (Swagger UI's icons).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    let config = Arc::new(Config::from("/openapi.json"));
    cfg.app_data(web::Data::from(config))
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/docs/")).finish()
            }),
        )
        .route("/docs/{file:.*}", web::get().to(file));
}

async fn file(name: web::Path<String>, config: web::Data<Config<'static>>) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let file = utoipa_swagger_ui::serve(&name, config.into_inner()).map_err(|e| {
        tracing::error!(error = %e, file = %name, "docs: swagger ui file unreadable");
        ApiError::Internal
    })?;
    let file = file.ok_or_else(|| ApiError::NotFound(format!("no docs file {name:?}")))?;
    Ok(HttpResponse::Ok()
        .content_type(file.content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .body(match file.bytes {
            // The vendored files are in the binary: served from there, not copied per request (the bundle is 1.5 MB).
            Cow::Borrowed(bytes) => web::Bytes::from_static(bytes),
            Cow::Owned(bytes) => web::Bytes::from(bytes),
        }))
}
