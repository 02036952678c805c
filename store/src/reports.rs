//! Report schedules and the reports they rendered (migration 0004).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Postgres, StoreError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ReportSchedule {
    pub id: i64,
    pub name: String,
    pub cron: String,
    pub time_zone: String,
    /// What the report covers and where it goes, as the API accepted it.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    pub next_run_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A rendered report, before it is stored.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub schedule_id: Option<i64>,
    pub name: String,
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
    pub json: serde_json::Value,
    pub html: Option<String>,
    pub csv: Option<String>,
    /// Whether a webhook will be called (the report starts `pending`).
    pub webhook: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookStatus {
    Pending,
    Delivered,
    Failed,
}

impl WebhookStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

/// What a webhook delivered: a report or an alert, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookTarget {
    Report(i64),
    Alert(i64),
}

/// A stored report; the bodies only when asked for one report.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StoredReport {
    pub id: i64,
    pub schedule_id: Option<i64>,
    pub name: String,
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The formats stored: `json` always, `html` and `csv` when the schedule asked for them.
    pub formats: Vec<String>,
    pub webhook_status: Option<String>,
    pub webhook_attempts: i32,
    pub webhook_error: Option<String>,
    #[serde(skip)]
    pub body_json: Option<serde_json::Value>,
    #[serde(skip)]
    pub body_html: Option<String>,
    #[serde(skip)]
    pub body_csv: Option<String>,
}

const REPORT_COLUMNS: &str = "id, schedule_id, name, window_from, window_to, created_at, \
    ARRAY['json'] || CASE WHEN body_html IS NULL THEN '{}'::text[] ELSE ARRAY['html'] END \
    || CASE WHEN body_csv IS NULL THEN '{}'::text[] ELSE ARRAY['csv'] END AS formats, \
    webhook_status, webhook_attempts, webhook_error";

impl Postgres {
    pub async fn create_schedule(
        &self,
        name: &str,
        cron: &str,
        time_zone: &str,
        spec: &serde_json::Value,
        next_run_at: DateTime<Utc>,
    ) -> Result<ReportSchedule, StoreError> {
        Ok(sqlx::query_as(
            "INSERT INTO report_schedules (name, cron, time_zone, spec, next_run_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING *",
        )
        .bind(name)
        .bind(cron)
        .bind(time_zone)
        .bind(spec)
        .bind(next_run_at)
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn schedules(&self) -> Result<Vec<ReportSchedule>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM report_schedules ORDER BY id").fetch_all(self.pool()).await?)
    }

    /// Whether a schedule was there to delete (its reports stay).
    pub async fn delete_schedule(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM report_schedules WHERE id = $1").bind(id).execute(self.pool()).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Schedules whose next run is due at `now`.
    pub async fn due_schedules(&self, now: DateTime<Utc>) -> Result<Vec<ReportSchedule>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM report_schedules WHERE next_run_at <= $1 ORDER BY next_run_at")
            .bind(now)
            .fetch_all(self.pool())
            .await?)
    }

    /// Moves a schedule's next run from `due` to `next`; false when another process did first (the run is
    /// theirs). This is how several API processes share the schedules without running one twice.
    pub async fn claim_run(&self, id: i64, due: DateTime<Utc>, next: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE report_schedules SET next_run_at = $3 WHERE id = $1 AND next_run_at = $2")
            .bind(id)
            .bind(due)
            .bind(next)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_report(&self, report: &NewReport) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO reports (schedule_id, name, window_from, window_to, body_json, body_html, body_csv, \
             webhook_status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(report.schedule_id)
        .bind(&report.name)
        .bind(report.window_from)
        .bind(report.window_to)
        .bind(&report.json)
        .bind(&report.html)
        .bind(&report.csv)
        .bind(report.webhook.then_some(WebhookStatus::Pending.as_str()))
        .fetch_one(self.pool())
        .await?)
    }

    /// Records the outcome of a webhook delivery on the report or alert it delivered.
    pub async fn set_webhook_status(
        &self,
        target: WebhookTarget,
        status: WebhookStatus,
        attempts: i32,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let (table, id) = match target {
            WebhookTarget::Report(id) => ("reports", id),
            WebhookTarget::Alert(id) => ("alert_firings", id),
        };
        sqlx::query(&format!(
            "UPDATE {table} SET webhook_status = $2, webhook_attempts = $3, webhook_error = $4 WHERE id = $1"
        ))
        .bind(id)
        .bind(status.as_str())
        .bind(attempts)
        .bind(error)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The newest reports first, without their bodies.
    pub async fn reports(&self, schedule_id: Option<i64>, limit: i64) -> Result<Vec<StoredReport>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {REPORT_COLUMNS}, NULL::jsonb AS body_json, NULL AS body_html, NULL AS body_csv FROM reports \
             WHERE $1::int8 IS NULL OR schedule_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(schedule_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// One report with its bodies.
    pub async fn report(&self, id: i64) -> Result<Option<StoredReport>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {REPORT_COLUMNS}, body_json, body_html, body_csv FROM reports WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }
}
