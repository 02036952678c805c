//! `/v1/reports/*`: report schedules (cron + time zone + what to cover) and the reports they rendered.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use murmur_store::{ReportSchedule, StoredReport};
use murmur_trends::{CronSchedule, Format, Report, ReportSpec};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Admin, Authorized, Read, Scope, Write};
use crate::error::{ErrorBody, Refusals};
use crate::params::{self, Body, Query};
use crate::{ApiError, AppState};

const MAX_NAME_CHARS: usize = 200;
const MAX_LIST: i64 = 200;

/// The body of `POST /v1/reports/schedules`: a [`ReportSpec`]'s fields with the schedule's `name`, `cron` and
/// `time_zone` beside them. [`create_schedule`] reads it field by field (serde's `flatten` cannot refuse
/// unknown fields), so its schema is the spec's with those three added, not a derived one.
pub(crate) struct NewSchedule;

impl utoipa::PartialSchema for NewSchedule {
    fn schema() -> RefOr<Schema> {
        let mut body = match <ReportSpec as utoipa::PartialSchema>::schema() {
            RefOr::T(Schema::Object(spec)) => spec,
            _ => Object::new(),
        };
        let text = |description: &str| ObjectBuilder::new().schema_type(Type::String).description(Some(description));
        body.properties.insert("name".into(), text("1-200 characters").max_length(Some(MAX_NAME_CHARS)).into());
        body.properties.insert(
            "cron".into(),
            text("5 fields (minute hour day month weekday), 6 with seconds first, or `@daily`-style").into(),
        );
        body.properties
            .insert("time_zone".into(), text("IANA time zone the cron expression is read in; UTC by default").into());
        body.required.extend(["name".to_owned(), "cron".to_owned()]);
        body.description = Some("A report schedule: when it runs, and what its reports cover and where they go".into());
        RefOr::T(Schema::Object(body))
    }
}

impl ToSchema for NewSchedule {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <ReportSpec as ToSchema>::schemas(schemas);
    }
}

/// Create a report schedule.
#[utoipa::path(post, path = "/v1/reports/schedules", tag = "reports", request_body = NewSchedule,
    security(("api_key" = ["write"])),
    responses(
        (status = 201, description = "The schedule, with its first run", body = ReportSchedule),
        (status = 413, description = "The body is larger than the server accepts", body = ErrorBody),
        Refusals,
    ))]
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

#[derive(Serialize, ToSchema)]
pub(crate) struct ScheduleList {
    schedules: Vec<ReportSchedule>,
}

/// The report schedules: webhook URLs in full for admin keys only (a chat webhook's URL is its secret),
/// reduced to scheme and host for everyone else.
#[utoipa::path(get, path = "/v1/reports/schedules", tag = "reports", security(("api_key" = ["read"])),
    responses((status = 200, description = "Every schedule", body = ScheduleList), Refusals))]
pub(crate) async fn schedules(auth: Authorized<Read>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut schedules = state.postgres.schedules().await?;
    if auth.granted != Some(Scope::Admin) {
        for schedule in &mut schedules {
            if let Some(url) = schedule.spec.get_mut("webhook") {
                *url = url.as_str().map(mask_url).map_or(serde_json::Value::Null, serde_json::Value::String);
            }
        }
    }
    Ok(HttpResponse::Ok().json(ScheduleList { schedules }))
}

/// `https://hooks.example.com/services/T0/B0/secret` → `https://hooks.example.com/…`: where reports go,
/// without the path, query or credentials that authorise posting there.
fn mask_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}/…")
}

/// Delete a schedule; its reports stay.
#[utoipa::path(delete, path = "/v1/reports/schedules/{id}", tag = "reports",
    params(("id" = i64, Path, description = "The schedule's id")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such schedule", body = ErrorBody),
        Refusals,
    ))]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only this schedule's reports.
    schedule_id: Option<i64>,
    /// Reports (1-200, 50 by default).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ReportList {
    reports: Vec<StoredReport>,
}

/// The rendered reports, newest first, without their bodies.
#[utoipa::path(get, path = "/v1/reports", tag = "reports", params(ListParams), security(("api_key" = ["read"])),
    responses((status = 200, description = "The reports", body = ReportList), Refusals))]
pub(crate) async fn reports(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    Query((p,)): Query<(ListParams,)>,
) -> Result<HttpResponse, ApiError> {
    let limit = params::limit(p.limit, 50, MAX_LIST)? as i64;
    Ok(HttpResponse::Ok().json(ReportList { reports: state.postgres.reports(p.schedule_id, limit).await? }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReportParams {
    /// `json` (the default: the summary and the report's data), `html` or `csv` (when the schedule asked for them).
    format: Option<Format>,
}

/// A report's summary and its data.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReportDocument {
    #[serde(flatten)]
    summary: StoredReport,
    /// The report as rendered.
    #[schema(value_type = Report)]
    report: serde_json::Value,
}

/// One report, as JSON, HTML or CSV.
#[utoipa::path(get, path = "/v1/reports/{id}", tag = "reports",
    params(("id" = i64, Path, description = "The report's id"), ReportParams),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The report", content(
            (ReportDocument = "application/json"),
            (String = "text/html"),
            (String = "text/csv"),
        )),
        (status = 404, description = "No such report, or not rendered in that format", body = ErrorBody),
        Refusals,
    ))]
pub(crate) async fn report(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    Query((p,)): Query<(ReportParams,)>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let report = state.postgres.report(id).await?.ok_or_else(|| ApiError::NotFound(format!("no report {id}")))?;
    let missing = |format: &str| ApiError::NotFound(format!("report {id} was not rendered as {format}"));
    let attachment = |ext: &str| format!("inline; filename=\"report-{id}.{ext}\"");
    match p.format.unwrap_or(Format::Json) {
        Format::Json => {
            let mut summary = report;
            let report = summary.body_json.take().unwrap_or_default();
            Ok(HttpResponse::Ok().json(ReportDocument { summary, report }))
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
