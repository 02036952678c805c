use actix_web::{error::InternalError, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use murmur_core::SentimentLabel;
use murmur_search::{EntityFilter, SearchQuery};
use serde::Deserialize;
use serde_json::json;

use crate::{ApiError, AppState};

const MAX_LIMIT: usize = 100;
const MAX_OFFSET: usize = 10_000;
const MAX_ENRICH_TEXT_BYTES: usize = 100_000;
const MAX_ENRICH_BODY_BYTES: usize = 8 * 1024 * 1024;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        InternalError::from_response(e.to_string(), ApiError::BadRequest(e.to_string()).into()).into()
    }))
    .app_data(web::JsonConfig::default().limit(MAX_ENRICH_BODY_BYTES).error_handler(|e, _| {
        InternalError::from_response(e.to_string(), ApiError::BadRequest(e.to_string()).into()).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|e, _| {
        InternalError::from_response(e.to_string(), ApiError::BadRequest(e.to_string()).into()).into()
    }))
    .route("/", web::get().to(search_page))
    .route("/healthz", web::get().to(healthz))
    .route("/readyz", web::get().to(readyz))
    .service(
        web::scope("/v1")
            .route("/search", web::get().to(search))
            .route("/enrich", web::post().to(enrich))
            .route("/comments/{source}/{id}", web::get().to(comment)),
    )
    .default_service(web::to(not_found));
}

impl From<ApiError> for HttpResponse {
    fn from(e: ApiError) -> Self {
        actix_web::ResponseError::error_response(&e)
    }
}

/// A small search page, built into the binary (no CDN).
async fn search_page() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(include_str!("../assets/index.html"))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready when Postgres answers and the index is open.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.postgres.ping().await.map_err(|e| ApiError::NotReady(format!("postgres: {e}")))?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready", "indexed": state.index.num_docs() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    q: String,
    source: Option<String>,
    sentiment: Option<SentimentLabel>,
    entity: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<usize>,
    offset: Option<usize>,
    #[serde(default)]
    facets: bool,
}

/// `GET /v1/search?q=…[&source=…][&sentiment=negative|neutral|positive][&entity=ORG:Google|ORG|Google]
/// [&from=RFC3339][&to=RFC3339][&limit=10][&offset=0][&facets=true]`: BM25 over the text; with `facets`,
/// counts per sentiment and the most mentioned entities over everything that matches.
async fn search(state: web::Data<AppState>, params: web::Query<SearchParams>) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    if p.q.trim().is_empty() {
        return Err(ApiError::BadRequest("q must not be empty".into()));
    }
    let limit = p.limit.unwrap_or(10);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!("limit must be 1-{MAX_LIMIT}")));
    }
    let offset = p.offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::BadRequest(format!("offset must be at most {MAX_OFFSET}")));
    }
    let entity = match p.entity.as_deref() {
        None => None,
        Some(raw) => Some(EntityFilter::parse(raw).ok_or_else(|| {
            ApiError::BadRequest("entity must be TYPE:name, TYPE (PER, ORG, LOC, MISC) or a name".into())
        })?),
    };
    let query = SearchQuery {
        q: p.q,
        source: p.source,
        sentiment: p.sentiment,
        entity,
        from: p.from,
        to: p.to,
        limit,
        offset,
        facets: p.facets,
    };
    let index = state.index.clone();
    let results = web::block(move || index.search(&query)).await.map_err(|_| ApiError::Internal)??;
    Ok(HttpResponse::Ok().json(results))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentParams {
    #[serde(default)]
    embedding: bool,
}

/// `GET /v1/comments/{source}/{id}[?embedding=true]`: the stored comment and its enrichment.
async fn comment(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    params: web::Query<CommentParams>,
) -> Result<HttpResponse, ApiError> {
    let (source, id) = path.into_inner();
    match state.postgres.get_comment(&source, &id, params.embedding).await? {
        Some(comment) => Ok(HttpResponse::Ok().json(comment)),
        None => Err(ApiError::NotFound(format!("no comment {source}/{id}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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
    state: web::Data<AppState>,
    body: web::Json<EnrichRequest>,
    params: web::Query<EnrichParams>,
) -> Result<HttpResponse, ApiError> {
    let service = state.enrich.as_ref().ok_or_else(|| ApiError::NotReady("enrichment is off on this server".into()))?;
    let texts = body.into_inner().texts;
    if texts.is_empty() || texts.len() > service.max_texts() {
        return Err(ApiError::BadRequest(format!("texts must hold 1-{} strings", service.max_texts())));
    }
    if let Some(i) = texts.iter().position(|t| t.trim().is_empty() || t.len() > MAX_ENRICH_TEXT_BYTES) {
        return Err(ApiError::BadRequest(format!(
            "texts[{i}] must be non-blank and at most {MAX_ENRICH_TEXT_BYTES} bytes"
        )));
    }
    let results = service.enrich(texts).await?;
    let results: Vec<serde_json::Value> = results
        .into_iter()
        .map(|e| {
            let mut item = json!({ "sentiment": e.sentiment, "entities": e.entities });
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
