//! `/v1/trends/*`: what the market says and how it changes. Every route takes a window (`from`, `to`,
//! RFC 3339; the last 7 days by default), and the slice routes a slice (`source`, `tag`, `entity`, `q`).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use murmur_core::{EntityLabel, SentimentLabel};
use murmur_store::DimKind;
use murmur_trends::chart::{self, ShareMeasure};
use murmur_trends::{Bucketing, EntityQuery, Slice, SpikeParams, Unit, Window};
use serde::Deserialize;
use serde_json::json;

use crate::{ApiError, AppState};

const DEFAULT_DAYS: i64 = 7;
const MAX_LIST: usize = 100;
const MAX_SLICES: usize = 20;
const MAX_EXAMPLES: usize = 50;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrendParams {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    bucket: Option<String>,
    tz: Option<String>,
    source: Option<String>,
    tag: Option<String>,
    entity: Option<String>,
    q: Option<String>,
    emotion: Option<String>,
    /// Share of voice: comma-separated `tag:…`, `entity:[TYPE:]…`, `emotion:…`, `source:…` or `all`.
    slices: Option<String>,
    label: Option<String>,
    by: Option<String>,
    limit: Option<usize>,
    min_mentions: Option<i64>,
    sentiment: Option<SentimentLabel>,
    baseline: Option<usize>,
    threshold: Option<f64>,
    min_comments: Option<i64>,
    examples: Option<usize>,
    /// `json` (the default) or `svg` (a chart; spikes and share of voice).
    format: Option<String>,
    /// What a share-of-voice chart plots: `share` (the default), `net_sentiment` or `comments`.
    measure: Option<String>,
}

/// How an answer is written: the data, or the data drawn.
#[derive(PartialEq, Eq)]
enum Representation {
    Json,
    Svg,
}

impl TrendParams {
    fn window(&self) -> Result<Window, ApiError> {
        let to = self.to.unwrap_or_else(Utc::now);
        let from = self.from.unwrap_or(to - Duration::days(DEFAULT_DAYS));
        Ok(Window::new(from, to)?)
    }

    fn bucketing(&self, window: Window) -> Result<Bucketing, ApiError> {
        let unit = match self.bucket.as_deref() {
            None => Unit::for_window(window.to - window.from),
            Some(raw) => Unit::parse(raw)
                .ok_or_else(|| ApiError::BadRequest(format!("bucket {raw:?}: expected minute, hour, day or week")))?,
        };
        let tz: Tz = match self.tz.as_deref() {
            None => Tz::UTC,
            Some(raw) => raw
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("tz {raw:?} is not an IANA time zone like Europe/Paris")))?,
        };
        Ok(Bucketing { unit, tz })
    }

    fn slice(&self) -> Result<Slice, ApiError> {
        let slice = Slice {
            source: self.source.clone(),
            tag: self.tag.clone(),
            entity: self.entity.clone(),
            q: self.q.clone(),
            emotion: self.emotion.clone(),
        };
        slice.validate()?;
        Ok(slice)
    }

    fn limit(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.limit.unwrap_or(default) {
            n if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!("limit must be 1-{max}"))),
        }
    }

    fn representation(&self) -> Result<Representation, ApiError> {
        match self.format.as_deref() {
            None | Some("json") => Ok(Representation::Json),
            Some("svg") => Ok(Representation::Svg),
            Some(raw) => Err(ApiError::BadRequest(format!("format {raw:?}: expected json or svg"))),
        }
    }

    fn entity_query(&self) -> Result<EntityQuery, ApiError> {
        let label = match self.label.as_deref() {
            None => None,
            Some(raw) => Some(EntityLabel::parse(raw).ok_or_else(|| {
                ApiError::BadRequest(format!("label {raw:?}: expected PER, ORG, LOC, MISC, handle or hashtag"))
            })?),
        };
        // Names are counted as one entity whatever their type, unless a type is asked for.
        let by = match self.by.as_deref() {
            None if label.is_some() => DimKind::Entity,
            None | Some("name") => DimKind::Name,
            Some("entity") => DimKind::Entity,
            Some("tag") => DimKind::Tag,
            Some(raw) => return Err(ApiError::BadRequest(format!("by {raw:?}: expected name, entity or tag"))),
        };
        if by != DimKind::Entity && label.is_some() {
            return Err(ApiError::BadRequest("label picks an entity type; it goes with by=entity only".into()));
        }
        if let Some(source) = &self.source {
            murmur_core::check_source(source).map_err(ApiError::BadRequest)?;
        }
        Ok(EntityQuery { source: self.source.clone(), label, by, limit: self.limit(20, MAX_LIST)? })
    }
}

/// `GET /v1/trends/timeline`: comments and sentiment per bucket for a slice.
pub(crate) async fn timeline(state: web::Data<AppState>, p: web::Query<TrendParams>) -> Result<HttpResponse, ApiError> {
    let window = p.window()?;
    let timeline = state.trends.timeline(&p.slice()?, window, p.bucketing(window)?).await?;
    Ok(HttpResponse::Ok().json(timeline))
}

/// `GET /v1/trends/share?slices=tag:pixel,tag:iphone`: each slice's share of their comments, per bucket;
/// `format=svg` draws it (`measure` picks share, net sentiment or comments).
pub(crate) async fn share(state: web::Data<AppState>, p: web::Query<TrendParams>) -> Result<HttpResponse, ApiError> {
    let window = p.window()?;
    let representation = p.representation()?;
    let measure = match p.measure.as_deref() {
        None => ShareMeasure::Share,
        Some(raw) => ShareMeasure::parse(raw).ok_or_else(|| {
            ApiError::BadRequest(format!("measure {raw:?}: expected share, net_sentiment or comments"))
        })?,
    };
    let raw = p.slices.as_deref().ok_or_else(|| ApiError::BadRequest("slices is required".into()))?;
    let mut slices = raw.split(',').map(Slice::parse_one).collect::<Result<Vec<_>, _>>()?;
    if slices.len() < 2 || slices.len() > MAX_SLICES {
        return Err(ApiError::BadRequest(format!("share of voice compares 2-{MAX_SLICES} slices")));
    }
    if let Some(source) = &p.source {
        for slice in &mut slices {
            slice.source.get_or_insert_with(|| source.clone());
        }
    }
    let bucketing = p.bucketing(window)?;
    let series = state.trends.share_of_voice(&slices, window, bucketing).await?;
    if representation == Representation::Svg {
        return Ok(svg(chart::share_svg(&series, bucketing.unit, bucketing.tz.name(), window.to, measure)));
    }
    Ok(HttpResponse::Ok().json(json!({
        "bucket": bucketing.unit, "time_zone": bucketing.tz.name(), "from": window.from, "to": window.to,
        "slices": series,
    })))
}

/// `GET /v1/trends/entities`: the most mentioned entities in the window, with their sentiment.
pub(crate) async fn top_entities(
    state: web::Data<AppState>,
    p: web::Query<TrendParams>,
) -> Result<HttpResponse, ApiError> {
    let window = p.window()?.for_entities();
    let entities = state.trends.top_entities(&p.entity_query()?, window).await?;
    Ok(HttpResponse::Ok().json(json!({ "from": window.from, "to": window.to, "entities": entities })))
}

/// `GET /v1/trends/trending`: entities mentioned more than in the window before.
pub(crate) async fn trending(state: web::Data<AppState>, p: web::Query<TrendParams>) -> Result<HttpResponse, ApiError> {
    let window = p.window()?.for_entities();
    let min = p.min_mentions.unwrap_or(5);
    if min < 1 {
        return Err(ApiError::BadRequest("min_mentions must be at least 1".into()));
    }
    let entities = state.trends.trending_entities(&p.entity_query()?, window, min).await?;
    let previous = window.previous();
    Ok(HttpResponse::Ok().json(json!({
        "from": window.from, "to": window.to, "previous_from": previous.from, "previous_to": previous.to,
        "min_mentions": min, "entities": entities,
    })))
}

/// `GET /v1/trends/spikes`: buckets where volume or negative share departs from the recent baseline, with
/// the timeline they were found in; `format=svg` draws the timeline by sentiment with the spikes marked.
pub(crate) async fn spikes(state: web::Data<AppState>, p: web::Query<TrendParams>) -> Result<HttpResponse, ApiError> {
    let window = p.window()?;
    let representation = p.representation()?;
    let defaults = SpikeParams::default();
    let params = SpikeParams {
        baseline: p.baseline.unwrap_or(defaults.baseline),
        threshold: p.threshold.unwrap_or(defaults.threshold),
        min_comments: p.min_comments.unwrap_or(defaults.min_comments),
    };
    if !(1..=1000).contains(&params.baseline) || !params.threshold.is_finite() || params.threshold <= 0.0 {
        return Err(ApiError::BadRequest("baseline must be 1-1000 and threshold a positive number".into()));
    }
    let examples = p.examples.unwrap_or(3);
    if examples > MAX_EXAMPLES {
        return Err(ApiError::BadRequest(format!("examples must be 0-{MAX_EXAMPLES}")));
    }
    // A chart shows no examples: its spike marks link to them.
    let examples = if representation == Representation::Svg { 0 } else { examples };
    let (timeline, spikes) = state.trends.spikes(&p.slice()?, window, p.bucketing(window)?, params, examples).await?;
    if representation == Representation::Svg {
        return Ok(svg(chart::volume_svg(&timeline, &spikes)));
    }
    Ok(HttpResponse::Ok().json(json!({
        "method": "robust z-score against the median and MAD of the previous `baseline` buckets",
        "params": params, "spikes": spikes, "timeline": timeline,
    })))
}

/// `GET /v1/trends/examples`: a slice's comments in the window, most representative first.
pub(crate) async fn examples(state: web::Data<AppState>, p: web::Query<TrendParams>) -> Result<HttpResponse, ApiError> {
    let window = p.window()?;
    let limit = p.limit(10, MAX_EXAMPLES)?;
    let examples = state.trends.examples(&p.slice()?, window, p.sentiment, limit).await?;
    Ok(HttpResponse::Ok().json(json!({ "from": window.from, "to": window.to, "examples": examples })))
}

fn svg(body: String) -> HttpResponse {
    HttpResponse::Ok().content_type("image/svg+xml; charset=utf-8").body(body)
}
