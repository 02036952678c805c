//! `/v1/aspects`: what the comments of a slice like and dislike ("battery": 40 negative, 5 positive), from the
//! aspect head's terms and polarities (docs/aspects.md).

use actix_web::{web, HttpResponse};
use murmur_trends::{AspectList, AspectQuery, Slice};
use serde::Deserialize;
use utoipa::IntoParams;

use super::trends::{parse_duplicates, WindowParams};
use crate::auth::{Authorized, Read};
use crate::error::Refusals;
use crate::params::{limit, Query};
use crate::{ApiError, AppState};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AspectParams {
    /// Whose comments: `brand:NAME`, `brand_group:NAME`, `theme:ID`, `tag:NAME`, `entity:[TYPE:]NAME`,
    /// `emotion:NAME`, `source:NAME` or `all` (the default).
    slice: Option<String>,
    /// Only comments from this source (with any slice).
    source: Option<String>,
    /// Aspects (1-100, 20 by default).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// Example comments per aspect and polarity, positive and negative (0-10, 2 by default).
    #[param(minimum = 0, maximum = 10)]
    examples: Option<i64>,
    /// `once` (the default): a cluster of near-duplicates counts as one comment; `include`: every copy counts.
    #[param(value_type = Option<murmur_store::Duplicates>)]
    duplicates: Option<String>,
}

/// The aspects the slice's comments judge, most mentioned first: positive, neutral and negative mentions and
/// the clearest examples of each side; near-synonyms merged when the server has the encoder.
#[utoipa::path(get, path = "/v1/aspects", tag = "aspects", params(WindowParams, AspectParams),
    security(("api_key" = ["read"])),
    responses((status = 200, description = "The aspects", body = AspectList), Refusals))]
pub(crate) async fn aspects(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<(WindowParams, AspectParams)>,
) -> Result<HttpResponse, ApiError> {
    let (window, params) = p.into_inner();
    let window = window.window()?;
    let mut slice = Slice::parse_one(params.slice.as_deref().unwrap_or("all"))
        .map_err(|e| ApiError::BadRequest(format!("slice: {e}")))?;
    if let Some(source) = params.source {
        if slice.source.as_ref().is_some_and(|s| *s != source) {
            return Err(ApiError::BadRequest("source: the slice names another source".into()));
        }
        slice.source = Some(source);
    }
    slice.duplicates = parse_duplicates(params.duplicates.as_deref())?;
    let examples = if params.examples == Some(0) { 0 } else { limit(params.examples, 2, 10)? };
    let query = AspectQuery { slice, limit: limit(params.limit, 20, 100)?, examples };
    let list = state.trends.aspects(&query, window, state.enrich.as_ref()).await?;
    Ok(HttpResponse::Ok().json(list))
}
