//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` attributes and the types they
//! read and answer with: parameters and their limits, request bodies, every response with its schema, the
//! error body, the scope each operation needs. Served at `GET /openapi.json` and drawn at `/docs`. Every
//! route the server registers must be in it ([`documents`], asserted as routes are registered); the HTTP
//! tests check the converse and validate every answer they get against it.

use std::sync::OnceLock;

use actix_web::http::Method;
use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::{metrics, routes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "murmur",
        description = "Market feedback from what people write: search, trends and reports over enriched comments, \
            and the models' reading of any text. Errors are `{\"error\": {\"code\", \"message\"}}` with the \
            parameter or field at fault named in the message. With API keys configured, every `/v1` operation \
            needs one (`X-API-Key` or `Authorization: Bearer`) whose scope (read < write < admin) covers it."
    ),
    paths(
        routes::system::healthz,
        routes::system::readyz,
        metrics::scrape,
        serve,
        routes::search::search,
        routes::enrich::enrich,
        routes::comments::comment,
        routes::privacy::delete_comment,
        routes::privacy::erase,
        routes::privacy::erasure,
        routes::trends::timeline,
        routes::trends::share,
        routes::trends::top_entities,
        routes::trends::trending,
        routes::trends::spikes,
        routes::trends::examples,
        routes::brands::brands,
        routes::brands::create_brand,
        routes::brands::brand,
        routes::brands::put_brand,
        routes::brands::delete_brand,
        routes::aspects::aspects,
        routes::themes::themes,
        routes::themes::theme,
        routes::alerts::create_rule,
        routes::alerts::rules,
        routes::alerts::delete_rule,
        routes::alerts::alerts,
        routes::reports::create_schedule,
        routes::reports::schedules,
        routes::reports::delete_schedule,
        routes::reports::reports,
        routes::reports::report,
    ),
    tags(
        (name = "system", description = "Probes, metrics and this document (open, no key)"),
        (name = "search", description = "Full-text, semantic and hybrid search over the comments"),
        (name = "comments", description = "One stored comment"),
        (name = "enrich", description = "The models' reading of texts you send"),
        (name = "trends", description = "Volume, sentiment, share of voice, entities and spikes over time"),
        (name = "aspects", description = "What comments like and dislike: aspect terms and the sentiment toward each"),
        (name = "themes", description = "What comments talk about, found from their meaning as they arrive: keywords, sentiment, growth, history"),
        (name = "brands", description = "The brands comments are matched against: aliases, handles, hashtags, exclusions, groups"),
        (name = "alerts", description = "Alert rules on slices (spikes, thresholds, trending entities) and the alerts they pushed"),
        (name = "reports", description = "Scheduled reports and their webhooks"),
        (name = "privacy", description = "Deleting comments and erasing authors, everywhere (admin keys)"),
    ),
    modifiers(&KeyScheme),
)]
struct Document;

/// API keys: the security requirement of each operation lists the scope it needs.
struct KeyScheme;

impl Modify for KeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let key = ApiKeyValue::with_description(
            "X-API-Key",
            "A key of the scope the operation lists (read < write < admin); `Authorization: Bearer <key>` works too",
        );
        components.add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(key)));
    }
}

/// The document, as served.
pub fn document() -> &'static serde_json::Value {
    static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::to_value(Document::openapi()).unwrap_or_default())
}

/// Whether the document describes `method path` (paths as registered, `{param}` style).
pub fn documents(method: &Method, path: &str) -> bool {
    document()["paths"][path][method.as_str().to_lowercase()].is_object()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "system", operation_id = "openapi", responses(
    (status = 200, description = "The OpenAPI 3.1 document", body = Object),
    (status = 429, description = "Over this client's request rate", body = ErrorBody),
))]
pub(crate) async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Each operation has its own id, a tag, a summary and a described answer for every status; every `/v1`
    /// operation names the key scope it needs, and nothing else does.
    #[test]
    fn every_operation_is_identified_tagged_and_scoped() {
        let document = super::document();
        if let Ok(path) = std::env::var("MURMUR_DUMP_OPENAPI") {
            std::fs::write(path, serde_json::to_string_pretty(document).expect("json")).expect("write");
        }
        let mut ids = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                let id = operation["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_owned()), "{method} {path}: operation id {id} used twice");
                assert_eq!(operation["tags"].as_array().map(Vec::len), Some(1), "{method} {path}: one tag");
                assert!(operation["summary"].is_string(), "{method} {path}: a summary");
                let scopes = &operation["security"][0]["api_key"];
                assert_eq!(path.starts_with("/v1/"), scopes.is_array(), "{method} {path}: a scope on /v1 only");
                for (status, response) in operation["responses"].as_object().expect("responses") {
                    assert!(
                        response["description"].as_str().is_some_and(|d| !d.is_empty()),
                        "{method} {path} {status}"
                    );
                }
            }
        }
        assert_eq!(ids.len(), 33);
    }

    /// Every `$ref` points at a schema the document holds (a parameter's enumeration is easily left out).
    #[test]
    fn every_reference_resolves() {
        fn walk(value: &serde_json::Value, at: &str, document: &serde_json::Value) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(target) = map.get("$ref").and_then(|r| r.as_str()) {
                        let pointer = target.strip_prefix('#').unwrap_or(target);
                        assert!(document.pointer(pointer).is_some(), "{at}: {target} is not in the document");
                    }
                    map.iter().for_each(|(key, v)| walk(v, &format!("{at}/{key}"), document));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, at, document)),
                _ => {}
            }
        }
        let document = super::document();
        walk(document, "", document);
    }
}
