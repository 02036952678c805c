//! The OpenAPI 3.1 document (`api/assets/openapi.json`), served at `GET /openapi.json`. Every route the
//! server registers must be in it ([`documents`], asserted at startup); the tests check the converse by
//! calling every documented operation.

use std::sync::OnceLock;

use actix_web::http::Method;
use actix_web::HttpResponse;

const DOCUMENT: &str = include_str!("../assets/openapi.json");

fn parsed() -> &'static serde_json::Value {
    static PARSED: OnceLock<serde_json::Value> = OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(DOCUMENT).expect("api/assets/openapi.json is valid JSON"))
}

/// Whether the document describes `method path` (paths as registered, `{param}` style).
pub fn documents(method: &Method, path: &str) -> bool {
    parsed()["paths"][path][method.as_str().to_lowercase()].is_object()
}

pub(crate) async fn document() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(DOCUMENT)
}
