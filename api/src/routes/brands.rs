//! `/v1/brands`: the catalogue of brands comments are matched against (see `murmur_core::brands` for the
//! rules). Reads need a read key, changes an admin key; a change re-matches the stored comments in the
//! background (progress in `GET /v1/brands` and `/readyz`) while ingest goes on.

use actix_web::{web, HttpResponse};
use murmur_core::{brand_key, Brand};
use murmur_store::{BrandChange, Catalogue};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Admin, Authorized, Read};
use crate::error::{ErrorBody, Refusals};
use crate::params::Body;
use crate::{ApiError, AppState};

/// The catalogue and how far re-matching the stored comments is.
#[derive(Serialize, ToSchema)]
pub(crate) struct BrandList {
    #[serde(flatten)]
    catalogue: Catalogue,
    rematch: Option<RematchStatus>,
}

/// A re-matching pass of this server (absent when it runs none: another process may).
#[derive(Serialize, ToSchema)]
pub(crate) struct RematchStatus {
    /// The catalogue version the last or current pass matches with.
    version: i64,
    running: bool,
    /// Comments read so far, of about `total`.
    scanned: u64,
    total: u64,
    /// Comments whose brands changed.
    changed: u64,
}

impl RematchStatus {
    pub(crate) fn of(state: &AppState) -> Option<Self> {
        use std::sync::atomic::Ordering::Relaxed;
        let progress = &state.rematcher.as_ref()?.progress;
        Some(Self {
            version: progress.version.load(Relaxed),
            running: progress.running.load(Relaxed),
            scanned: progress.scanned.load(Relaxed),
            total: progress.total.load(Relaxed),
            changed: progress.changed.load(Relaxed),
        })
    }
}

/// The brand catalogue.
#[utoipa::path(get, path = "/v1/brands", tag = "brands", security(("api_key" = ["read"])),
    responses((status = 200, description = "Every brand, by key", body = BrandList), Refusals))]
pub(crate) async fn brands(_: Authorized<Read>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let catalogue = state.postgres.brand_catalogue().await?;
    Ok(HttpResponse::Ok().json(BrandList { catalogue, rematch: RematchStatus::of(&state) }))
}

/// One brand.
#[utoipa::path(get, path = "/v1/brands/{name}", tag = "brands",
    params(("name" = String, Path, description = "The brand's name (any case)")),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The brand", body = Brand),
        (status = 404, description = "No such brand", body = ErrorBody),
        Refusals,
    ))]
pub(crate) async fn brand(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    match state.postgres.brand(&brand_key(&name)).await? {
        Some(brand) => Ok(HttpResponse::Ok().json(brand)),
        None => Err(no_brand(&name)),
    }
}

/// Add a brand; stored comments are re-matched in the background.
#[utoipa::path(post, path = "/v1/brands", tag = "brands", request_body = Brand,
    security(("api_key" = ["admin"])),
    responses(
        (status = 201, description = "The brand as stored (terms trimmed, markers dropped)", body = Brand),
        (status = 409, description = "A brand of that name exists (PUT replaces it)", body = ErrorBody),
        Refusals,
    ))]
pub(crate) async fn create_brand(
    _: Authorized<Admin>,
    state: web::Data<AppState>,
    body: Body<Brand>,
) -> Result<HttpResponse, ApiError> {
    let brand = checked(body.into_inner())?;
    match state.postgres.put_brand(&brand, true).await? {
        BrandChange::Exists => Err(ApiError::Conflict(format!(
            "name: a brand {:?} exists; PUT /v1/brands/{{name}} replaces it",
            brand.name
        ))),
        _ => {
            wake(&state);
            Ok(HttpResponse::Created().json(brand.normalized()))
        }
    }
}

/// Add or replace a brand; stored comments are re-matched in the background when it changed.
#[utoipa::path(put, path = "/v1/brands/{name}", tag = "brands", request_body = Brand,
    params(("name" = String, Path, description = "The brand's name (any case); the body's `name` must be it")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, description = "Replaced (or unchanged)", body = Brand),
        (status = 201, description = "Created", body = Brand),
        Refusals,
    ))]
pub(crate) async fn put_brand(
    _: Authorized<Admin>,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: Body<Brand>,
) -> Result<HttpResponse, ApiError> {
    let brand = checked(body.into_inner())?;
    if brand.key() != brand_key(&name) {
        return Err(ApiError::BadRequest(format!(
            "name: expected the name of the path, {:?}, got {:?} (DELETE and POST to rename)",
            name.as_str(),
            brand.name
        )));
    }
    let change = state.postgres.put_brand(&brand, false).await?;
    wake(&state);
    let brand = brand.normalized();
    Ok(match change {
        BrandChange::Created => HttpResponse::Created().json(brand),
        _ => HttpResponse::Ok().json(brand),
    })
}

/// Remove a brand; its counts leave the rollups as the stored comments are re-matched.
#[utoipa::path(delete, path = "/v1/brands/{name}", tag = "brands",
    params(("name" = String, Path, description = "The brand's name (any case)")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such brand", body = ErrorBody),
        Refusals,
    ))]
pub(crate) async fn delete_brand(
    _: Authorized<Admin>,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if state.postgres.delete_brand(&brand_key(&name)).await? {
        wake(&state);
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(no_brand(&name))
    }
}

fn checked(brand: Brand) -> Result<Brand, ApiError> {
    brand.validate().map_err(ApiError::BadRequest)?;
    Ok(brand)
}

fn no_brand(name: &str) -> ApiError {
    ApiError::NotFound(format!("no brand {name:?} in the catalogue (GET /v1/brands lists them)"))
}

fn wake(state: &AppState) {
    if let Some(rematcher) = &state.rematcher {
        rematcher.wake();
    }
}
