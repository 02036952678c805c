//! `/v1/themes`: what comments talk about, found from their embeddings as they arrive (docs/themes.md): each
//! theme with its comments, sentiment and growth in a window, and one theme in full (timeline, examples,
//! entities, brands, history of merges and splits).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use murmur_store::Dim;
use murmur_trends::{ThemeDetail, ThemeOrder, ThemeQuery, ThemeSummary};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::trends::{parse_duplicates, BucketParams, WindowParams};
use crate::auth::{Authorized, Read};
use crate::error::{ErrorBody, Refusals};
use crate::params::{limit, Query};
use crate::{ApiError, AppState};

/// How themes are listed.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ThemeSort {
    /// Most comments in the window first (the default).
    Comments,
    /// Fastest growing against the window before first: the emerging themes.
    Growth,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ThemeListParams {
    /// Only comments from this source.
    source: Option<String>,
    /// Only among the comments mentioning this brand of the catalogue.
    brand: Option<String>,
    /// Only among the comments mentioning a brand of this group.
    brand_group: Option<String>,
    #[param(inline)]
    sort: Option<ThemeSort>,
    /// Themes (1-100, 20 by default).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `once` (the default): a cluster of near-duplicates counts as one comment; `include`: every copy counts.
    #[param(value_type = Option<murmur_store::Duplicates>)]
    duplicates: Option<String>,
}

/// The themes of a window.
#[derive(Serialize, ToSchema)]
pub(crate) struct ThemeList {
    /// The window, widened to whole hours (themes are counted by the hour).
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    themes: Vec<ThemeSummary>,
}

/// Themes with comments in the window: label, keywords, comments, sentiment, growth, the representative comment.
#[utoipa::path(get, path = "/v1/themes", tag = "themes", params(WindowParams, ThemeListParams),
    security(("api_key" = ["read"])),
    responses((status = 200, description = "The themes", body = ThemeList), Refusals))]
pub(crate) async fn themes(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<(WindowParams, ThemeListParams)>,
) -> Result<HttpResponse, ApiError> {
    let (window, params) = p.into_inner();
    let window = window.window()?.for_entities();
    if let Some(source) = &params.source {
        murmur_core::check_source(source).map_err(|why| ApiError::BadRequest(format!("source: {why}")))?;
    }
    let within = match (&params.brand, &params.brand_group) {
        (Some(brand), None) => {
            murmur_core::brands::check_name("brand", brand).map_err(ApiError::BadRequest)?;
            Some(Dim::Brand(murmur_core::brand_key(brand)))
        }
        (None, Some(group)) => {
            murmur_core::brands::check_name("brand_group", group).map_err(ApiError::BadRequest)?;
            Some(Dim::BrandGroup(murmur_core::brand_key(group)))
        }
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest("brand, brand_group: give one of them, not both".into()))
        }
    };
    let query = ThemeQuery {
        source: params.source,
        within,
        order: match params.sort {
            None | Some(ThemeSort::Comments) => ThemeOrder::Comments,
            Some(ThemeSort::Growth) => ThemeOrder::Growth,
        },
        limit: limit(params.limit, 20, 100)?,
        duplicates: parse_duplicates(params.duplicates.as_deref())?,
    };
    let themes = state.trends.themes(&query, window).await?;
    Ok(HttpResponse::Ok().json(ThemeList { from: window.from, to: window.to, themes }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ThemeParams {
    /// Only comments from this source.
    source: Option<String>,
    /// Example comments (0-50, 5 by default).
    #[param(minimum = 0, maximum = 50)]
    examples: Option<i64>,
}

/// One theme: its timeline, newest comments, entities and brands in the window, and its history.
#[utoipa::path(get, path = "/v1/themes/{id}", tag = "themes",
    params(("id" = i64, Path, description = "The theme's id"), WindowParams, BucketParams, ThemeParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The theme", body = ThemeDetail),
        (status = 404, description = "No such theme", body = ErrorBody),
        Refusals))]
pub(crate) async fn theme(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    p: Query<(WindowParams, BucketParams, ThemeParams)>,
) -> Result<HttpResponse, ApiError> {
    let (window, bucket, params) = p.into_inner();
    let window = window.window()?.for_entities();
    let bucketing = bucket.bucketing(window)?;
    if let Some(source) = &params.source {
        murmur_core::check_source(source).map_err(|why| ApiError::BadRequest(format!("source: {why}")))?;
    }
    let examples = if params.examples == Some(0) { 0 } else { limit(params.examples, 5, 50)? };
    let id = id.into_inner();
    match state.trends.theme(id, params.source, window, bucketing, examples).await? {
        Some(detail) => Ok(HttpResponse::Ok().json(detail)),
        None => Err(ApiError::NotFound(format!("id: no theme {id}"))),
    }
}
