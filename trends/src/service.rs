//! The trend queries. Slices the rollups count (all comments, a tag, an entity, each of one source or all)
//! are read from the rollups; other slices (words, several dimensions at once, entities by the minute) from
//! the search index.

use chrono::{DateTime, Datelike, Duration, Utc};
use murmur_core::{EntityLabel, SentimentLabel};
use murmur_search::{HitEntity, SearchHit, SearchIndex};
use murmur_store::{Counts, Dim, DimKind, Duplicates, Grain, KeyCounts, KeyFilter, Postgres};
use serde::Serialize;

use crate::analysis::{self, Departure, SpikeKind, SpikeParams};
use crate::bucket::{Bucketing, Unit};
use crate::{Slice, TrendsError};

/// The longest window a query may cover.
const MAX_WINDOW_DAYS: i64 = 3660;

/// `[from, to)`, in whole minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Window {
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, TrendsError> {
        // Years 1-9999 (what RFC 3339 writes): bucket and baseline arithmetic near chrono's own limits would
        // overflow (the ends of time once panicked a timeline).
        if ![from, to].iter().all(|t| (1..=9999).contains(&t.year())) {
            return Err(TrendsError::Invalid("from and to must be between years 1 and 9999".into()));
        }
        let floor = |t: DateTime<Utc>| Grain::Minute.floor(t);
        let ceil = |t: DateTime<Utc>| Grain::Minute.ceil(t);
        let window = Self { from: floor(from), to: ceil(to) };
        if window.from >= window.to {
            return Err(TrendsError::Invalid("from must be before to".into()));
        }
        if window.to - window.from > Duration::days(MAX_WINDOW_DAYS) {
            return Err(TrendsError::Invalid(format!("windows span at most {MAX_WINDOW_DAYS} days")));
        }
        Ok(window)
    }

    /// The window of the same length just before this one.
    pub fn previous(&self) -> Self {
        Self { from: self.from - (self.to - self.from), to: self.from }
    }

    /// The window entity rankings read: widened to whole hours (the finest grain entities are kept at).
    pub fn for_entities(&self) -> Self {
        Self { from: Grain::Hour.floor(self.from), to: Grain::Hour.ceil(self.to) }
    }

    pub(crate) fn pair(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.from, self.to)
    }
}

/// Where an answer was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServedBy {
    Rollups,
    Index,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Point {
    pub start: DateTime<Utc>,
    #[serde(flatten)]
    pub counts: Counts,
    /// Of `comments`, those without a sentiment (see [`Timeline::without_sentiment`]).
    pub without_sentiment: i64,
    pub net_sentiment: Option<f64>,
}

/// Volume and sentiment of a slice, bucket by bucket.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Timeline {
    pub slice: Slice,
    pub label: String,
    pub bucket: Unit,
    pub time_zone: String,
    /// The window, widened to whole buckets.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub served_by: ServedBy,
    pub total: Counts,
    /// Of the total's comments, those counted in volume without a sentiment: in a language the heads never
    /// learned (`skipped: language`), or enriched by a model without a sentiment head. Net sentiment reads
    /// the others only.
    pub without_sentiment: i64,
    pub net_sentiment: Option<f64>,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SharePoint {
    pub start: DateTime<Utc>,
    pub comments: i64,
    /// Of the comments of all the slices asked for in this bucket (0 when none has any).
    pub share: f64,
    pub net_sentiment: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShareSeries {
    pub slice: Slice,
    pub label: String,
    pub comments: i64,
    pub share: f64,
    pub net_sentiment: Option<f64>,
    pub points: Vec<SharePoint>,
}

/// Which keys a top or trending list ranks: names written in the text whatever type the model gave them
/// (the default: `apple` as ORG and as MISC is one entry, shown with the type most mentions carry), entities
/// of a type (`by: Entity`, with `label` for one type: `handle` ranks the accounts mentioned, `hashtag` the
/// tags), or the producers' tags (brands, campaigns).
#[derive(Debug, Clone)]
pub struct EntityQuery {
    pub source: Option<String>,
    /// Only among the comments that mention this brand or brand group (a [`Dim::Brand`] or
    /// [`Dim::BrandGroup`]); counted from the comment rows, not the rollups.
    pub within: Option<Dim>,
    /// Only entities of this type (with `by: Entity`).
    pub label: Option<EntityLabel>,
    pub by: DimKind,
    pub limit: usize,
    pub duplicates: Duplicates,
}

impl Default for EntityQuery {
    fn default() -> Self {
        Self { source: None, within: None, label: None, by: DimKind::Name, limit: 20, duplicates: Duplicates::Once }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntityTrend {
    /// The entity's type; counted by name, the type most of the window's comments gave it; absent for tags.
    pub label: Option<EntityLabel>,
    pub name: String,
    /// Counted by name: comments per type in the window, most first (a name may be typed two ways).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<TypeCount>,
    #[serde(flatten)]
    pub counts: Counts,
    pub net_sentiment: Option<f64>,
    /// Comments in the window before (trending lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<i64>,
    /// current / previous − 1 (trending lists; absent when there were none before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TypeCount {
    pub label: EntityLabel,
    pub comments: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Spike {
    /// From the first departing bucket to the end of the last one.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Consecutive departing buckets in the spike.
    pub buckets: usize,
    /// The peak bucket's start, figures and counts.
    pub peak: DateTime<Utc>,
    #[serde(flatten)]
    pub departure: Departure,
    #[serde(flatten)]
    pub counts: Counts,
    /// The peak bucket's most representative comments (negative ones for a negative-share spike).
    pub examples: Vec<SearchHit>,
}

/// Rollup-served slices read together, of one source (or all) counting copies one way: (index among the
/// slices asked for, dimension).
type SlicesOfSource<'a> = ((Option<&'a str>, Duplicates), Vec<(usize, Dim)>);

/// The trend queries over one Postgres and one search index.
#[derive(Clone)]
pub struct Trends {
    postgres: Postgres,
    index: SearchIndex,
}

impl Timeline {
    /// The timeline from the bucket starting at `start` on, its totals recounted.
    pub fn since(mut self, start: DateTime<Utc>) -> Self {
        let first = self.points.partition_point(|p| p.start < start);
        self.points.drain(..first);
        let mut total = Counts::default();
        for point in &self.points {
            total.add(&point.counts);
        }
        self.from = self.from.max(start);
        self.total = total;
        self.net_sentiment = total.net_sentiment();
        self
    }
}

impl Trends {
    pub fn new(postgres: Postgres, index: SearchIndex) -> Self {
        Self { postgres, index }
    }

    pub fn postgres(&self) -> &Postgres {
        &self.postgres
    }

    /// Volume and sentiment per bucket for each slice.
    pub async fn timelines(
        &self,
        slices: &[Slice],
        window: Window,
        bucketing: Bucketing,
    ) -> Result<Vec<Timeline>, TrendsError> {
        let starts = bucketing.starts(window.from, window.to)?;
        let (Some(&first), Some(&last)) = (starts.first(), starts.last()) else {
            return Err(TrendsError::Invalid("the window holds no bucket".into()));
        };
        let (from, to) = (first, bucketing.next(last));
        let mut buckets: Vec<Vec<Counts>> = vec![vec![Counts::default(); starts.len()]; slices.len()];
        let mut served = vec![ServedBy::Rollups; slices.len()];
        let slot = |t: DateTime<Utc>| starts.partition_point(|s| *s <= t).checked_sub(1);
        // Rollup slices by source, one query per source.
        let mut by_source: Vec<SlicesOfSource<'_>> = Vec::new();
        for (i, slice) in slices.iter().enumerate() {
            slice.validate()?;
            match slice.dim().filter(|d| d.finest_grain() <= bucketing.grain(from)) {
                Some(dim) => {
                    let group = (slice.source.as_deref(), slice.duplicates);
                    match by_source.iter_mut().find(|(g, _)| *g == group) {
                        Some((_, dims)) => dims.push((i, dim)),
                        None => by_source.push((group, vec![(i, dim)])),
                    }
                }
                None => {
                    served[i] = ServedBy::Index;
                    let index = self.index.clone();
                    let filters = slice.filters(from, to);
                    let points = tokio::task::spawn_blocking(move || index.points(&filters)).await??;
                    for (at, sentiment) in points {
                        if let Some(b) = slot(at).and_then(|b| buckets[i].get_mut(b)) {
                            add_one(b, sentiment);
                        }
                    }
                }
            }
        }
        for ((source, duplicates), dims) in by_source {
            let only: Vec<Dim> = dims.iter().map(|(_, d)| d.clone()).collect();
            let grain = bucketing.grain(from);
            let rows = self.postgres.rollup_series(&only, source, duplicates, grain, from, to).await?;
            for (d, at, counts) in rows {
                let i = dims[d].0;
                if let Some(b) = slot(at).and_then(|b| buckets[i].get_mut(b)) {
                    b.add(&counts);
                }
            }
        }
        Ok(slices
            .iter()
            .zip(buckets)
            .zip(served)
            .map(|((slice, counts), served_by)| {
                let mut total = Counts::default();
                let points = starts
                    .iter()
                    .zip(counts)
                    .map(|(&start, counts)| {
                        total.add(&counts);
                        Point {
                            start,
                            counts,
                            without_sentiment: counts.without_sentiment(),
                            net_sentiment: counts.net_sentiment(),
                        }
                    })
                    .collect();
                Timeline {
                    slice: slice.clone(),
                    label: slice.label(),
                    bucket: bucketing.unit,
                    time_zone: bucketing.tz.name().to_owned(),
                    from,
                    to,
                    served_by,
                    total,
                    without_sentiment: total.without_sentiment(),
                    net_sentiment: total.net_sentiment(),
                    points,
                }
            })
            .collect())
    }

    pub async fn timeline(&self, slice: &Slice, window: Window, bucketing: Bucketing) -> Result<Timeline, TrendsError> {
        let mut all = self.timelines(std::slice::from_ref(slice), window, bucketing).await?;
        all.pop().ok_or_else(|| TrendsError::Invalid("no timeline".into()))
    }

    /// Each slice's share of the comments of all the slices, per bucket and over the window.
    pub async fn share_of_voice(
        &self,
        slices: &[Slice],
        window: Window,
        bucketing: Bucketing,
    ) -> Result<Vec<ShareSeries>, TrendsError> {
        let timelines = self.timelines(slices, window, bucketing).await?;
        let grand: i64 = timelines.iter().map(|t| t.total.comments).sum();
        let share = |part: i64, whole: i64| if whole > 0 { part as f64 / whole as f64 } else { 0.0 };
        let per_bucket: Vec<i64> = (0..timelines.first().map_or(0, |t| t.points.len()))
            .map(|b| timelines.iter().map(|t| t.points[b].counts.comments).sum())
            .collect();
        Ok(timelines
            .into_iter()
            .map(|t| ShareSeries {
                label: t.label,
                comments: t.total.comments,
                share: share(t.total.comments, grand),
                net_sentiment: t.net_sentiment,
                points: t
                    .points
                    .iter()
                    .zip(&per_bucket)
                    .map(|(p, &all)| SharePoint {
                        start: p.start,
                        comments: p.counts.comments,
                        share: share(p.counts.comments, all),
                        net_sentiment: p.net_sentiment,
                    })
                    .collect(),
                slice: t.slice,
            })
            .collect())
    }

    /// The most mentioned entities in the window (widened to whole hours), with their sentiment.
    pub async fn top_entities(&self, query: &EntityQuery, window: Window) -> Result<Vec<EntityTrend>, TrendsError> {
        let window = window.for_entities();
        let rows = match &query.within {
            Some(within) => {
                self.postgres.co_mentioned_top(within, key_filter(query), window.pair(), query.limit as i64).await?
            }
            None => self.postgres.rollup_top(key_filter(query), window.pair(), query.limit as i64).await?,
        };
        let mut out: Vec<EntityTrend> = rows.into_iter().filter_map(|row| entity_trend(query, row, false)).collect();
        self.add_types(query, window, &mut out).await?;
        Ok(out)
    }

    /// Counted by name: each name's types in the window, the most frequent shown as its label.
    async fn add_types(
        &self,
        query: &EntityQuery,
        window: Window,
        list: &mut [EntityTrend],
    ) -> Result<(), TrendsError> {
        if query.by != DimKind::Name {
            return Ok(());
        }
        let names: Vec<String> = list.iter().map(|e| e.name.clone()).collect();
        let mut types =
            self.postgres.rollup_types(&names, query.source.as_deref(), query.duplicates, window.pair()).await?;
        for entry in list {
            let counts = types.remove(&entry.name).unwrap_or_default();
            entry.label = counts.first().map(|(label, _)| *label);
            entry.types = counts.into_iter().map(|(label, comments)| TypeCount { label, comments }).collect();
        }
        Ok(())
    }

    /// Entities mentioned more than in the window before, strongest growth first (see `analysis`).
    pub async fn trending_entities(
        &self,
        query: &EntityQuery,
        window: Window,
        min_mentions: i64,
    ) -> Result<Vec<EntityTrend>, TrendsError> {
        let window = window.for_entities();
        let (now, before, min) = (window.pair(), window.previous().pair(), min_mentions.max(1));
        let rows = match &query.within {
            Some(within) => self.postgres.co_mentioned_growth(within, key_filter(query), now, before, min).await?,
            None => self.postgres.rollup_growth(key_filter(query), now, before, min).await?,
        };
        let mut out: Vec<EntityTrend> = rows
            .into_iter()
            .filter(|row| row.counts.comments > row.previous)
            .filter_map(|row| entity_trend(query, row, true))
            .collect();
        out.sort_by(|a, b| b.score.unwrap_or(0.0).total_cmp(&a.score.unwrap_or(0.0)).then_with(|| a.name.cmp(&b.name)));
        out.truncate(query.limit);
        self.add_types(query, window, &mut out).await?;
        Ok(out)
    }

    /// Buckets of the slice's timeline that depart from their baseline, each with example comments.
    pub async fn spikes(
        &self,
        slice: &Slice,
        window: Window,
        bucketing: Bucketing,
        params: SpikeParams,
        examples: usize,
    ) -> Result<(Timeline, Vec<Spike>), TrendsError> {
        let first = bucketing.start(window.from);
        let timeline = self.timeline(slice, spike_window(window, bucketing, params), bucketing).await?;
        let spikes = self.spikes_in(&timeline, bucketing, params, examples, first).await?;
        Ok((timeline.since(first), spikes))
    }

    /// The spikes of a timeline in buckets from `since` on (earlier buckets serve as baseline only), each
    /// with up to `examples` representative comments of its bucket (negative ones for a negative-share spike).
    pub(crate) async fn spikes_in(
        &self,
        timeline: &Timeline,
        bucketing: Bucketing,
        params: SpikeParams,
        examples: usize,
        since: DateTime<Utc>,
    ) -> Result<Vec<Spike>, TrendsError> {
        let counts: Vec<Counts> = timeline.points.iter().map(|p| p.counts).collect();
        let first = timeline.points.partition_point(|p| p.start < since);
        let departures = analysis::spikes_from(&counts, first, params, bucketing.unit.season());
        let mut spikes = Vec::new();
        for episode in analysis::episodes(&departures) {
            let departure = episode.peak;
            let peak = timeline.points[departure.index].start;
            let sentiment = (departure.kind == SpikeKind::NegativeShare).then_some(SentimentLabel::Negative);
            let examples = if examples > 0 {
                let bucket = Window { from: peak, to: bucketing.next(peak) };
                self.examples(&timeline.slice, bucket, sentiment, examples).await?
            } else {
                Vec::new()
            };
            spikes.push(Spike {
                start: timeline.points[episode.first].start,
                end: bucketing.next(timeline.points[episode.last].start),
                buckets: episode.last - episode.first + 1,
                peak,
                departure,
                counts: counts[departure.index],
                examples,
            });
        }
        Ok(spikes)
    }

    /// The slice's comments in the window, most representative first (nearest the centroid of their
    /// embeddings).
    pub async fn examples(
        &self,
        slice: &Slice,
        window: Window,
        sentiment: Option<SentimentLabel>,
        limit: usize,
    ) -> Result<Vec<SearchHit>, TrendsError> {
        slice.validate()?;
        if slice.rollups_only() {
            return self.newest_examples(slice, window, sentiment, limit).await;
        }
        let mut filters = slice.filters(window.from, window.to);
        filters.sentiment = sentiment;
        let index = self.index.clone();
        if slice.duplicates == Duplicates::Include {
            return Ok(tokio::task::spawn_blocking(move || index.representative(&filters, limit)).await??);
        }
        // One example per cluster of copies: the index does not know clusters, so read three times as many
        // and keep the first of each.
        let hits = tokio::task::spawn_blocking(move || index.representative(&filters, 3 * limit)).await??;
        let keys: Vec<(String, String)> = hits.iter().map(|h| (h.source.clone(), h.id.clone())).collect();
        let originals = self.postgres.originals_of(&keys).await?;
        let mut seen = std::collections::HashSet::new();
        Ok(hits
            .into_iter()
            .zip(&keys)
            .filter(|(_, key)| seen.insert(originals.get(*key).unwrap_or(key).clone()))
            .map(|(hit, _)| hit)
            .take(limit)
            .collect())
    }
}

impl Trends {
    /// Examples of a slice the rollups count alone (a brand, brand group or theme): its newest comments, from
    /// Postgres (the search index does not hold them, so there is no centroid ranking for them yet).
    async fn newest_examples(
        &self,
        slice: &Slice,
        window: Window,
        sentiment: Option<SentimentLabel>,
        limit: usize,
    ) -> Result<Vec<SearchHit>, TrendsError> {
        let Some(dim) = slice.dim() else { return Ok(Vec::new()) };
        let rows = self
            .postgres
            .newest_under(
                &dim,
                slice.source.as_deref(),
                sentiment.map(|s| s.as_str()),
                slice.duplicates,
                window.pair(),
                limit as i64,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|c| {
                let e = c.enrichment;
                let mut entities: Vec<HitEntity> = Vec::new();
                for entity in e.entities.map(|x| x.0).unwrap_or_default() {
                    let hit = HitEntity { label: entity.label.as_str().to_owned(), name: entity.name() };
                    if !entities.contains(&hit) {
                        entities.push(hit);
                    }
                }
                SearchHit {
                    score: 0.0,
                    source: c.source,
                    id: c.id,
                    text: c.text,
                    created_at: c.created_at,
                    language: murmur_core::language_key(
                        e.language.as_ref().map(|l| (l.0.code.as_str(), l.0.confidence)),
                        c.lang.as_deref(),
                    ),
                    lang: c.lang,
                    tags: c.tags,
                    sentiment: e.sentiment.map(|s| s.0.label.as_str().to_owned()),
                    emotions: e
                        .emotion
                        .map(|x| x.0.labels.iter().map(|l| l.as_str().to_owned()).collect())
                        .unwrap_or_default(),
                    entities,
                    snippet: String::new(),
                    explain: None,
                    cluster_size: None,
                }
            })
            .collect())
    }
}

/// The window a spike search over `window` reads: widened back by the buckets its first buckets are judged
/// against (the same hours of the previous days, then a baseline), where the window limits allow.
pub fn spike_window(window: Window, bucketing: Bucketing, params: SpikeParams) -> Window {
    let history = bucketing.unit.season().map_or(params.baseline, |s| s.history(params.baseline));
    let back = Duration::seconds(bucketing.unit.seconds().saturating_mul(history as i64));
    Window::new(bucketing.start(window.from) - back, window.to)
        .ok()
        .filter(|w| bucketing.starts(w.from, w.to).is_ok())
        .unwrap_or(window)
}

fn add_one(counts: &mut Counts, sentiment: Option<SentimentLabel>) {
    counts.comments += 1;
    match sentiment {
        Some(SentimentLabel::Negative) => counts.negative += 1,
        Some(SentimentLabel::Neutral) => counts.neutral += 1,
        Some(SentimentLabel::Positive) => counts.positive += 1,
        None => {}
    }
}

fn key_filter(query: &EntityQuery) -> KeyFilter<'_> {
    KeyFilter { kind: query.by, source: query.source.as_deref(), label: query.label, duplicates: query.duplicates }
}

fn entity_trend(query: &EntityQuery, row: KeyCounts, with_growth: bool) -> Option<EntityTrend> {
    let (label, name) = match query.by {
        DimKind::Entity => {
            let (label, name) = Dim::parse_entity_key(&row.key)?;
            (Some(label), name.to_owned())
        }
        DimKind::Name
        | DimKind::Tag
        | DimKind::Emotion
        | DimKind::Brand
        | DimKind::BrandGroup
        | DimKind::Theme
        | DimKind::Lang => (None, row.key),
    };
    let (current, previous) = (row.counts.comments, row.previous);
    Some(EntityTrend {
        label,
        name,
        types: Vec::new(),
        counts: row.counts,
        net_sentiment: row.counts.net_sentiment(),
        previous: with_growth.then_some(previous),
        growth: (with_growth && previous > 0).then(|| current as f64 / previous as f64 - 1.0),
        score: with_growth.then(|| analysis::trend_score(current, previous)),
    })
}
