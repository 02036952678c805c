//! Scheduled reports: cron expressions in a time zone, run by every `murmur serve` (a run is claimed in
//! Postgres, so several servers never run one twice), rendered, stored, and POSTed to a webhook with retries.
//! Each delivery is a task of its own, so a failing or slow webhook never delays another report; a delivery
//! still retrying when the server stops stays `pending` with its attempts so far.

use std::hash::BuildHasher;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::parser::CronParser;
use croner::Cron;
use hmac::{Hmac, Mac};
use murmur_store::{ReportSchedule, WebhookStatus};
use serde_json::json;
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::report::{parse_length, ReportSpec};
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
    pub webhook_attempts: u32,
    /// Wait before the second attempt; doubled for each one after, each wait drawn between half and one
    /// and a half times that (so receivers that failed together are not retried together).
    pub webhook_backoff: StdDuration,
    pub webhook_timeout: StdDuration,
    /// Signs every webhook body: `X-Murmur-Signature: sha256=<hex HMAC-SHA256 of the body>`, so a receiver
    /// knows the report came from this murmur and was not altered.
    pub webhook_secret: Option<Vec<u8>>,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            tick: StdDuration::from_secs(5),
            webhook_attempts: 5,
            webhook_backoff: StdDuration::from_secs(2),
            webhook_timeout: StdDuration::from_secs(10),
            webhook_secret: None,
        }
    }
}

/// The `X-Murmur-Signature` value of a webhook body.
pub fn webhook_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("hmac takes any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub struct Scheduler {
    trends: Trends,
    options: SchedulerOptions,
    delivery: Delivery,
}

impl Scheduler {
    pub fn new(trends: Trends, options: SchedulerOptions) -> Result<Self, TrendsError> {
        let client = reqwest::Client::builder()
            .timeout(options.webhook_timeout)
            .build()
            .map_err(|e| TrendsError::Invalid(format!("webhook client: {e}")))?;
        let delivery = Delivery {
            postgres: trends.postgres().clone(),
            client,
            attempts: options.webhook_attempts.max(1),
            backoff: options.webhook_backoff,
            secret: options.webhook_secret.clone(),
        };
        Ok(Self { trends, options, delivery })
    }

    /// Runs due schedules until `shutdown`; failures are logged and the loop goes on.
    pub async fn run(self, shutdown: CancellationToken) {
        let signed = self.options.webhook_secret.is_some();
        tracing::info!(tick_ms = self.options.tick.as_millis() as u64, signed, "report scheduler started");
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.options.tick) => {}
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
            let delivery = self.delivery.clone();
            tokio::spawn(async move {
                if let Err(error) = delivery.deliver(id, &url, body).await {
                    tracing::error!(report = id, %error, "webhook delivery could not record its outcome");
                }
            });
        }
        Ok(Some(id))
    }
}

/// What a webhook delivery needs, cloned into its own task.
#[derive(Clone)]
struct Delivery {
    postgres: murmur_store::Postgres,
    client: reqwest::Client,
    attempts: u32,
    backoff: StdDuration,
    secret: Option<Vec<u8>>,
}

impl Delivery {
    /// POSTs the report to the webhook until it answers 2xx or the attempts run out; the outcome is stored
    /// with the report.
    async fn deliver(&self, report: i64, url: &str, body: Vec<u8>) -> Result<(), TrendsError> {
        let signature = self.secret.as_deref().map(|secret| webhook_signature(secret, &body));
        let mut wait = self.backoff;
        for attempt in 1..=self.attempts {
            let mut request = self.client.post(url).header("content-type", "application/json").body(body.clone());
            if let Some(signature) = &signature {
                request = request.header("x-murmur-signature", signature);
            }
            let last_error = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    self.postgres.set_webhook_status(report, WebhookStatus::Delivered, attempt as i32, None).await?;
                    tracing::info!(report, attempt, "report delivered to its webhook");
                    return Ok(());
                }
                Ok(response) => format!("HTTP {}", response.status()),
                // Without the URL: chat webhooks carry their secret in it, and the error is served to readers.
                Err(e) => e.without_url().to_string(),
            };
            tracing::warn!(report, attempt, error = %last_error, "webhook attempt failed");
            let failed = attempt == self.attempts;
            let status = if failed { WebhookStatus::Failed } else { WebhookStatus::Pending };
            self.postgres.set_webhook_status(report, status, attempt as i32, Some(&last_error)).await?;
            if !failed {
                tokio::time::sleep(jittered(wait)).await;
                wait *= 2;
            }
        }
        Ok(())
    }
}

/// `wait` scaled by a random factor in [0.5, 1.5).
fn jittered(wait: StdDuration) -> StdDuration {
    let random = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    wait.mul_f64(0.5 + (random % 1_000_000) as f64 / 1_000_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_waits_are_jittered_around_the_backoff() {
        let waits: Vec<StdDuration> = (0..50).map(|_| jittered(StdDuration::from_secs(2))).collect();
        assert!(waits.iter().all(|w| *w >= StdDuration::from_secs(1) && *w < StdDuration::from_secs(3)), "{waits:?}");
        assert!(waits.iter().any(|w| *w != waits[0]), "the waits vary");
    }

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
