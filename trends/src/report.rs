//! A trend report: for a window, the headline changes against the window before it — volume, sentiment
//! shift, share of voice between the slices, top and trending entities, spikes with example comments.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use murmur_store::{Counts, Duplicates, NewReport};
use serde::{Deserialize, Serialize};

use crate::analysis::SpikeParams;
use crate::bucket::{Bucketing, Unit};
use crate::render;
use crate::service::{EntityQuery, EntityTrend, Point, Spike, Window};
use crate::{Slice, ThemeOrder, ThemeQuery, ThemeSummary, Trends, TrendsError};

/// Themes a report lists as emerging, and as most negative.
const THEMES_LISTED: usize = 5;

/// The longest report window.
const MAX_REPORT_WINDOW_DAYS: i64 = 366;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Html,
    Csv,
}

fn default_slices() -> Vec<Slice> {
    vec![Slice::default()]
}

fn default_formats() -> Vec<Format> {
    vec![Format::Json, Format::Html, Format::Csv]
}

fn default_top() -> usize {
    10
}

fn default_min_mentions() -> i64 {
    5
}

fn default_examples() -> usize {
    3
}

/// What a report covers and where it goes.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// The slices compared (share of voice is among them); all comments by default.
    #[serde(default = "default_slices")]
    pub slices: Vec<Slice>,
    /// Window length: `90m`, `24h`, `7d`, `2w`. By default the time between two runs of the schedule.
    #[serde(default)]
    pub window: Option<String>,
    /// Bucket of the charts and of spike detection; by default from the window's length.
    #[serde(default)]
    pub bucket: Option<Unit>,
    /// JSON is always stored; HTML and CSV when listed.
    #[serde(default = "default_formats")]
    pub formats: Vec<Format>,
    /// Called with a POST of the report's JSON once it is stored, retried on failure.
    #[serde(default)]
    pub webhook: Option<String>,
    #[serde(default = "default_top")]
    pub top_entities: usize,
    /// Fewest mentions of a trending entity in the window.
    #[serde(default = "default_min_mentions")]
    pub min_mentions: i64,
    #[serde(default)]
    pub spikes: SpikeParams,
    /// Example comments per spike.
    #[serde(default = "default_examples")]
    pub examples: usize,
}

impl Default for ReportSpec {
    fn default() -> Self {
        Self {
            slices: default_slices(),
            window: None,
            bucket: None,
            formats: default_formats(),
            webhook: None,
            top_entities: default_top(),
            min_mentions: default_min_mentions(),
            spikes: SpikeParams::default(),
            examples: default_examples(),
        }
    }
}

impl ReportSpec {
    pub fn validate(&self) -> Result<(), TrendsError> {
        if self.slices.is_empty() || self.slices.len() > 20 {
            return Err(TrendsError::Invalid("a report covers 1-20 slices".into()));
        }
        for slice in &self.slices {
            slice.validate()?;
        }
        if let (Some(window), Some(unit)) = (&self.window, self.bucket) {
            // The report reads the window and the one before it.
            let buckets = 2 * parse_length(window)?.num_seconds() / unit.seconds();
            if buckets > crate::MAX_BUCKETS as i64 {
                return Err(TrendsError::Invalid(format!(
                    "a {window} window by {} is {buckets} buckets with the window before; at most {}: pick a larger bucket",
                    unit.as_str(),
                    crate::MAX_BUCKETS
                )));
            }
        } else if let Some(window) = &self.window {
            parse_length(window)?;
        }
        if self.top_entities > 100 || self.examples > 20 {
            return Err(TrendsError::Invalid("top_entities goes up to 100, examples up to 20".into()));
        }
        if self.spikes.baseline == 0 || self.spikes.baseline > 1000 || !self.spikes.threshold.is_finite() {
            return Err(TrendsError::Invalid("spikes.baseline must be 1-1000 and spikes.threshold finite".into()));
        }
        if let Some(url) = &self.webhook {
            crate::webhook::check_url(url)?;
        }
        Ok(())
    }
}

/// `90m`, `24h`, `7d` or `2w` as a duration (at most a year).
pub fn parse_length(s: &str) -> Result<Duration, TrendsError> {
    let bad = || TrendsError::Invalid(format!("window {s:?}: expected a number and m, h, d or w, e.g. 24h"));
    let s = s.trim();
    // The unit is the last character, whatever its width (a multi-byte one, found by the API fuzzer, is
    // refused like any other, not split through).
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let length = match unit {
        'm' => Duration::try_minutes(n),
        'h' => Duration::try_hours(n),
        'd' => Duration::try_days(n),
        'w' => Duration::try_weeks(n),
        _ => return Err(bad()),
    };
    // A number too large for a duration at all (found by the API fuzzer) is out of range like any other.
    match length {
        Some(length) if length > Duration::zero() && length <= Duration::days(MAX_REPORT_WINDOW_DAYS) => Ok(length),
        _ => Err(TrendsError::Invalid(format!("window {s:?} must be between 1m and {MAX_REPORT_WINDOW_DAYS}d"))),
    }
}

/// One slice in the report: now against the window before.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SliceReport {
    pub label: String,
    pub slice: Slice,
    pub comments: i64,
    pub previous_comments: i64,
    /// comments / previous − 1; absent when there were none before.
    pub volume_change: Option<f64>,
    pub net_sentiment: Option<f64>,
    pub previous_net_sentiment: Option<f64>,
    /// Change of net sentiment, in points of the [-1, 1] scale.
    pub sentiment_shift: Option<f64>,
    pub share: f64,
    pub previous_share: f64,
    pub counts: Counts,
    /// The window's buckets.
    pub points: Vec<Point>,
    /// Spikes in the window (the window before serves as their baseline).
    pub spikes: Vec<Spike>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub name: String,
    pub generated_at: DateTime<Utc>,
    pub window: Window,
    pub previous_window: Window,
    pub bucket: Unit,
    pub time_zone: String,
    pub slices: Vec<SliceReport>,
    pub top_entities: Vec<EntityTrend>,
    pub trending_entities: Vec<EntityTrend>,
    /// New and growing themes, fastest growing first (see docs/themes.md).
    pub emerging_themes: Vec<ThemeSummary>,
    /// Themes with at least `min_mentions` comments, most negative first.
    pub negative_themes: Vec<ThemeSummary>,
}

impl Trends {
    /// The report for the window of `length` that ends at the last bucket boundary at or before `end`.
    pub async fn report(
        &self,
        name: &str,
        spec: &ReportSpec,
        end: DateTime<Utc>,
        length: Duration,
        tz: Tz,
    ) -> Result<Report, TrendsError> {
        spec.validate()?;
        let unit = spec.bucket.unwrap_or_else(|| Unit::for_window(length));
        let bucketing = Bucketing { unit, tz };
        let to = bucketing.start(end);
        let window = Window::new(bucketing.start(to - length), to)?;
        let previous = window.previous();
        // One timeline over both windows: the earlier half is the spikes' baseline and the comparison.
        let both = Window::new(bucketing.start(previous.from), window.to)?;
        let timelines = self.timelines(&spec.slices, both, bucketing).await?;
        let current_total = |points: &[Point], now: bool| {
            let mut c = Counts::default();
            for p in points.iter().filter(|p| (p.start >= window.from) == now) {
                c.add(&p.counts);
            }
            c
        };
        let totals: Vec<(Counts, Counts)> =
            timelines.iter().map(|t| (current_total(&t.points, true), current_total(&t.points, false))).collect();
        let all_now: i64 = totals.iter().map(|t| t.0.comments).sum();
        let all_before: i64 = totals.iter().map(|t| t.1.comments).sum();
        let share = |part: i64, whole: i64| if whole > 0 { part as f64 / whole as f64 } else { 0.0 };
        let mut slices = Vec::with_capacity(timelines.len());
        for (timeline, (now, before)) in timelines.into_iter().zip(totals) {
            let spikes = self.spikes_in(&timeline, bucketing, spec.spikes, spec.examples, window.from).await?;
            let first_now = timeline.points.partition_point(|p| p.start < window.from);
            let (net, net_before) = (now.net_sentiment(), before.net_sentiment());
            slices.push(SliceReport {
                label: timeline.label,
                slice: timeline.slice,
                comments: now.comments,
                previous_comments: before.comments,
                volume_change: (before.comments > 0).then(|| now.comments as f64 / before.comments as f64 - 1.0),
                net_sentiment: net,
                previous_net_sentiment: net_before,
                sentiment_shift: net.zip(net_before).map(|(a, b)| a - b),
                share: share(now.comments, all_now),
                previous_share: share(before.comments, all_before),
                counts: now,
                points: timeline.points.into_iter().skip(first_now).collect(),
                spikes,
            });
        }
        let entities = EntityQuery { limit: spec.top_entities, ..EntityQuery::default() };
        let themes = |order| ThemeQuery { source: None, within: None, order, limit: 100, duplicates: Duplicates::Once };
        let mut emerging = self.themes(&themes(ThemeOrder::Growth), window).await?;
        emerging.retain(|t| t.score > 0.0 && t.counts.comments >= spec.min_mentions);
        emerging.truncate(THEMES_LISTED);
        let mut negative = self.themes(&themes(ThemeOrder::Comments), window).await?;
        negative.retain(|t| t.counts.comments >= spec.min_mentions && t.net_sentiment.is_some_and(|n| n < 0.0));
        negative.sort_by(|a, b| a.net_sentiment.unwrap_or(0.0).total_cmp(&b.net_sentiment.unwrap_or(0.0)));
        negative.truncate(THEMES_LISTED);
        Ok(Report {
            name: name.to_owned(),
            generated_at: Utc::now(),
            window,
            previous_window: previous,
            bucket: unit,
            time_zone: tz.name().to_owned(),
            slices,
            top_entities: self.top_entities(&entities, window).await?,
            trending_entities: self.trending_entities(&entities, window, spec.min_mentions).await?,
            emerging_themes: emerging,
            negative_themes: negative,
        })
    }
}

impl Report {
    /// The report in every format its spec asks for, ready to store.
    pub fn to_new_report(&self, spec: &ReportSpec, schedule_id: Option<i64>) -> Result<NewReport, TrendsError> {
        let json = serde_json::to_value(self).map_err(|e| TrendsError::Invalid(format!("report as JSON: {e}")))?;
        Ok(NewReport {
            schedule_id,
            name: self.name.clone(),
            window_from: self.window.from,
            window_to: self.window.to,
            json,
            html: spec.formats.contains(&Format::Html).then(|| render::html(self)),
            csv: spec.formats.contains(&Format::Csv).then(|| render::csv(self)),
            webhook: spec.webhook.is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_lengths_parse_and_refuse_nonsense() {
        assert_eq!(parse_length("24h").ok(), Some(Duration::hours(24)));
        assert_eq!(parse_length("2w").ok(), Some(Duration::days(14)));
        assert_eq!(parse_length("90m").ok(), Some(Duration::minutes(90)));
        // Numbers too large for any duration (the API fuzzer sent 200000000000d) are refused, not a panic.
        // A last character of several bytes (the fuzzer sent "+\u{1}øQj²´å\u{82}Ì") is refused, not split through.
        let wide = ["+\u{1}øQj²´å\u{82}Ì", "7日", "é"];
        for bad in ["", "h", "0d", "-1d", "3y", "400d", "1.5h", "3h30m", "200000000000d", "9223372036854775807w"]
            .into_iter()
            .chain(wide)
        {
            assert!(parse_length(bad).is_err(), "{bad}");
        }
        let by = |window: &str, bucket: Unit| ReportSpec {
            window: Some(window.into()),
            bucket: Some(bucket),
            ..ReportSpec::default()
        };
        assert!(by("7d", Unit::Hour).validate().is_ok());
        assert!(by("30d", Unit::Minute).validate().is_err(), "86,400 minute buckets");
    }
}
