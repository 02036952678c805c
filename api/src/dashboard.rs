//! The dashboard: static files built into the binary (no CDN, no build step), served with a strict content
//! security policy. The page is a client of the public API; see `assets/dashboard/app.js`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

use murmur_core::hash::fnv1a;

use crate::ApiError;

/// What the page may load: only this server's own scripts, styles, images and API.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// (name, content type, content)
const FILES: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", include_str!("../assets/dashboard/app.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("../assets/dashboard/style.css")),
    ("favicon.svg", "image/svg+xml", include_str!("../assets/dashboard/favicon.svg")),
];

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(page)).route("/dashboard/{file}", web::get().to(file));
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .body(include_str!("../assets/dashboard/index.html"))
}

/// The page's scripts, styles and icon, revalidated on each load (`no-cache` with an ETag), so a new
/// release is picked up at once and an unchanged one costs a 304.
async fn file(request: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (_, content_type, body) = FILES
        .iter()
        .find(|(file, _, _)| *file == name.as_str())
        .ok_or_else(|| ApiError::NotFound(format!("no dashboard file {name:?}")))?;
    let etag = format!("\"{:016x}\"", fnv1a(body.as_bytes()));
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")));
    Ok(if fresh { response.finish() } else { response.content_type(*content_type).body(*body) })
}
