//! `/v1/reports/*`: report schedules (cron + time zone + what to cover) and the reports they rendered.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use murmur_trends::{CronSchedule, Format, ReportSpec};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Admin, Authorized, Read, Scope, Write};
use crate::params::{self, Body, Query};
use crate::{ApiError, AppState};

const MAX_NAME_CHARS: usize = 200;
const MAX_LIST: i64 = 200;

/// `POST /v1/reports/schedules` (write scope) with `{"name", "cron", "time_zone", …the report spec}`: `cron`
/// has 5 fields (minute hour day month weekday), 6 with seconds first, or is `@daily`-style; `time_zone` is
/// an IANA name (UTC by default); the other fields are a [`ReportSpec`].
pub(crate) async fn create_schedule(
    _: Authorized<Write>,
    state: web::Data<AppState>,
    body: Body<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, ApiError> {
    let mut fields = body.into_inner();
    let mut text = |key: &str, default: Option<&str>| -> Result<String, ApiError> {
        match fields.remove(key) {
            Some(serde_json::Value::String(s)) => Ok(s),
            None => default.map(str::to_owned).ok_or_else(|| ApiError::BadRequest(format!("{key}: required"))),
            Some(other) => Err(ApiError::BadRequest(format!("{key}: expected a string, got {other}"))),
        }
    };
    let (name, cron_text, time_zone) = (text("name", None)?, text("cron", None)?, text("time_zone", Some("UTC"))?);
    if name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::BadRequest(format!("name: expected 1-{MAX_NAME_CHARS} characters")));
    }
    let spec: ReportSpec = params::from_json(serde_json::Value::Object(fields))?;
    spec.validate()?;
    let cron = CronSchedule::parse(&cron_text, &time_zone)?;
    let next = cron.next_after(Utc::now())?;
    let spec = serde_json::to_value(&spec).map_err(|_| ApiError::Internal)?;
    let schedule = state.postgres.create_schedule(name.trim(), &cron_text, &time_zone, &spec, next).await?;
    Ok(HttpResponse::Created().json(schedule))
}

/// `GET /v1/reports/schedules`: webhook URLs in full for admin keys only (a chat webhook's URL is its
/// secret), reduced to scheme and host for everyone else.
pub(crate) async fn schedules(auth: Authorized<Read>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut schedules = state.postgres.schedules().await?;
    if auth.granted != Some(Scope::Admin) {
        for schedule in &mut schedules {
            if let Some(url) = schedule.spec.get_mut("webhook") {
                *url = url.as_str().map(mask_url).map_or(serde_json::Value::Null, serde_json::Value::String);
            }
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "schedules": schedules })))
}

/// `https://hooks.example.com/services/T0/B0/secret` → `https://hooks.example.com/…`: where reports go,
/// without the path, query or credentials that authorise posting there.
fn mask_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}/…")
}

/// `DELETE /v1/reports/schedules/{id}` (admin scope); its reports stay.
pub(crate) async fn delete_schedule(
    _: Authorized<Admin>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if state.postgres.delete_schedule(id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!("no schedule {id}")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    schedule_id: Option<i64>,
    limit: Option<i64>,
}

/// `GET /v1/reports[?schedule_id=…][&limit=50]`: newest first, without bodies.
pub(crate) async fn reports(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = params::limit(p.limit, 50, MAX_LIST)? as i64;
    Ok(HttpResponse::Ok().json(json!({ "reports": state.postgres.reports(p.schedule_id, limit).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportParams {
    format: Option<Format>,
}

/// `GET /v1/reports/{id}[?format=json|html|csv]`: the report itself (JSON: its summary and body).
pub(crate) async fn report(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    p: Query<ReportParams>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let report = state.postgres.report(id).await?.ok_or_else(|| ApiError::NotFound(format!("no report {id}")))?;
    let missing = |format: &str| ApiError::NotFound(format!("report {id} was not rendered as {format}"));
    let attachment = |ext: &str| format!("inline; filename=\"report-{id}.{ext}\"");
    match p.format.unwrap_or(Format::Json) {
        Format::Json => {
            let mut body = serde_json::to_value(&report).map_err(|_| ApiError::Internal)?;
            body["report"] = report.body_json.clone().unwrap_or_default();
            Ok(HttpResponse::Ok().json(body))
        }
        Format::Html => Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(report.body_html.ok_or_else(|| missing("html"))?)),
        Format::Csv => Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header(("content-disposition", attachment("csv")))
            .body(report.body_csv.ok_or_else(|| missing("csv"))?)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn masked_urls_keep_only_scheme_and_host() {
        assert_eq!(super::mask_url("https://hooks.example.com/services/T0/B0/secret"), "https://hooks.example.com/…");
        assert_eq!(super::mask_url("http://user:pw@10.0.0.1:8080/hook?token=x"), "http://10.0.0.1:8080/…");
        assert_eq!(super::mask_url("https://example.com?token=x"), "https://example.com/…");
    }
}
