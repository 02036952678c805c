//! Alert rules and the alerts they fired (migration 0009). The rule's meaning (slice, kind, thresholds) is
//! `murmur_trends::alerts`'; here it is a stored definition with the state that makes a firing a claim.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Postgres, StoreError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StoredAlertRule {
    pub id: i64,
    pub name: String,
    /// The rule as the API accepted it.
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    pub cooldown_seconds: i32,
    pub last_fired_at: Option<DateTime<Utc>>,
    /// The start of the bucket the last firing was about.
    pub last_bucket: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl StoredAlertRule {
    /// Whether a firing about the bucket starting at `bucket` could still be claimed at `now`: the bucket is
    /// after the last one fired about and the cooldown has passed. (The claim itself checks again, atomically.)
    pub fn may_fire(&self, bucket: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let cooled =
            self.last_fired_at.is_none_or(|at| now - at >= chrono::Duration::seconds(i64::from(self.cooldown_seconds)));
        cooled && self.last_bucket.is_none_or(|last| bucket > last)
    }
}

/// An alert about to be claimed.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub rule_id: i64,
    pub bucket_start: DateTime<Utc>,
    pub bucket_end: DateTime<Utc>,
    pub body: serde_json::Value,
    pub text: String,
    /// Whether a webhook will be called (the alert starts `pending`).
    pub webhook: bool,
}

/// An alert that fired.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StoredAlert {
    pub id: i64,
    /// The rule, unless it was deleted since.
    pub rule_id: Option<i64>,
    pub rule_name: String,
    pub bucket_start: DateTime<Utc>,
    pub bucket_end: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    /// What was found: kind, value, expectation, counts, entity, example comments.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    /// One line for chat.
    pub text: String,
    pub webhook_status: Option<String>,
    pub webhook_attempts: i32,
    pub webhook_error: Option<String>,
}

impl Postgres {
    pub async fn create_alert_rule(
        &self,
        name: &str,
        definition: &serde_json::Value,
        cooldown_seconds: i32,
    ) -> Result<StoredAlertRule, StoreError> {
        Ok(sqlx::query_as(
            "INSERT INTO alert_rules (name, definition, cooldown_seconds) VALUES ($1, $2, $3) RETURNING *",
        )
        .bind(name)
        .bind(definition)
        .bind(cooldown_seconds)
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn alert_rules(&self) -> Result<Vec<StoredAlertRule>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM alert_rules ORDER BY id").fetch_all(self.pool()).await?)
    }

    /// Whether the rule was there to delete (the alerts it fired stay).
    pub async fn delete_alert_rule(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM alert_rules WHERE id = $1").bind(id).execute(self.pool()).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores the alert if this process is the one to fire it: in one statement, the rule's last firing
    /// moves to this bucket and now, provided the bucket is after the last one fired about and the cooldown
    /// (by the database's clock, which every server shares) has passed. `None` when another process claimed
    /// it first, or the rule is gone.
    pub async fn claim_alert(&self, alert: &NewAlert) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "WITH claimed AS ( \
                 UPDATE alert_rules SET last_fired_at = now(), last_bucket = $2 \
                 WHERE id = $1 AND (last_bucket IS NULL OR last_bucket < $2) \
                   AND (last_fired_at IS NULL OR last_fired_at <= now() - make_interval(secs => cooldown_seconds)) \
                 RETURNING id, name) \
             INSERT INTO alert_firings (rule_id, rule_name, bucket_start, bucket_end, body, text, webhook_status) \
             SELECT id, name, $2, $3, $4, $5, $6 FROM claimed RETURNING id",
        )
        .bind(alert.rule_id)
        .bind(alert.bucket_start)
        .bind(alert.bucket_end)
        .bind(&alert.body)
        .bind(&alert.text)
        .bind(alert.webhook.then_some("pending"))
        .fetch_optional(self.pool())
        .await?)
    }

    /// The newest alerts first (of one rule, if given).
    pub async fn alerts(&self, rule_id: Option<i64>, limit: i64) -> Result<Vec<StoredAlert>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM alert_firings WHERE $1::int8 IS NULL OR rule_id = $1 ORDER BY fired_at DESC, id DESC \
             LIMIT $2",
        )
        .bind(rule_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
