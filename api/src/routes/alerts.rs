//! `/v1/alerts`: alert rules (admin keys define them; see `murmur_trends::alerts` for how they are judged)
//! and the alerts they fired, newest first, with their example comments.

use actix_web::{web, HttpResponse};
use murmur_store::{StoredAlert, StoredAlertRule};
use murmur_trends::AlertRule;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Admin, Authorized, Read};
use crate::error::{ErrorBody, Refusals};
use crate::params::{self, Body, Query};
use crate::{ApiError, AppState};

const MAX_LIST: i64 = 200;

/// Create an alert rule; every server evaluates it from its next tick on.
#[utoipa::path(post, path = "/v1/alerts/rules", tag = "alerts", request_body = AlertRule,
    security(("api_key" = ["admin"])),
    responses(
        (status = 201, description = "The rule as stored", body = StoredAlertRule),
        (status = 413, description = "The body is larger than the server accepts", body = ErrorBody),
        Refusals,
    ))]
pub(crate) async fn create_rule(
    _: Authorized<Admin>,
    state: web::Data<AppState>,
    body: Body<AlertRule>,
) -> Result<HttpResponse, ApiError> {
    let mut rule = body.into_inner();
    rule.name = rule.name.trim().to_owned();
    let cooldown_seconds = rule.validate()?;
    let definition = serde_json::to_value(&rule).map_err(|_| ApiError::Internal)?;
    let stored = state.postgres.create_alert_rule(&rule.name, &definition, cooldown_seconds).await?;
    Ok(HttpResponse::Created().json(stored))
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RuleList {
    rules: Vec<StoredAlertRule>,
}

/// The alert rules, with when each last fired (webhook URLs in full: admin keys only).
#[utoipa::path(get, path = "/v1/alerts/rules", tag = "alerts", security(("api_key" = ["admin"])),
    responses((status = 200, description = "Every rule", body = RuleList), Refusals))]
pub(crate) async fn rules(_: Authorized<Admin>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(RuleList { rules: state.postgres.alert_rules().await? }))
}

/// Delete a rule; the alerts it fired stay.
#[utoipa::path(delete, path = "/v1/alerts/rules/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "The rule's id")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such rule", body = ErrorBody),
        Refusals,
    ))]
pub(crate) async fn delete_rule(
    _: Authorized<Admin>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if state.postgres.delete_alert_rule(id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!("no alert rule {id}")))
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertParams {
    /// Only this rule's alerts.
    rule_id: Option<i64>,
    /// Alerts (1-200, 50 by default).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AlertList {
    alerts: Vec<StoredAlert>,
}

/// The alerts that fired, newest first: what was found, the example comments, the chat text and the
/// webhook's outcome.
#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", params(AlertParams), security(("api_key" = ["read"])),
    responses((status = 200, description = "The alerts", body = AlertList), Refusals))]
pub(crate) async fn alerts(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    Query((p,)): Query<(AlertParams,)>,
) -> Result<HttpResponse, ApiError> {
    let limit = params::limit(p.limit, 50, MAX_LIST)? as i64;
    Ok(HttpResponse::Ok().json(AlertList { alerts: state.postgres.alerts(p.rule_id, limit).await? }))
}
