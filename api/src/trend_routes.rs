//! `/v1/trends/*`: what the market says and how it changes. Every route takes a window (`from`, `to`,
//! RFC 3339; the last 7 days by default), and the slice routes a slice (`source`, `tag`, `entity`, `q`,
//! `emotion`). Each route has its own parameter type: a parameter another route takes (`format` on the
//! timeline) or a value outside an enumeration is a 400 naming the parameter and what it accepts.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use murmur_core::{EntityLabel, SentimentLabel};
use murmur_store::DimKind;
use murmur_trends::chart::{self, ShareMeasure};
use murmur_trends::{Bucketing, EntityQuery, Slice, SpikeParams, Unit, Window};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Authorized, Read};
use crate::params::{limit, Query};
use crate::{ApiError, AppState};

const DEFAULT_DAYS: i64 = 7;
const MAX_LIST: i64 = 100;
const MAX_SLICES: usize = 20;
const MAX_EXAMPLES: i64 = 50;

/// How an answer is written: the data, or the data drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Representation {
    #[default]
    Json,
    Svg,
}

/// What entity rankings count: names whatever their type (the default), typed entities, or tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CountBy {
    Name,
    Entity,
    Tag,
}

/// `from`/`to`, the last [`DEFAULT_DAYS`] days by default.
fn window(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<Window, ApiError> {
    let to = to.unwrap_or_else(Utc::now);
    let from = from.unwrap_or(to - Duration::days(DEFAULT_DAYS));
    Ok(Window::new(from, to)?)
}

/// `bucket` (chosen from the window's length by default) and `tz` (UTC by default).
fn bucketing(window: Window, bucket: Option<Unit>, tz: Option<&str>) -> Result<Bucketing, ApiError> {
    let unit = bucket.unwrap_or_else(|| Unit::for_window(window.to - window.from));
    let tz: Tz = match tz {
        None => Tz::UTC,
        Some(raw) => raw.parse().map_err(|_| {
            ApiError::BadRequest(format!("tz: expected an IANA time zone like Europe/Paris, got {raw:?}"))
        })?,
    };
    Ok(Bucketing { unit, tz })
}

fn slice(
    source: Option<String>,
    tag: Option<String>,
    entity: Option<String>,
    q: Option<String>,
    emotion: Option<String>,
) -> Result<Slice, ApiError> {
    let slice = Slice { source, tag, entity, q, emotion };
    slice.validate()?;
    Ok(slice)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimelineParams {
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    to: Option<DateTime<Utc>>,
    bucket: Option<Unit>,
    tz: Option<String>,
    source: Option<String>,
    tag: Option<String>,
    entity: Option<String>,
    q: Option<String>,
    emotion: Option<String>,
}

/// `GET /v1/trends/timeline`: comments and sentiment per bucket for a slice.
pub(crate) async fn timeline(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<TimelineParams>,
) -> Result<HttpResponse, ApiError> {
    let p = p.into_inner();
    let window = window(p.from, p.to)?;
    let bucketing = bucketing(window, p.bucket, p.tz.as_deref())?;
    let slice = slice(p.source, p.tag, p.entity, p.q, p.emotion)?;
    Ok(HttpResponse::Ok().json(state.trends.timeline(&slice, window, bucketing).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShareParams {
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    to: Option<DateTime<Utc>>,
    bucket: Option<Unit>,
    tz: Option<String>,
    /// Comma-separated `tag:…`, `entity:[TYPE:]…`, `emotion:…`, `source:…` or `all`.
    slices: Option<String>,
    /// Applied to every slice that names no source of its own.
    source: Option<String>,
    #[serde(default)]
    format: Representation,
    #[serde(default)]
    measure: ShareMeasure,
}

/// `GET /v1/trends/share?slices=tag:pixel,tag:iphone`: each slice's share of their comments, per bucket;
/// `format=svg` draws it (`measure` picks share, net sentiment or comments).
pub(crate) async fn share(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<ShareParams>,
) -> Result<HttpResponse, ApiError> {
    let window = window(p.from, p.to)?;
    let raw = p
        .slices
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("slices: required (e.g. tag:pixel,tag:iphone)".into()))?;
    let mut slices = raw.split(',').map(Slice::parse_one).collect::<Result<Vec<_>, _>>()?;
    if slices.len() < 2 || slices.len() > MAX_SLICES {
        return Err(ApiError::BadRequest(format!(
            "slices: share of voice compares 2-{MAX_SLICES} slices, got {}",
            slices.len()
        )));
    }
    if let Some(source) = &p.source {
        for slice in &mut slices {
            slice.source.get_or_insert_with(|| source.clone());
        }
    }
    let bucketing = bucketing(window, p.bucket, p.tz.as_deref())?;
    let series = state.trends.share_of_voice(&slices, window, bucketing).await?;
    if p.format == Representation::Svg {
        return Ok(svg(chart::share_svg(&series, bucketing.unit, bucketing.tz.name(), window.to, p.measure)));
    }
    Ok(HttpResponse::Ok().json(json!({
        "bucket": bucketing.unit, "time_zone": bucketing.tz.name(), "from": window.from, "to": window.to,
        "slices": series,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EntityParams {
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    to: Option<DateTime<Utc>>,
    source: Option<String>,
    /// `PER`, `ORG`, `LOC`, `MISC`, `handle` or `hashtag` (with `by=entity`).
    label: Option<String>,
    by: Option<CountBy>,
    limit: Option<i64>,
}

/// [`EntityParams`] and the mentions an entity needs in the window to be trending.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrendingParams {
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    to: Option<DateTime<Utc>>,
    source: Option<String>,
    label: Option<String>,
    by: Option<CountBy>,
    limit: Option<i64>,
    min_mentions: Option<i64>,
}

impl EntityParams {
    fn query(&self) -> Result<EntityQuery, ApiError> {
        let label = match self.label.as_deref() {
            None => None,
            Some(raw) => Some(EntityLabel::parse(raw).ok_or_else(|| {
                ApiError::BadRequest(format!("label: expected PER, ORG, LOC, MISC, handle or hashtag, got {raw:?}"))
            })?),
        };
        // Names are counted as one entity whatever their type, unless a type is asked for.
        let by = match (self.by, label) {
            (None, Some(_)) | (Some(CountBy::Entity), _) => DimKind::Entity,
            (None, None) | (Some(CountBy::Name), _) => DimKind::Name,
            (Some(CountBy::Tag), _) => DimKind::Tag,
        };
        if by != DimKind::Entity && label.is_some() {
            return Err(ApiError::BadRequest("label picks an entity type; it goes with by=entity only".into()));
        }
        if let Some(source) = &self.source {
            murmur_core::check_source(source).map_err(|why| ApiError::BadRequest(format!("source: {why}")))?;
        }
        Ok(EntityQuery { source: self.source.clone(), label, by, limit: limit(self.limit, 20, MAX_LIST)? })
    }
}

/// `GET /v1/trends/entities`: the most mentioned entities in the window, with their sentiment.
pub(crate) async fn top_entities(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<EntityParams>,
) -> Result<HttpResponse, ApiError> {
    let window = window(p.from, p.to)?.for_entities();
    let entities = state.trends.top_entities(&p.query()?, window).await?;
    Ok(HttpResponse::Ok().json(json!({ "from": window.from, "to": window.to, "entities": entities })))
}

/// `GET /v1/trends/trending`: entities mentioned more than in the window before.
pub(crate) async fn trending(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<TrendingParams>,
) -> Result<HttpResponse, ApiError> {
    let TrendingParams { from, to, source, label, by, limit, min_mentions } = p.into_inner();
    let query = EntityParams { from, to, source, label, by, limit }.query()?;
    let window = window(from, to)?.for_entities();
    let min = min_mentions.unwrap_or(5);
    if min < 1 {
        return Err(ApiError::BadRequest(format!("min_mentions: expected at least 1, got {min}")));
    }
    let entities = state.trends.trending_entities(&query, window, min).await?;
    let previous = window.previous();
    Ok(HttpResponse::Ok().json(json!({
        "from": window.from, "to": window.to, "previous_from": previous.from, "previous_to": previous.to,
        "min_mentions": min, "entities": entities,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpikeQuery {
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    to: Option<DateTime<Utc>>,
    bucket: Option<Unit>,
    tz: Option<String>,
    source: Option<String>,
    tag: Option<String>,
    entity: Option<String>,
    q: Option<String>,
    emotion: Option<String>,
    baseline: Option<i64>,
    threshold: Option<f64>,
    min_comments: Option<i64>,
    examples: Option<i64>,
    #[serde(default)]
    format: Representation,
}

/// `GET /v1/trends/spikes`: buckets where volume or negative share departs from the recent baseline, with
/// the timeline they were found in; `format=svg` draws the timeline by sentiment with the spikes marked.
pub(crate) async fn spikes(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<SpikeQuery>,
) -> Result<HttpResponse, ApiError> {
    let p = p.into_inner();
    let window = window(p.from, p.to)?;
    let defaults = SpikeParams::default();
    let baseline = p.baseline.unwrap_or(defaults.baseline as i64);
    if !(1..=1000).contains(&baseline) {
        return Err(ApiError::BadRequest(format!("baseline: expected 1-1000 buckets, got {baseline}")));
    }
    let params = SpikeParams {
        baseline: baseline as usize,
        threshold: p.threshold.unwrap_or(defaults.threshold),
        min_comments: p.min_comments.unwrap_or(defaults.min_comments),
    };
    if !params.threshold.is_finite() || params.threshold <= 0.0 {
        return Err(ApiError::BadRequest(format!("threshold: expected a positive number, got {}", params.threshold)));
    }
    let examples = p.examples.unwrap_or(3);
    if !(0..=MAX_EXAMPLES).contains(&examples) {
        return Err(ApiError::BadRequest(format!("examples: expected 0-{MAX_EXAMPLES}, got {examples}")));
    }
    // A chart shows no examples: its spike marks link to them.
    let examples = if p.format == Representation::Svg { 0 } else { examples as usize };
    let bucketing = bucketing(window, p.bucket, p.tz.as_deref())?;
    let slice = slice(p.source, p.tag, p.entity, p.q, p.emotion)?;
    let (timeline, spikes) = state.trends.spikes(&slice, window, bucketing, params, examples).await?;
    if p.format == Representation::Svg {
        return Ok(svg(chart::volume_svg(&timeline, &spikes)));
    }
    Ok(HttpResponse::Ok().json(json!({
        "method": "robust z-score against the median and MAD of the previous `baseline` buckets",
        "params": params, "spikes": spikes, "timeline": timeline,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExampleParams {
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    to: Option<DateTime<Utc>>,
    source: Option<String>,
    tag: Option<String>,
    entity: Option<String>,
    q: Option<String>,
    emotion: Option<String>,
    sentiment: Option<SentimentLabel>,
    limit: Option<i64>,
}

/// `GET /v1/trends/examples`: a slice's comments in the window, most representative first.
pub(crate) async fn examples(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<ExampleParams>,
) -> Result<HttpResponse, ApiError> {
    let p = p.into_inner();
    let window = window(p.from, p.to)?;
    let limit = limit(p.limit, 10, MAX_EXAMPLES)?;
    let slice = slice(p.source, p.tag, p.entity, p.q, p.emotion)?;
    let examples = state.trends.examples(&slice, window, p.sentiment, limit).await?;
    Ok(HttpResponse::Ok().json(json!({ "from": window.from, "to": window.to, "examples": examples })))
}

fn svg(body: String) -> HttpResponse {
    HttpResponse::Ok().content_type("image/svg+xml; charset=utf-8").body(body)
}
