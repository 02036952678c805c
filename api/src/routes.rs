use actix_web::error::{InternalError, JsonPayloadError};
use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, HttpRequest, HttpResponse, Responder};
use chrono::{DateTime, Utc};
use murmur_core::{EmotionLabel, SentimentLabel};
use murmur_search::{EntityFilter, Filters, Fusion, SearchMode, SearchQuery};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Authorized, Read, Write};
use crate::params::{self, Body, Query};
use crate::{dashboard, metrics, openapi, report_routes, trend_routes, ApiError, AppState};

const MAX_LIMIT: i64 = 100;
/// How deep pages go: BM25 ranks on the index; semantic and hybrid rank candidate lists this long.
const MAX_BM25_DEPTH: usize = 10_000;
const MAX_VECTOR_DEPTH: usize = 1_000;
const MAX_ENRICH_TEXT_BYTES: usize = 100_000;
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
    .configure(dashboard::configure);
    route(cfg, Method::GET, "/healthz", healthz);
    route(cfg, Method::GET, "/readyz", readyz);
    route(cfg, Method::GET, "/metrics", metrics::scrape);
    route(cfg, Method::GET, "/openapi.json", openapi::document);
    route(cfg, Method::GET, "/v1/search", search);
    route(cfg, Method::POST, "/v1/enrich", enrich);
    route(cfg, Method::GET, "/v1/comments/{source}/{id}", comment);
    route(cfg, Method::GET, "/v1/trends/timeline", trend_routes::timeline);
    route(cfg, Method::GET, "/v1/trends/share", trend_routes::share);
    route(cfg, Method::GET, "/v1/trends/entities", trend_routes::top_entities);
    route(cfg, Method::GET, "/v1/trends/trending", trend_routes::trending);
    route(cfg, Method::GET, "/v1/trends/spikes", trend_routes::spikes);
    route(cfg, Method::GET, "/v1/trends/examples", trend_routes::examples);
    route(cfg, Method::POST, "/v1/reports/schedules", report_routes::create_schedule);
    route(cfg, Method::GET, "/v1/reports/schedules", report_routes::schedules);
    route(cfg, Method::DELETE, "/v1/reports/schedules/{id}", report_routes::delete_schedule);
    route(cfg, Method::GET, "/v1/reports", report_routes::reports);
    route(cfg, Method::GET, "/v1/reports/{id}", report_routes::report);
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
    assert!(openapi::documents(&method, path), "{method} {path} is served but not in api/assets/openapi.json");
    cfg.route(path, web::method(method).to(handler));
}

impl From<ApiError> for HttpResponse {
    fn from(e: ApiError) -> Self {
        actix_web::ResponseError::error_response(&e)
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready when Postgres answers and the index is open.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.postgres.ping().await.map_err(|e| ApiError::NotReady(format!("postgres: {e}")))?;
    let (in_graph, vectors) = state.index.vector_counts();
    Ok(HttpResponse::Ok().json(json!({
        "status": "ready",
        "indexed": state.index.num_docs(),
        "vectors": { "stored": vectors, "in_graph": in_graph },
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    q: String,
    #[serde(default)]
    mode: SearchMode,
    source: Option<String>,
    sentiment: Option<SentimentLabel>,
    entity: Option<String>,
    tag: Option<String>,
    emotion: Option<String>,
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    to: Option<DateTime<Utc>>,
    limit: Option<i64>,
    cursor: Option<String>,
    #[serde(default)]
    facets: bool,
    #[serde(default)]
    explain: bool,
    bm25_weight: Option<f32>,
    semantic_weight: Option<f32>,
}

/// `GET /v1/search?q=…[&mode=bm25|semantic|hybrid][&source=…][&sentiment=negative|neutral|positive]
/// [&entity=ORG:Google|ORG|Google][&tag=…][&emotion=anger][&from=RFC3339][&to=RFC3339][&limit=10][&cursor=…][&facets=true]
/// [&explain=true][&bm25_weight=1][&semantic_weight=1]`. BM25 reads `q` as tantivy query syntax (a syntax
/// error is a 400 saying where); semantic embeds `q` and ranks the filtered comments by similarity; hybrid
/// fuses both by reciprocal rank with the weights given. `next_cursor` in the answer fetches the next page
/// of the same search.
async fn search(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    params: Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    if p.q.trim().is_empty() {
        return Err(ApiError::BadRequest("q: expected words to search for, got nothing".into()));
    }
    let limit = params::limit(p.limit, 10, MAX_LIMIT)?;
    let entity = match p.entity.as_deref() {
        None => None,
        Some(raw) => Some(EntityFilter::parse(raw).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "entity: expected TYPE:name, TYPE (PER, ORG, LOC, MISC, handle, hashtag) or a name, got {raw:?}"
            ))
        })?),
    };
    let emotion = match p.emotion.as_deref() {
        None => None,
        Some(raw) => Some(EmotionLabel::parse(raw).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "emotion: expected anger, disgust, fear, joy, sadness, surprise or neutral, got {raw:?}"
            ))
        })?),
    };
    let mut fusion = Fusion::default();
    let weights = [
        ("bm25_weight", &mut fusion.bm25_weight, p.bm25_weight),
        ("semantic_weight", &mut fusion.semantic_weight, p.semantic_weight),
    ];
    for (name, weight, value) in weights {
        if let Some(value) = value {
            if !(0.0..=100.0).contains(&value) {
                return Err(ApiError::BadRequest(format!("{name}: expected 0-100, got {value}")));
            }
            *weight = value;
        }
    }
    let filters = Filters {
        source: p.source,
        sentiment: p.sentiment,
        entity,
        tag: p.tag,
        from: p.from,
        to: p.to,
        text: None,
        emotion,
    };
    let fingerprint = cursor::fingerprint(&p.q, p.mode, &filters, fusion);
    let offset = match p.cursor.as_deref() {
        None => 0,
        Some(raw) => cursor::decode(raw, fingerprint).ok_or_else(|| {
            ApiError::BadRequest("cursor: not one this search returned (it belongs to another query)".into())
        })?,
    };
    let deepest = if p.mode == SearchMode::Bm25 { MAX_BM25_DEPTH } else { MAX_VECTOR_DEPTH };
    if offset + limit > deepest {
        return Err(ApiError::BadRequest(format!("{} results go at most {deepest} deep", p.mode.as_str())));
    }
    let embedding = if p.mode.needs_embedding() {
        let service = state.enrich.as_ref().ok_or_else(|| {
            ApiError::NotReady(format!("{} search needs the encoder, which is off on this server", p.mode.as_str()))
        })?;
        Some(service.embed(p.q.clone()).await?)
    } else {
        None
    };
    let query = SearchQuery {
        q: p.q,
        mode: p.mode,
        embedding,
        filters,
        limit,
        offset,
        facets: p.facets,
        explain: p.explain,
        fusion,
    };
    let index = state.index.clone();
    let results = web::block(move || index.search(&query)).await.map_err(|_| ApiError::Internal)??;
    let covered = if p.mode == SearchMode::Bm25 { results.total } else { results.total.min(deepest) };
    let next = offset + results.hits.len();
    let next_cursor =
        (results.hits.len() == limit && next < covered && next < deepest).then(|| cursor::encode(next, fingerprint));
    let mut body = serde_json::to_value(&results).map_err(|_| ApiError::Internal)?;
    body["next_cursor"] = json!(next_cursor);
    Ok(HttpResponse::Ok().json(body))
}

/// Opaque page cursors: the next offset, bound to the search it belongs to (a cursor from another query is
/// refused rather than silently paging something else). Pages are computed afresh: comments indexed between
/// two pages can shift what a page holds.
mod cursor {
    use murmur_search::{Filters, Fusion, SearchMode};

    /// FNV-1a over everything that decides the ranking, stable across processes and restarts.
    pub fn fingerprint(q: &str, mode: SearchMode, filters: &Filters, fusion: Fusion) -> u64 {
        let canonical = format!("{q}\u{0}{}\u{0}{filters:?}\u{0}{fusion:?}", mode.as_str());
        murmur_core::hash::fnv1a(canonical.as_bytes())
    }

    pub fn encode(offset: usize, fingerprint: u64) -> String {
        format!("{offset:x}-{fingerprint:016x}")
    }

    pub fn decode(raw: &str, fingerprint: u64) -> Option<usize> {
        let (offset, print) = raw.split_once('-')?;
        (u64::from_str_radix(print, 16).ok()? == fingerprint).then_some(())?;
        usize::from_str_radix(offset, 16).ok()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentParams {
    #[serde(default)]
    embedding: bool,
}

/// `GET /v1/comments/{source}/{id}[?embedding=true]`: the stored comment and its enrichment.
async fn comment(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    params: Query<CommentParams>,
) -> Result<HttpResponse, ApiError> {
    let (source, id) = path.into_inner();
    match state.postgres.get_comment(&source, &id, params.embedding).await? {
        Some(comment) => Ok(HttpResponse::Ok().json(comment)),
        None => Err(ApiError::NotFound(format!("no comment {source}/{id}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = r#"an object like {"texts": ["a comment", …]}"#)]
struct EnrichRequest {
    texts: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrichParams {
    #[serde(default)]
    embedding: bool,
}

/// `POST /v1/enrich[?embedding=true]` with `{"texts": [...]}`: the enrichment of each text, in order, without
/// storing anything. 429 when the model queue is full.
async fn enrich(
    _: Authorized<Write>,
    state: web::Data<AppState>,
    body: Body<EnrichRequest>,
    params: Query<EnrichParams>,
) -> Result<HttpResponse, ApiError> {
    let service = state.enrich.as_ref().ok_or_else(|| ApiError::NotReady("enrichment is off on this server".into()))?;
    let texts = body.into_inner().texts;
    if texts.is_empty() || texts.len() > service.max_texts() {
        return Err(ApiError::BadRequest(format!(
            "texts: expected 1-{} strings, got {}",
            service.max_texts(),
            texts.len()
        )));
    }
    if let Some(i) = texts.iter().position(|t| t.trim().is_empty() || t.len() > MAX_ENRICH_TEXT_BYTES) {
        return Err(ApiError::BadRequest(format!(
            "texts[{i}]: expected a non-blank text of at most {MAX_ENRICH_TEXT_BYTES} bytes"
        )));
    }
    let results = service.enrich(texts).await?;
    let results: Vec<serde_json::Value> = results
        .into_iter()
        .map(|e| {
            let entities = e.entities.map(|list| {
                list.iter()
                    .map(|entity| {
                        let mut value = json!(entity);
                        value["name"] = json!(entity.name());
                        value
                    })
                    .collect::<Vec<_>>()
            });
            let mut item = json!({ "sentiment": e.sentiment, "emotion": e.emotion, "entities": entities });
            if params.embedding {
                item["embedding"] = json!(e.embedding);
            }
            item
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "model": service.model(), "results": results })))
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
