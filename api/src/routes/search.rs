//! `GET /v1/search`: BM25, semantic or hybrid search over the comments, with filters, facets and cursors.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use murmur_core::{EmotionLabel, ModelQueue, SentimentLabel};
use murmur_search::{
    EntityFilter, Filters, Fusion, SearchHit, SearchMode, SearchQuery, SearchResults, VectorModels, RANK_WINDOW,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Authorized, Read};
use crate::error::{ErrorBody, Refusals};
use crate::params::{self, Query};
use crate::{ApiError, AppState};

const MAX_LIMIT: i64 = 100;
/// How deep BM25 pages go (semantic and hybrid pages go [`RANK_WINDOW`] deep).
const MAX_BM25_DEPTH: usize = 10_000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchParams {
    /// What to search for: tantivy query syntax for BM25 (`refund AND -shipping`, `"battery life"`), plain
    /// words for semantic search.
    q: String,
    #[serde(default)]
    mode: SearchMode,
    /// Only comments from this source (`twitter`).
    source: Option<String>,
    sentiment: Option<SentimentLabel>,
    /// `TYPE:name` (`ORG:Google`), a type (`PER`, `ORG`, `LOC`, `MISC`, `handle`, `hashtag`) or a name.
    entity: Option<String>,
    /// Only comments with this producer tag.
    tag: Option<String>,
    /// Only comments the model found this emotion in.
    #[param(value_type = Option<EmotionLabel>)]
    emotion: Option<String>,
    /// Only comments in this language (`en`, `fr`, `und` for undetermined): the detected language where the
    /// detector was at least 0.5 confident, else the producer's `lang`.
    lang: Option<String>,
    /// Comments created at or after this time (RFC 3339).
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    from: Option<DateTime<Utc>>,
    /// Comments created before this time (RFC 3339).
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    to: Option<DateTime<Utc>>,
    /// Hits per page (1-100, 10 by default).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page of the same search.
    cursor: Option<String>,
    /// Count sentiment, emotions and entities over every match.
    #[serde(default)]
    facets: bool,
    /// Say how each score was reached.
    #[serde(default)]
    explain: bool,
    /// Weight of the BM25 ranking in hybrid fusion (0-100, 1 by default).
    #[param(minimum = 0, maximum = 100)]
    bm25_weight: Option<f32>,
    /// Weight of the semantic ranking in hybrid fusion (0-100, 1 by default).
    #[param(minimum = 0, maximum = 100)]
    semantic_weight: Option<f32>,
    /// Show each cluster of near-duplicates (retweets, copy-paste) once, as its original where it matched,
    /// else as its best-ranked copy, with `cluster_size`; pages then go at most 1,000 hits deep.
    #[serde(default)]
    collapse: bool,
}

/// A page of hits.
#[derive(Serialize, ToSchema)]
pub(crate) struct SearchPage {
    #[serde(flatten)]
    results: SearchResults,
    /// Fetches the next page of the same search; null on the last page.
    next_cursor: Option<String>,
}

/// Search the comments. BM25 reads `q` as tantivy query syntax (a syntax error is a 400 saying where);
/// semantic embeds `q` and ranks the filtered comments by similarity; hybrid fuses both by reciprocal rank
/// with the weights given. `next_cursor` in the answer fetches the next page of the same search.
#[utoipa::path(get, path = "/v1/search", tag = "search", params(SearchParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The page of hits", body = SearchPage),
        (status = 503, description = "Semantic or hybrid search on a server without the encoder", body = ErrorBody),
        (status = 409, description = "Semantic or hybrid search on a server whose query encoder is not the one the \
            index's vectors came from", body = ErrorBody),
        Refusals,
    ))]
pub(crate) async fn search(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    Query((p,)): Query<(SearchParams,)>,
) -> Result<HttpResponse, ApiError> {
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
    if let Some(lang) = &p.lang {
        murmur_core::check_language_key(lang).map_err(|why| ApiError::BadRequest(format!("lang: {why}")))?;
    }
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
        language: p.lang,
    };
    let fingerprint = cursor::fingerprint(&p.q, p.mode, &filters, fusion, p.collapse);
    let offset = match p.cursor.as_deref() {
        None => 0,
        Some(raw) => cursor::decode(raw, fingerprint).ok_or_else(|| {
            ApiError::BadRequest("cursor: not one this search returned (it belongs to another query)".into())
        })?,
    };
    let deepest = if p.mode == SearchMode::Bm25 && !p.collapse { MAX_BM25_DEPTH } else { RANK_WINDOW };
    if offset + limit > deepest {
        return Err(ApiError::BadRequest(format!("{} results go at most {deepest} deep", p.mode.as_str())));
    }
    let vectors = if p.mode.needs_embedding() {
        let service = state.enrich.as_ref().ok_or_else(|| {
            ApiError::NotReady(format!("{} search needs the encoder, which is off on this server", p.mode.as_str()))
        })?;
        let models = state.index.vector_models();
        check_encoders(p.mode, &models, service)?;
        // The multilingual encoder's query vector only where the index holds comments it embedded: it costs tens
        // of milliseconds a query on a CPU.
        Some(service.embed_query(p.q.clone(), models.multilingual.is_some()).await?)
    } else {
        None
    };
    let query = SearchQuery {
        q: p.q,
        mode: p.mode,
        embedding: vectors.as_ref().map(|v| v.encoder.clone()),
        multilingual_embedding: vectors.and_then(|v| v.multilingual),
        filters,
        limit,
        offset,
        facets: p.facets,
        explain: p.explain,
        fusion,
    };
    let (results, more) = if p.collapse {
        collapsed(&state, query).await?
    } else {
        let results = run(&state, query).await?;
        let covered = if p.mode == SearchMode::Bm25 { results.total } else { results.total.min(deepest) };
        let more = results.hits.len() == limit && offset + limit < covered;
        (results, more)
    };
    let next = offset + results.hits.len();
    let next_cursor = (more && next < deepest).then(|| cursor::encode(next, fingerprint));
    Ok(HttpResponse::Ok().json(SearchPage { results, next_cursor }))
}

async fn run(state: &AppState, query: SearchQuery) -> Result<SearchResults, ApiError> {
    let index = state.index.clone();
    web::block(move || index.search(&query)).await.map_err(|_| ApiError::Internal)?.map_err(ApiError::from)
}

/// The page `offset..offset + limit` of the ranking with each cluster of near-duplicates shown once (its
/// original where it matched, else its best-ranked copy, at the rank of its best-ranked member), each hit with
/// its cluster's size, and whether more follow. Reads the ranking four times the page's depth first, and the
/// whole [`RANK_WINDOW`] when copies fill that.
async fn collapsed(state: &AppState, query: SearchQuery) -> Result<(SearchResults, bool), ApiError> {
    let (offset, limit) = (query.offset, query.limit);
    let wanted = offset + limit + 1;
    let mut depth = (4 * wanted).clamp(100, RANK_WINDOW);
    loop {
        let mut results = run(state, SearchQuery { offset: 0, limit: depth, ..query.clone() }).await?;
        let keys: Vec<(String, String)> = results.hits.iter().map(|h| (h.source.clone(), h.id.clone())).collect();
        let originals = state.postgres.originals_of(&keys).await?;
        // Clusters in rank order: (original, positions of its members among the hits).
        let mut clusters: Vec<(&(String, String), Vec<usize>)> = Vec::new();
        let mut slot: std::collections::HashMap<&(String, String), usize> = std::collections::HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            let root = originals.get(key).unwrap_or(key);
            let n = *slot.entry(root).or_insert_with(|| {
                clusters.push((root, Vec::new()));
                clusters.len() - 1
            });
            clusters[n].1.push(i);
        }
        let read_all = results.hits.len() < depth || depth == RANK_WINDOW;
        if clusters.len() < wanted && !read_all {
            depth = RANK_WINDOW;
            continue;
        }
        let more = clusters.len() > offset + limit;
        let shown: Vec<usize> = clusters
            .iter()
            .skip(offset)
            .take(limit)
            .map(|(root, members)| members.iter().copied().find(|&i| keys[i] == **root).unwrap_or(members[0]))
            .collect();
        let page_keys: Vec<(String, String)> = shown.iter().map(|&i| keys[i].clone()).collect();
        let sizes = state.postgres.clusters(&page_keys).await?;
        let mut hits: Vec<Option<SearchHit>> = std::mem::take(&mut results.hits).into_iter().map(Some).collect();
        results.hits = shown
            .iter()
            .filter_map(|&i| {
                let mut hit = hits[i].take()?;
                hit.cluster_size = Some(sizes.get(&keys[i]).map_or(1, |c| c.cluster_size));
                Some(hit)
            })
            .collect();
        return Ok((results, more));
    }
}

/// Opaque page cursors: the next offset, bound to the search it belongs to (a cursor from another query is
/// refused rather than silently paging something else). Pages are computed afresh: comments indexed between
/// two pages can shift what a page holds.
mod cursor {
    use murmur_search::{Filters, Fusion, SearchMode};

    /// FNV-1a over everything that decides the ranking, stable across processes and restarts.
    pub fn fingerprint(q: &str, mode: SearchMode, filters: &Filters, fusion: Fusion, collapse: bool) -> u64 {
        let canonical = format!("{q}\u{0}{}\u{0}{filters:?}\u{0}{fusion:?}\u{0}{collapse}", mode.as_str());
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

/// A semantic query is compared with each of the index's vector spaces, so this server must embed it with the
/// encoders that made them: a 409 naming both otherwise, never a ranking of incomparable vectors.
fn check_encoders(mode: SearchMode, index: &VectorModels, service: &ModelQueue) -> Result<(), ApiError> {
    let refuse = |held: &str, serving: &str| {
        ApiError::Conflict(format!(
            "{} search: the index holds {held}'s vectors and this server embeds queries with {serving}: serve with \
             the worker's encoder settings (--model-dir, --multilingual-model), or run murmur reindex",
            mode.as_str()
        ))
    };
    if let Some(held) = index.encoder.as_deref().filter(|&held| held != service.model()) {
        return Err(refuse(held, service.model()));
    }
    match (index.multilingual.as_deref(), service.multilingual_model()) {
        (Some(held), serving) if serving != Some(held) => {
            Err(refuse(held, serving.unwrap_or("no multilingual encoder")))
        }
        _ => Ok(()),
    }
}
