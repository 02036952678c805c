//! Push alerts: rules users define on a slice (a brand, a brand group, a tag, an entity, words), watched by
//! every `murmur serve` as comments are stored, and delivered to a webhook when they fire.
//!
//! **Evaluation** — every tick (2 s by default) each server reads every rule and judges the slice's current
//! bucket (as far as it has come: a burst is seen while it happens, not when its bucket closes) and the
//! bucket just before it (so comments stored just after a bucket closed still count) from the rollups, or
//! the search index for word slices:
//! - `volume_spike` and `negative_share_spike`: the spike statistics of `analysis` (a robust z-score against
//!   the buckets before, volume against the same hour of earlier days for hour buckets and the same weekday
//!   for day buckets), so an ordinary busy evening does not fire and a burst on top of it does;
//! - `volume_above`: at least `threshold` comments in a bucket;
//! - `net_sentiment_below`: net sentiment (positive − negative, over the comments with a sentiment) at or
//!   below `threshold`, once a bucket holds `min_comments`;
//! - `trending_entity`: an entity mentioned in the slice's comments over the last bucket's length with a
//!   trend score (see `analysis`) of at least `threshold` against the length before, that was not trending
//!   one length earlier (a new one, not the one that has trended all day).
//!
//! **Firing** — a finding is claimed in Postgres (`murmur_store`'s `claim_alert`): at most once per bucket
//! and per cooldown, whatever the number of servers evaluating it. The claimed alert is stored with
//! example comments and a one-line `text` (what Slack-compatible webhooks display) and delivered like a
//! report (`webhook`): signed, retried, in a task of its own.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use murmur_core::SentimentLabel;
use murmur_search::SearchHit;
use murmur_store::{Counts, DimKind, NewAlert, StoredAlertRule, WebhookTarget};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::analysis::{self, SpikeKind, SpikeParams};
use crate::bucket::{Bucketing, Unit};
use crate::service::{spike_window, EntityQuery, EntityTrend, Window};
use crate::webhook::{WebhookOptions, Webhooks};
use crate::{parse_length, Slice, Trends, TrendsError};

const MAX_NAME_CHARS: usize = 200;
const MAX_EXAMPLES: usize = 10;
/// Characters of an example comment quoted in an alert's text.
const QUOTE_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Many more comments than usual (`threshold`: robust z-score, 3.5 by default).
    VolumeSpike,
    /// A larger share of negative comments than usual (`threshold`: robust z-score, 3.5 by default).
    NegativeShareSpike,
    /// At least `threshold` comments in a bucket.
    VolumeAbove,
    /// Net sentiment at or below `threshold` (−1 to 1) in a bucket of at least `min_comments`.
    NetSentimentBelow,
    /// A newly trending entity among the slice's comments (`threshold`: trend score, 3.5 by default).
    TrendingEntity,
}

impl AlertKind {
    fn default_threshold(self) -> Option<f64> {
        match self {
            Self::VolumeSpike | Self::NegativeShareSpike | Self::TrendingEntity => {
                Some(SpikeParams::default().threshold)
            }
            Self::VolumeAbove | Self::NetSentimentBelow => None,
        }
    }
}

/// An alert rule, as `POST /v1/alerts/rules` takes it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// 1-200 characters.
    pub name: String,
    /// The comments watched (all of them by default).
    #[serde(default)]
    pub slice: Slice,
    pub kind: AlertKind,
    /// `minute`, `hour` (the default) or `day`.
    #[serde(default = "default_bucket")]
    pub bucket: Unit,
    /// What fires (see the kinds); required for `volume_above` and `net_sentiment_below`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Fewest comments in a bucket for it to fire (10 by default).
    #[serde(default = "default_min_comments")]
    pub min_comments: i64,
    /// The least time between two firings: `30m`, `1h` (the default), `1d`.
    #[serde(default = "default_cooldown")]
    pub cooldown: String,
    /// Where each firing is POSTed (signed like reports); without one, alerts are only listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// IANA time zone day buckets start in (UTC by default).
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Example comments stored with each alert (0-10, 3 by default).
    #[serde(default = "default_examples")]
    pub examples: usize,
}

fn default_bucket() -> Unit {
    Unit::Hour
}
fn default_min_comments() -> i64 {
    10
}
fn default_cooldown() -> String {
    "1h".into()
}
fn default_time_zone() -> String {
    "UTC".into()
}
fn default_examples() -> usize {
    3
}

impl AlertRule {
    /// Checks every field; returns the cooldown in seconds.
    pub fn validate(&self) -> Result<i32, TrendsError> {
        let bad = |message: String| Err(TrendsError::Invalid(message));
        if self.name.trim().is_empty() || self.name.chars().count() > MAX_NAME_CHARS {
            return bad(format!("name: expected 1-{MAX_NAME_CHARS} characters"));
        }
        self.slice.validate()?;
        if self.bucket == Unit::Week {
            return bad("bucket: expected minute, hour or day".into());
        }
        self.tz()?;
        match (self.kind, self.threshold) {
            (AlertKind::VolumeAbove | AlertKind::NetSentimentBelow, None) => {
                return bad(format!("threshold: required for {}", self.kind_name()));
            }
            (_, Some(t)) if !t.is_finite() => return bad(format!("threshold: expected a number, got {t}")),
            (AlertKind::VolumeAbove, Some(t)) if t < 1.0 => return bad(format!("threshold: expected ≥ 1, got {t}")),
            (AlertKind::NetSentimentBelow, Some(t)) if !(-1.0..=1.0).contains(&t) => {
                return bad(format!("threshold: expected -1 to 1, got {t}"));
            }
            (AlertKind::VolumeSpike | AlertKind::NegativeShareSpike | AlertKind::TrendingEntity, Some(t))
                if !(1.0..=100.0).contains(&t) =>
            {
                return bad(format!("threshold: expected a z-score of 1-100, got {t}"));
            }
            _ => {}
        }
        if self.kind == AlertKind::TrendingEntity {
            if self.bucket == Unit::Minute {
                return bad(
                    "bucket: trending_entity rules take hour or day buckets (entities are counted by the hour)".into(),
                );
            }
            if self.slice.q.is_some() || self.slice.dim().is_none() {
                return bad(
                    "slice: trending_entity rules take all comments, a brand, a brand group, a tag or an entity name"
                        .into(),
                );
            }
        }
        if !(1..=1_000_000).contains(&self.min_comments) {
            return bad(format!("min_comments: expected 1-1000000, got {}", self.min_comments));
        }
        if self.examples > MAX_EXAMPLES {
            return bad(format!("examples: expected 0-{MAX_EXAMPLES}, got {}", self.examples));
        }
        if let Some(url) = &self.webhook {
            crate::webhook::check_url(url)?;
        }
        let cooldown = parse_length(&self.cooldown).map_err(|_| {
            TrendsError::Invalid(format!("cooldown {:?}: expected a number and m, h, d or w, e.g. 1h", self.cooldown))
        })?;
        if cooldown < Duration::minutes(1) || cooldown > Duration::days(30) {
            return bad(format!("cooldown {:?}: expected 1m to 30d", self.cooldown));
        }
        Ok(cooldown.num_seconds() as i32)
    }

    /// The threshold given, or the kind's default.
    fn threshold(&self) -> f64 {
        self.threshold.or(self.kind.default_threshold()).unwrap_or_default()
    }

    fn kind_name(&self) -> String {
        serde_json::to_value(self.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }

    fn tz(&self) -> Result<Tz, TrendsError> {
        self.time_zone
            .parse()
            .map_err(|_| TrendsError::Invalid(format!("time_zone {:?}: expected an IANA name", self.time_zone)))
    }

    fn bucketing(&self) -> Result<Bucketing, TrendsError> {
        Ok(Bucketing { unit: self.bucket, tz: self.tz()? })
    }
}

/// What a rule found in a bucket.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Finding {
    pub kind: AlertKind,
    pub slice: Slice,
    pub label: String,
    pub bucket: Unit,
    pub bucket_start: DateTime<Utc>,
    pub bucket_end: DateTime<Utc>,
    /// Comments, negative share, net sentiment, or the entity's mentions: what the threshold was applied to.
    pub value: f64,
    /// What the bucket usually holds (spikes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<f64>,
    /// Robust z-score (spikes) or trend score (trending entities).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z: Option<f64>,
    pub threshold: f64,
    /// The bucket's comments by sentiment (so far, for the current bucket).
    pub counts: Counts,
    /// The newly trending entity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<EntityTrend>,
    pub examples: Vec<SearchHit>,
}

impl Finding {
    /// What `rule` found in the bucket starting at `start`: `value` against `threshold`, without examples.
    fn new(rule: &AlertRule, bucketing: Bucketing, start: DateTime<Utc>, value: f64, counts: Counts) -> Self {
        Self {
            kind: rule.kind,
            slice: rule.slice.clone(),
            label: rule.slice.label(),
            bucket: rule.bucket,
            bucket_start: start,
            bucket_end: bucketing.next(start),
            value,
            expected: None,
            z: None,
            threshold: rule.threshold(),
            counts,
            entity: None,
            examples: Vec::new(),
        }
    }
}

impl Trends {
    /// What `rule` finds at `now` in the current bucket or the one before (the newer first), without
    /// examples; `None` when neither fires.
    pub async fn evaluate_alert(&self, rule: &AlertRule, now: DateTime<Utc>) -> Result<Option<Finding>, TrendsError> {
        let bucketing = rule.bucketing()?;
        if rule.kind == AlertKind::TrendingEntity {
            return self.trending_alert(rule, bucketing, now).await;
        }
        let current = bucketing.start(now);
        let previous = bucketing.start(current - Duration::seconds(1));
        let threshold = rule.threshold();
        let params = SpikeParams { threshold, min_comments: rule.min_comments, ..SpikeParams::default() };
        let window = spike_window(Window::new(previous, now)?, bucketing, params);
        let timeline = self.timeline(&rule.slice, window, bucketing).await?;
        let counts: Vec<Counts> = timeline.points.iter().map(|p| p.counts).collect();
        let first = timeline.points.partition_point(|p| p.start < previous);
        let found: Option<(usize, f64, Option<f64>, Option<f64>)> = match rule.kind {
            AlertKind::VolumeSpike | AlertKind::NegativeShareSpike => {
                let wanted =
                    if rule.kind == AlertKind::VolumeSpike { SpikeKind::Volume } else { SpikeKind::NegativeShare };
                analysis::spikes_from(&counts, first, params, bucketing.unit.season())
                    .into_iter()
                    .rfind(|d| d.kind == wanted)
                    .map(|d| (d.index, d.value, Some(d.baseline), Some(d.z)))
            }
            AlertKind::VolumeAbove => (first..counts.len())
                .rev()
                .find(|&i| counts[i].comments as f64 >= threshold && counts[i].comments >= rule.min_comments)
                .map(|i| (i, counts[i].comments as f64, None, None)),
            AlertKind::NetSentimentBelow => (first..counts.len()).rev().find_map(|i| {
                let classified = counts[i].negative + counts[i].neutral + counts[i].positive;
                let net = counts[i].net_sentiment().filter(|_| classified >= rule.min_comments)?;
                (net <= threshold).then_some((i, net, None, None))
            }),
            AlertKind::TrendingEntity => None,
        };
        Ok(found.map(|(i, value, expected, z)| Finding {
            expected,
            z,
            ..Finding::new(rule, bucketing, timeline.points[i].start, value, counts[i])
        }))
    }

    /// A trending entity over the last bucket's length that was not trending one length before.
    async fn trending_alert(
        &self,
        rule: &AlertRule,
        bucketing: Bucketing,
        now: DateTime<Utc>,
    ) -> Result<Option<Finding>, TrendsError> {
        let length = Duration::seconds(rule.bucket.seconds());
        let threshold = rule.threshold();
        let query = EntityQuery {
            source: rule.slice.source.clone(),
            within: rule.slice.dim().filter(|d| *d != murmur_store::Dim::All),
            by: DimKind::Name,
            limit: 10,
            duplicates: rule.slice.duplicates,
            ..EntityQuery::default()
        };
        let trending = |window: Window| {
            let query = query.clone();
            async move {
                let list = self.trending_entities(&query, window, rule.min_comments).await?;
                Ok::<_, TrendsError>(
                    list.into_iter().filter(|e| e.score.is_some_and(|s| s >= threshold)).collect::<Vec<_>>(),
                )
            }
        };
        let window = Window::new(now - length, now)?;
        let now_trending = trending(window).await?;
        if now_trending.is_empty() {
            return Ok(None);
        }
        let before = trending(Window::new(now - length - length, now - length)?).await?;
        let Some(entity) = now_trending.into_iter().find(|e| !before.iter().any(|b| b.name == e.name)) else {
            return Ok(None);
        };
        let found = Finding::new(rule, bucketing, bucketing.start(now), entity.counts.comments as f64, entity.counts);
        Ok(Some(Finding {
            expected: entity.previous.map(|p| p as f64),
            z: entity.score,
            entity: Some(entity),
            ..found
        }))
    }

    /// The finding's bucket's most representative comments (negative ones for a negative finding; those
    /// naming the entity for a trending one).
    async fn add_examples(&self, rule: &AlertRule, finding: &mut Finding) -> Result<(), TrendsError> {
        if rule.examples == 0 {
            return Ok(());
        }
        let mut slice = rule.slice.clone();
        if let Some(entity) = &finding.entity {
            if slice.brand.is_none() && slice.brand_group.is_none() && slice.entity.is_none() {
                slice.entity = Some(entity.name.clone());
            }
        }
        let negative = matches!(rule.kind, AlertKind::NegativeShareSpike | AlertKind::NetSentimentBelow);
        let sentiment = negative.then_some(SentimentLabel::Negative);
        let window = Window::new(finding.bucket_start, finding.bucket_end)?;
        finding.examples = self.examples(&slice, window, sentiment, rule.examples).await?;
        Ok(())
    }
}

/// The alert's one line for chat, with its first example quoted.
pub fn alert_text(rule_name: &str, finding: &Finding, tz: Tz) -> String {
    let at = finding.bucket_start.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z");
    let about = &finding.label;
    let unit = finding.bucket.as_str();
    let mut text = match finding.kind {
        AlertKind::VolumeSpike => format!(
            "{rule_name}: {} comments about {about} in the {unit} from {at}, usually {:.0} (z = {:.1})",
            finding.value,
            finding.expected.unwrap_or_default(),
            finding.z.unwrap_or_default()
        ),
        AlertKind::NegativeShareSpike => format!(
            "{rule_name}: {:.0}% of {} comments about {about} negative in the {unit} from {at}, usually {:.0}% (z = {:.1})",
            100.0 * finding.value,
            finding.counts.comments,
            100.0 * finding.expected.unwrap_or_default(),
            finding.z.unwrap_or_default()
        ),
        AlertKind::VolumeAbove => format!(
            "{rule_name}: {} comments about {about} in the {unit} from {at} (threshold {})",
            finding.value, finding.threshold
        ),
        AlertKind::NetSentimentBelow => format!(
            "{rule_name}: net sentiment {:+.2} over {} comments about {about} in the {unit} from {at} (threshold {:+.2})",
            finding.value, finding.counts.comments, finding.threshold
        ),
        AlertKind::TrendingEntity => {
            let entity = finding.entity.as_ref();
            format!(
                "{rule_name}: {} is trending in comments about {about}: {} mentions in the last {unit}, {} the {unit} before",
                entity.map_or("an entity", |e| e.name.as_str()),
                finding.value,
                finding.expected.unwrap_or_default()
            )
        }
    };
    if let Some(example) = finding.examples.first() {
        let mut quote: String = example.text.chars().take(QUOTE_CHARS).collect();
        if quote.len() < example.text.len() {
            quote.push('…');
        }
        text.push_str(&format!("\n> {}", quote.replace('\n', " ")));
    }
    text
}

/// How the alert evaluator polls and delivers.
#[derive(Debug, Clone)]
pub struct AlerterOptions {
    /// How often every rule is evaluated.
    pub tick: StdDuration,
    pub webhooks: WebhookOptions,
}

impl Default for AlerterOptions {
    fn default() -> Self {
        Self { tick: StdDuration::from_secs(2), webhooks: WebhookOptions::default() }
    }
}

/// Evaluates every alert rule on a tick, claims what fires and delivers it (one per `serve` process).
pub struct Alerter {
    trends: Trends,
    tick: StdDuration,
    webhooks: Webhooks,
}

impl Alerter {
    pub fn new(trends: Trends, options: AlerterOptions) -> Result<Self, TrendsError> {
        let webhooks = Webhooks::new(trends.postgres().clone(), options.webhooks)?;
        Ok(Self { trends, tick: options.tick, webhooks })
    }

    /// Evaluates the rules every tick until `shutdown`; failures are logged and the loop goes on.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(
            tick_ms = self.tick.as_millis() as u64,
            signed = self.webhooks.signed(),
            "alert evaluator started"
        );
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.tick) => {}
            }
            if let Err(e) = self.evaluate_all(Utc::now()).await {
                tracing::error!(error = %e, "alert evaluator");
            }
        }
    }

    /// Evaluates every rule at `now`; returns the alerts this process claimed (their webhook deliveries go
    /// on in tasks of their own).
    pub async fn evaluate_all(&self, now: DateTime<Utc>) -> Result<Vec<i64>, TrendsError> {
        let mut fired = Vec::new();
        for stored in self.trends.postgres().alert_rules().await? {
            match self.evaluate(&stored, now).await {
                Ok(Some(id)) => fired.push(id),
                Ok(None) => {}
                Err(e) => tracing::error!(rule = stored.id, name = %stored.name, error = %e, "alert rule failed"),
            }
        }
        Ok(fired)
    }

    async fn evaluate(&self, stored: &StoredAlertRule, now: DateTime<Utc>) -> Result<Option<i64>, TrendsError> {
        let rule: AlertRule = serde_json::from_value(stored.definition.clone())
            .map_err(|e| TrendsError::Invalid(format!("alert rule {}: stored definition: {e}", stored.id)))?;
        let Some(mut finding) = self.trends.evaluate_alert(&rule, now).await? else { return Ok(None) };
        if !stored.may_fire(finding.bucket_start, now) {
            return Ok(None);
        }
        self.trends.add_examples(&rule, &mut finding).await?;
        let text = alert_text(&rule.name, &finding, rule.tz()?);
        let body = serde_json::to_value(&finding).map_err(|e| TrendsError::Invalid(format!("alert body: {e}")))?;
        let alert = NewAlert {
            rule_id: stored.id,
            bucket_start: finding.bucket_start,
            bucket_end: finding.bucket_end,
            body: body.clone(),
            text: text.clone(),
            webhook: rule.webhook.is_some(),
        };
        let Some(id) = self.trends.postgres().claim_alert(&alert).await? else { return Ok(None) };
        tracing::info!(rule = stored.id, alert = id, name = %rule.name, kind = ?rule.kind, "alert fired");
        if let Some(url) = rule.webhook {
            let payload = json!({
                "event": "alert.fired", "alert_id": id, "rule_id": stored.id, "rule": rule.name,
                "text": text, "alert": body,
            });
            let payload =
                serde_json::to_vec(&payload).map_err(|e| TrendsError::Invalid(format!("webhook body: {e}")))?;
            self.webhooks.spawn(WebhookTarget::Alert(id), url, payload);
        }
        Ok(Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(body: serde_json::Value) -> AlertRule {
        serde_json::from_value(body).expect("a rule")
    }

    #[test]
    fn rules_are_checked_field_by_field() {
        let ok = rule(json!({"name": "United", "slice": {"brand": "United"}, "kind": "volume_spike"}));
        assert_eq!(ok.validate().ok(), Some(3600), "an hour's cooldown by default");
        let error = |body: serde_json::Value| rule(body).validate().expect_err("refused").to_string();
        assert!(error(json!({"name": "x", "kind": "volume_above"})).contains("threshold: required for volume_above"));
        assert!(error(json!({"name": "x", "kind": "net_sentiment_below", "threshold": -2})).contains("-1 to 1"));
        assert!(error(json!({"name": "x", "kind": "volume_spike", "bucket": "week"})).contains("bucket"));
        assert!(error(json!({"name": "x", "kind": "volume_spike", "cooldown": "soon"})).contains("cooldown \"soon\""));
        assert!(error(json!({"name": "x", "kind": "volume_spike", "cooldown": "90d"})).contains("1m to 30d"));
        assert!(error(json!({"name": "", "kind": "volume_spike"})).contains("name"));
        assert!(error(json!({"name": "x", "kind": "volume_spike", "webhook": "ftp://x"})).contains("webhook"));
        assert!(error(json!({"name": "x", "kind": "volume_spike", "time_zone": "Mars/Olympus"})).contains("time_zone"));
        let words = json!({"name": "x", "kind": "trending_entity", "slice": {"q": "refund"}});
        assert!(error(words).contains("trending_entity rules take"));
        let minutes = json!({"name": "x", "kind": "trending_entity", "bucket": "minute"});
        assert!(error(minutes).contains("hour or day"));
        assert!(serde_json::from_value::<AlertRule>(json!({"name": "x", "kind": "volume_spike", "color": 1})).is_err());
    }

    #[test]
    fn texts_say_what_where_and_against_what() {
        let finding = Finding {
            kind: AlertKind::VolumeSpike,
            slice: Slice { brand: Some("United".into()), ..Slice::default() },
            label: "United".into(),
            bucket: Unit::Hour,
            bucket_start: "2026-03-01T18:00:00Z".parse().expect("time"),
            bucket_end: "2026-03-01T19:00:00Z".parse().expect("time"),
            value: 143.0,
            expected: Some(22.4),
            z: Some(9.06),
            threshold: 3.5,
            counts: Counts { comments: 143, ..Counts::default() },
            entity: None,
            examples: Vec::new(),
        };
        assert_eq!(
            alert_text("United volume", &finding, Tz::UTC),
            "United volume: 143 comments about United in the hour from 2026-03-01 18:00 UTC, usually 22 (z = 9.1)"
        );
        assert!(alert_text("x", &finding, chrono_tz::Europe::Paris).contains("19:00 CET"));
    }
}
