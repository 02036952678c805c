//! `POST /v1/enrich`: the models' reading of texts sent in the request, nothing stored.

use actix_web::{web, HttpResponse};
use murmur_core::{Aspect, DetectedLanguage, Emotion, Entity, Explanation, Sentiment, Skipped};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Authorized, Write};
use crate::error::{ErrorBody, Refusals};
use crate::params::{Body, Query};
use crate::{ApiError, AppState};

const MAX_ENRICH_TEXT_BYTES: usize = 100_000;

/// Texts per request with `explain=true`: each costs a model reading per word.
const MAX_EXPLAINED_TEXTS: usize = 8;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = r#"an object like {"texts": ["a comment", …]}"#)]
pub(crate) struct EnrichRequest {
    /// The texts, each non-blank and at most 100,000 bytes (64 at most per request by default).
    texts: Vec<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EnrichParams {
    /// Include each text's sentence embedding.
    #[serde(default)]
    embedding: bool,
    /// Include why the sentiment and emotion were read so: each word's weight, found by leaving it out (at most
    /// 8 texts per request; each costs a model reading per word).
    #[serde(default)]
    explain: bool,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct EnrichResponse {
    /// The encoder and heads that read the texts.
    model: String,
    /// One per text, in the order sent.
    results: Vec<EnrichResult>,
}

/// What the models found in one text; a task whose head is not loaded is absent, and every head's field is
/// absent when `skipped` says why.
#[derive(Serialize, ToSchema)]
pub(crate) struct EnrichResult {
    /// The language detected in the text and the detector's confidence; absent when it is sure of none.
    language: Option<DetectedLanguage>,
    /// `language`: the text is confidently in a language the heads never learned, so sentiment, emotion,
    /// entities and aspects are absent rather than guessed.
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<Skipped>,
    sentiment: Option<Sentiment>,
    emotion: Option<Emotion>,
    entities: Option<Vec<NamedEntity>>,
    /// Aspect terms and the sentiment toward each, in text order.
    aspects: Option<Vec<Aspect>>,
    /// With `embedding=true`: the L2-normalised sentence embedding.
    #[serde(skip_serializing_if = "Option::is_none")]
    embedding: Option<Vec<f32>>,
    /// With `explain=true`: each word's part in the sentiment and the emotion.
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<Explanation>,
}

/// An entity and the name it is counted and filtered under.
#[derive(Serialize, ToSchema)]
pub(crate) struct NamedEntity {
    #[serde(flatten)]
    entity: Entity,
    /// Lower case, accents folded, `@`/`#` and punctuation dropped: "U.S. Airways" is `us airways`.
    name: String,
}

/// The enrichment of each text, in order, without storing anything.
#[utoipa::path(post, path = "/v1/enrich", tag = "enrich", params(EnrichParams), request_body = EnrichRequest,
    security(("api_key" = ["write"])),
    responses(
        (status = 200, description = "One result per text, in order", body = EnrichResponse),
        (status = 413, description = "The body is larger than the server accepts", body = ErrorBody),
        (status = 424, description = "The model failed on these texts", body = ErrorBody),
        (status = 503, description = "Enrichment is off on this server, or its model thread stopped", body = ErrorBody),
        Refusals,
    ))]
pub(crate) async fn enrich(
    _: Authorized<Write>,
    state: web::Data<AppState>,
    body: Body<EnrichRequest>,
    Query((params,)): Query<(EnrichParams,)>,
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
    if params.explain && texts.len() > MAX_EXPLAINED_TEXTS {
        return Err(ApiError::BadRequest(format!(
            "texts: expected at most {MAX_EXPLAINED_TEXTS} texts with explain=true, got {}",
            texts.len()
        )));
    }
    let mut explanations = Vec::new();
    if params.explain {
        for text in &texts {
            explanations.push(service.explain(text.clone()).await?);
        }
    }
    let mut explanations = explanations.into_iter();
    let results = service
        .enrich(texts)
        .await?
        .into_iter()
        .map(|e| EnrichResult {
            language: e.language,
            skipped: e.skipped,
            sentiment: e.sentiment,
            emotion: e.emotion,
            entities: e
                .entities
                .map(|list| list.into_iter().map(|entity| NamedEntity { name: entity.name(), entity }).collect()),
            aspects: e.aspects,
            embedding: params.embedding.then_some(e.embedding),
            explanation: explanations.next(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(EnrichResponse { model: service.model().to_owned(), results }))
}
