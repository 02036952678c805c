//! Scheduled reports: cron expressions in a time zone, run by every `murmur serve` (a run is claimed in
//! Postgres, so several servers never run one twice), rendered, stored, and POSTed to a webhook
//! (`webhook`: retried, each delivery in a task of its own).

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::parser::CronParser;
use croner::Cron;
use murmur_store::{ReportSchedule, WebhookTarget};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::report::{parse_length, ReportSpec};
use crate::webhook::{WebhookOptions, Webhooks};
use crate::{Trends, TrendsError};

/// A cron expression (5 fields, or 6 with seconds first; `@daily` and friends) in a time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    tz: Tz,
}

impl CronSchedule {
    pub fn parse(expression: &str, time_zone: &str) -> Result<Self, TrendsError> {
        let cron = CronParser::new()
            .parse(expression)
            .map_err(|e| TrendsError::Invalid(format!("cron {expression:?}: {e}")))?;
        let tz: Tz = time_zone.parse().map_err(|_| {
            TrendsError::Invalid(format!("time zone {time_zone:?} is not an IANA name like Europe/Paris"))
        })?;
        Ok(Self { cron, tz })
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>, TrendsError> {
        self.cron.find_next_occurrence(&after.with_timezone(&self.tz), false).map(|t| t.with_timezone(&Utc)).map_err(
            |e| TrendsError::Invalid(format!("cron {:?} never runs again: {e}", self.cron.pattern.to_string())),
        )
    }

    /// The time between two runs around `at`: a report's default window.
    pub fn period(&self, at: DateTime<Utc>) -> Result<Duration, TrendsError> {
        let first = self.next_after(at)?;
        Ok(self.next_after(first)? - first)
    }
}

/// How the scheduler polls and delivers.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// How often due schedules are looked for.
    pub tick: StdDuration,
    pub webhooks: WebhookOptions,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self { tick: StdDuration::from_secs(5), webhooks: WebhookOptions::default() }
    }
}

pub struct Scheduler {
    trends: Trends,
    tick: StdDuration,
    webhooks: Webhooks,
}

impl Scheduler {
    pub fn new(trends: Trends, options: SchedulerOptions) -> Result<Self, TrendsError> {
        let webhooks = Webhooks::new(trends.postgres().clone(), options.webhooks)?;
        Ok(Self { trends, tick: options.tick, webhooks })
    }

    /// Runs due schedules until `shutdown`; failures are logged and the loop goes on.
    pub async fn run(self, shutdown: CancellationToken) {
        let signed = self.webhooks.signed();
        tracing::info!(tick_ms = self.tick.as_millis() as u64, signed, "report scheduler started");
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.tick) => {}
            }
            if let Err(e) = self.run_due(Utc::now()).await {
                tracing::error!(error = %e, "report scheduler");
            }
        }
    }

    /// Runs every schedule due at `now` that no other server claimed first; returns the reports stored (their
    /// webhook deliveries go on in tasks of their own).
    pub async fn run_due(&self, now: DateTime<Utc>) -> Result<Vec<i64>, TrendsError> {
        let mut stored = Vec::new();
        for schedule in self.trends.postgres().due_schedules(now).await? {
            match self.run_schedule(&schedule, now).await {
                Ok(Some(id)) => stored.push(id),
                Ok(None) => {}
                Err(e) => tracing::error!(schedule = schedule.id, name = %schedule.name, error = %e, "report failed"),
            }
        }
        Ok(stored)
    }

    async fn run_schedule(&self, schedule: &ReportSchedule, now: DateTime<Utc>) -> Result<Option<i64>, TrendsError> {
        let cron = CronSchedule::parse(&schedule.cron, &schedule.time_zone)?;
        let due = schedule.next_run_at;
        // Runs missed while no server was up are not caught up one by one: the next is after now.
        let next = cron.next_after(now.max(due))?;
        if !self.trends.postgres().claim_run(schedule.id, due, next).await? {
            return Ok(None);
        }
        let spec: ReportSpec = serde_json::from_value(schedule.spec.clone())
            .map_err(|e| TrendsError::Invalid(format!("schedule {}: stored spec: {e}", schedule.id)))?;
        let length = match &spec.window {
            Some(window) => parse_length(window)?,
            None => cron.period(due)?,
        };
        let report = self.trends.report(&schedule.name, &spec, due, length, cron.tz()).await?;
        let id = self.trends.postgres().insert_report(&report.to_new_report(&spec, Some(schedule.id))?).await?;
        tracing::info!(schedule = schedule.id, report = id, name = %schedule.name, "report stored");
        if let Some(url) = spec.webhook.clone() {
            let body =
                json!({ "event": "report.created", "report_id": id, "schedule_id": schedule.id, "report": report });
            let body = serde_json::to_vec(&body).map_err(|e| TrendsError::Invalid(format!("webhook body: {e}")))?;
            self.webhooks.spawn(WebhookTarget::Report(id), url, body);
        }
        Ok(Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_runs_in_its_time_zone() {
        let daily = CronSchedule::parse("0 8 * * *", "Europe/Paris").expect("valid");
        let at: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().expect("time");
        // 08:00 in Paris in winter is 07:00 UTC, the next day.
        assert_eq!(daily.next_after(at).ok(), "2026-03-02T07:00:00Z".parse().ok());
        assert_eq!(daily.period(at).ok(), Some(Duration::days(1)));
        let seconds = CronSchedule::parse("*/2 * * * * *", "UTC").expect("six fields");
        assert_eq!(seconds.period(at).ok(), Some(Duration::seconds(2)));
        assert!(CronSchedule::parse("61 * * * *", "UTC").is_err());
        assert!(CronSchedule::parse("0 8 * * *", "Mars/Olympus").is_err());
    }
}
