//! `/v1/trends/*`: what the market says and how it changes. Every route takes a window ([`WindowParams`]:
//! `from`, `to`, RFC 3339; the last 7 days by default); the routes over one slice take [`SliceParams`]
//! (`source`, `tag`, `entity`, `q`, `emotion`), the bucketed ones [`BucketParams`]; each adds its own
//! options. A route takes exactly its groups' parameters: another route's (`format` on the timeline) or a
//! value outside an enumeration is a 400 naming the parameter and what it accepts.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use murmur_core::{EmotionLabel, EntityLabel, SentimentLabel};
use murmur_search::SearchHit;
use murmur_store::{Dim, DimKind, Duplicates};
use murmur_trends::chart::{self, ShareMeasure};
use murmur_trends::{
    Bucketing, EntityQuery, EntityTrend, ShareSeries, Slice, Spike, SpikeParams, Timeline, Unit, Window,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Authorized, Read};
use crate::error::Refusals;
use crate::params::{limit, Query};
use crate::{ApiError, AppState};

const DEFAULT_DAYS: i64 = 7;
const MAX_LIST: i64 = 100;
const MAX_SLICES: usize = 20;
const MAX_EXAMPLES: i64 = 50;

/// How an answer is written: the data, or the data drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Representation {
    #[default]
    Json,
    Svg,
}

/// What entity rankings count: names whatever their type (the default), typed entities, tags, the
/// catalogue's brands or brand groups, themes, or languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CountBy {
    Name,
    Entity,
    Tag,
    Brand,
    BrandGroup,
    /// Themes (`/v1/themes`), by id: trending themes are the emerging ones.
    Theme,
    /// The comments' languages (`en`, `fr`, `und` for undetermined): the language mix.
    Lang,
}

/// The window every trend route reads.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WindowParams {
    /// Start of the window (RFC 3339); 7 days before `to` by default.
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    from: Option<DateTime<Utc>>,
    /// End of the window (RFC 3339); now by default.
    #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
    to: Option<DateTime<Utc>>,
}

impl WindowParams {
    /// `[from, to)`, the last [`DEFAULT_DAYS`] days by default.
    pub(crate) fn window(&self) -> Result<Window, ApiError> {
        let to = self.to.unwrap_or_else(Utc::now);
        let from = self.from.unwrap_or(to - Duration::days(DEFAULT_DAYS));
        Ok(Window::new(from, to)?)
    }
}

/// How a window is cut into buckets.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct BucketParams {
    /// Bucket length; chosen from the window's length by default.
    bucket: Option<Unit>,
    /// IANA time zone buckets start in (`Europe/Paris`); UTC by default.
    tz: Option<String>,
}

impl BucketParams {
    pub(crate) fn bucketing(&self, window: Window) -> Result<Bucketing, ApiError> {
        let unit = self.bucket.unwrap_or_else(|| Unit::for_window(window.to - window.from));
        let tz: Tz = match self.tz.as_deref() {
            None => Tz::UTC,
            Some(raw) => raw.parse().map_err(|_| {
                ApiError::BadRequest(format!("tz: expected an IANA time zone like Europe/Paris, got {raw:?}"))
            })?,
        };
        Ok(Bucketing { unit, tz })
    }
}

/// Which comments a route reads; all of them by default.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SliceParams {
    /// Only comments mentioning this brand of the catalogue (`/v1/brands`), by name; combines with `source`
    /// only.
    brand: Option<String>,
    /// Only comments mentioning a brand of this group; combines with `source` only.
    brand_group: Option<String>,
    /// Only comments of this theme (`/v1/themes`), by id; combines with `source` only.
    theme: Option<i64>,
    /// Only comments from this source.
    source: Option<String>,
    /// Only comments with this producer tag (a brand, a campaign).
    tag: Option<String>,
    /// `ORG:Google` (a name of one type) or `Google` (the name, whatever its type).
    entity: Option<String>,
    /// Words the comments must match (tantivy query syntax).
    q: Option<String>,
    /// Only comments the model found this emotion in.
    #[param(value_type = Option<EmotionLabel>)]
    emotion: Option<String>,
    /// Only comments in this language (`en`, `fr`, `und` for undetermined): the detected language where the
    /// detector was at least 0.5 confident, else the producer's `lang`.
    lang: Option<String>,
    /// `once` (the default): a cluster of near-duplicates (retweets, copy-paste) counts as one comment;
    /// `include`: every copy counts.
    #[param(value_type = Option<Duplicates>)]
    duplicates: Option<String>,
}

impl SliceParams {
    fn slice(self) -> Result<Slice, ApiError> {
        let Self { brand, brand_group, theme, source, tag, entity, q, emotion, lang, duplicates } = self;
        let duplicates = parse_duplicates(duplicates.as_deref())?;
        let slice = Slice { source, tag, entity, q, emotion, brand, brand_group, theme, lang, duplicates };
        slice.validate()?;
        Ok(slice)
    }
}

/// The `duplicates` parameter: how copies count (once by default).
pub(crate) fn parse_duplicates(raw: Option<&str>) -> Result<Duplicates, ApiError> {
    raw.map_or(Ok(Duplicates::Once), |raw| {
        Duplicates::parse(raw)
            .ok_or_else(|| ApiError::BadRequest(format!("duplicates: expected once or include, got {raw:?}")))
    })
}

/// Comments and sentiment per bucket for a slice.
#[utoipa::path(get, path = "/v1/trends/timeline", tag = "trends", params(WindowParams, BucketParams, SliceParams),
    security(("api_key" = ["read"])),
    responses((status = 200, description = "The slice's timeline", body = Timeline), Refusals))]
pub(crate) async fn timeline(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<(WindowParams, BucketParams, SliceParams)>,
) -> Result<HttpResponse, ApiError> {
    let (window, bucket, slice) = p.into_inner();
    let window = window.window()?;
    let bucketing = bucket.bucketing(window)?;
    Ok(HttpResponse::Ok().json(state.trends.timeline(&slice.slice()?, window, bucketing).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ShareOptions {
    /// 2-20 comma-separated slices: `tag:…`, `entity:[TYPE:]…`, `emotion:…`, `source:…` or `all`.
    #[param(required = true)]
    slices: Option<String>,
    /// Applied to every slice that names no source of its own.
    source: Option<String>,
    /// `json` (the data) or `svg` (a chart).
    #[serde(default)]
    #[param(inline)]
    format: Representation,
    /// What the chart plots (with `format=svg`).
    #[serde(default)]
    #[param(inline)]
    measure: ShareMeasure,
    /// How copies count in every slice: `once` (the default) or `include`.
    #[param(value_type = Option<Duplicates>)]
    duplicates: Option<String>,
}

/// Share of voice, bucket by bucket.
#[derive(Serialize, ToSchema)]
pub(crate) struct ShareAnswer {
    bucket: Unit,
    time_zone: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    slices: Vec<ShareSeries>,
}

/// Each slice's share of their comments, per bucket (`slices=tag:pixel,tag:iphone`); `format=svg` draws it
/// (`measure` picks share, net sentiment or comments).
#[utoipa::path(get, path = "/v1/trends/share", tag = "trends", params(WindowParams, BucketParams, ShareOptions),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "Each slice's series, or their chart", content(
            (ShareAnswer = "application/json"),
            (String = "image/svg+xml"),
        )),
        Refusals,
    ))]
pub(crate) async fn share(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<(WindowParams, BucketParams, ShareOptions)>,
) -> Result<HttpResponse, ApiError> {
    let (window, bucket, p) = p.into_inner();
    let window = window.window()?;
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
    let duplicates = parse_duplicates(p.duplicates.as_deref())?;
    for slice in &mut slices {
        if let Some(source) = &p.source {
            slice.source.get_or_insert_with(|| source.clone());
        }
        slice.duplicates = duplicates;
    }
    let bucketing = bucket.bucketing(window)?;
    let series = state.trends.share_of_voice(&slices, window, bucketing).await?;
    if p.format == Representation::Svg {
        return Ok(svg(chart::share_svg(&series, bucketing.unit, bucketing.tz.name(), window.to, p.measure)));
    }
    Ok(HttpResponse::Ok().json(ShareAnswer {
        bucket: bucketing.unit,
        time_zone: bucketing.tz.name().to_owned(),
        from: window.from,
        to: window.to,
        slices: series,
    }))
}

/// What an entity ranking counts.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RankingParams {
    /// Only comments from this source.
    source: Option<String>,
    /// Only among the comments mentioning this brand of the catalogue (counted from the comment rows).
    brand: Option<String>,
    /// Only among the comments mentioning a brand of this group.
    brand_group: Option<String>,
    /// Only among the comments of this theme (`/v1/themes`), by id.
    theme: Option<i64>,
    /// Only entities of this type (with `by=entity`).
    #[param(value_type = Option<EntityLabel>)]
    label: Option<String>,
    /// What is ranked: names whatever their type (the default), typed entities, producer tags, brands, brand
    /// groups, themes, or languages (`lang`: the language mix).
    #[param(inline)]
    by: Option<CountBy>,
    /// Entries (1-100, 20 by default).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `once` (the default): a cluster of near-duplicates counts as one comment; `include`: every copy counts.
    #[param(value_type = Option<Duplicates>)]
    duplicates: Option<String>,
}

impl RankingParams {
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
            (Some(CountBy::Brand), _) => DimKind::Brand,
            (Some(CountBy::BrandGroup), _) => DimKind::BrandGroup,
            (Some(CountBy::Theme), _) => DimKind::Theme,
            (Some(CountBy::Lang), _) => DimKind::Lang,
        };
        if by != DimKind::Entity && label.is_some() {
            return Err(ApiError::BadRequest("label picks an entity type; it goes with by=entity only".into()));
        }
        if let Some(source) = &self.source {
            murmur_core::check_source(source).map_err(|why| ApiError::BadRequest(format!("source: {why}")))?;
        }
        let within = match (&self.brand, &self.brand_group, self.theme) {
            (Some(brand), None, None) => {
                murmur_core::brands::check_name("brand", brand).map_err(ApiError::BadRequest)?;
                Some(Dim::Brand(murmur_core::brand_key(brand)))
            }
            (None, Some(group), None) => {
                murmur_core::brands::check_name("brand_group", group).map_err(ApiError::BadRequest)?;
                Some(Dim::BrandGroup(murmur_core::brand_key(group)))
            }
            (None, None, Some(theme)) => Some(Dim::Theme(theme)),
            (None, None, None) => None,
            _ => {
                return Err(ApiError::BadRequest("brand, brand_group, theme: give one of them at most".into()));
            }
        };
        Ok(EntityQuery {
            source: self.source.clone(),
            within,
            label,
            by,
            limit: limit(self.limit, 20, MAX_LIST)?,
            duplicates: parse_duplicates(self.duplicates.as_deref())?,
        })
    }
}

/// The most mentioned entities in a window.
#[derive(Serialize, ToSchema)]
pub(crate) struct EntityRanking {
    /// The window, widened to whole hours.
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    entities: Vec<EntityTrend>,
}

/// The most mentioned entities in the window, with their sentiment.
#[utoipa::path(get, path = "/v1/trends/entities", tag = "trends", params(WindowParams, RankingParams),
    security(("api_key" = ["read"])),
    responses((status = 200, description = "The ranking", body = EntityRanking), Refusals))]
pub(crate) async fn top_entities(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<(WindowParams, RankingParams)>,
) -> Result<HttpResponse, ApiError> {
    let (window, ranking) = p.into_inner();
    let window = window.window()?.for_entities();
    let entities = state.trends.top_entities(&ranking.query()?, window).await?;
    Ok(HttpResponse::Ok().json(EntityRanking { from: window.from, to: window.to, entities }))
}

/// How much an entity must be mentioned to be trending.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TrendingOptions {
    /// Fewest mentions in the window (5 by default).
    #[param(minimum = 1)]
    min_mentions: Option<i64>,
}

/// Entities mentioned more than in the window before.
#[derive(Serialize, ToSchema)]
pub(crate) struct TrendingRanking {
    /// The window, widened to whole hours.
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// The window compared with.
    previous_from: DateTime<Utc>,
    previous_to: DateTime<Utc>,
    min_mentions: i64,
    entities: Vec<EntityTrend>,
}

/// Entities mentioned more than in the window before.
#[utoipa::path(get, path = "/v1/trends/trending", tag = "trends",
    params(WindowParams, RankingParams, TrendingOptions),
    security(("api_key" = ["read"])),
    responses((status = 200, description = "The ranking by growth", body = TrendingRanking), Refusals))]
pub(crate) async fn trending(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<(WindowParams, RankingParams, TrendingOptions)>,
) -> Result<HttpResponse, ApiError> {
    let (window, ranking, options) = p.into_inner();
    let query = ranking.query()?;
    let window = window.window()?.for_entities();
    let min = options.min_mentions.unwrap_or(5);
    if min < 1 {
        return Err(ApiError::BadRequest(format!("min_mentions: expected at least 1, got {min}")));
    }
    let entities = state.trends.trending_entities(&query, window, min).await?;
    let previous = window.previous();
    Ok(HttpResponse::Ok().json(TrendingRanking {
        from: window.from,
        to: window.to,
        previous_from: previous.from,
        previous_to: previous.to,
        min_mentions: min,
        entities,
    }))
}

/// How spikes are found and shown.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SpikeOptions {
    /// Earlier buckets each bucket is compared with (1-1000, 24 by default).
    #[param(minimum = 1, maximum = 1000)]
    baseline: Option<i64>,
    /// Robust z-score from which a bucket is a spike (3.5 by default).
    threshold: Option<f64>,
    /// Fewest comments in a spike bucket (10 by default).
    min_comments: Option<i64>,
    /// Example comments per spike (0-50, 3 by default; none on a chart).
    #[param(minimum = 0, maximum = 50)]
    examples: Option<i64>,
    /// `json` (the data) or `svg` (the timeline by sentiment with the spikes marked).
    #[serde(default)]
    #[param(inline)]
    format: Representation,
}

/// Spikes and the timeline they were found in.
#[derive(Serialize, ToSchema)]
pub(crate) struct SpikeAnswer {
    /// How spikes are found.
    method: &'static str,
    params: SpikeParams,
    spikes: Vec<Spike>,
    timeline: Timeline,
}

/// Buckets where volume or negative share departs from the recent baseline, with the timeline they were
/// found in; `format=svg` draws the timeline by sentiment with the spikes marked.
#[utoipa::path(get, path = "/v1/trends/spikes", tag = "trends",
    params(WindowParams, BucketParams, SliceParams, SpikeOptions),
    security(("api_key" = ["read"])),
    responses(
        (status = 200, description = "The spikes and their timeline, or its chart", content(
            (SpikeAnswer = "application/json"),
            (String = "image/svg+xml"),
        )),
        Refusals,
    ))]
pub(crate) async fn spikes(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<(WindowParams, BucketParams, SliceParams, SpikeOptions)>,
) -> Result<HttpResponse, ApiError> {
    let (window, bucket, slice, p) = p.into_inner();
    let window = window.window()?;
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
    let bucketing = bucket.bucketing(window)?;
    let (timeline, spikes) = state.trends.spikes(&slice.slice()?, window, bucketing, params, examples).await?;
    if p.format == Representation::Svg {
        return Ok(svg(chart::volume_svg(&timeline, &spikes)));
    }
    Ok(HttpResponse::Ok().json(SpikeAnswer {
        method: "robust z-score against the median and MAD of the previous `baseline` buckets",
        params,
        spikes,
        timeline,
    }))
}

/// Which of a slice's comments, and how many.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExampleOptions {
    /// Only comments of this sentiment.
    sentiment: Option<SentimentLabel>,
    /// Comments (1-50, 10 by default).
    #[param(minimum = 1, maximum = 50)]
    limit: Option<i64>,
}

/// A slice's most representative comments in a window.
#[derive(Serialize, ToSchema)]
pub(crate) struct ExampleList {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    examples: Vec<SearchHit>,
}

/// A slice's comments in the window, most representative first.
#[utoipa::path(get, path = "/v1/trends/examples", tag = "trends", params(WindowParams, SliceParams, ExampleOptions),
    security(("api_key" = ["read"])),
    responses((status = 200, description = "The comments", body = ExampleList), Refusals))]
pub(crate) async fn examples(
    _: Authorized<Read>,
    state: web::Data<AppState>,
    p: Query<(WindowParams, SliceParams, ExampleOptions)>,
) -> Result<HttpResponse, ApiError> {
    let (window, slice, options) = p.into_inner();
    let window = window.window()?;
    let limit = limit(options.limit, 10, MAX_EXAMPLES)?;
    let examples = state.trends.examples(&slice.slice()?, window, options.sentiment, limit).await?;
    Ok(HttpResponse::Ok().json(ExampleList { from: window.from, to: window.to, examples }))
}

fn svg(body: String) -> HttpResponse {
    HttpResponse::Ok().content_type("image/svg+xml; charset=utf-8").body(body)
}
