//! Themes as the API and reports show them: each theme the themer found (`murmur_store::ThemeFinder`) with its
//! comments, sentiment and growth in a window, read from the rollups (`theme:ID`), and one theme in full.

use std::collections::HashMap;

use murmur_core::SentimentLabel;
use murmur_search::SearchHit;
use murmur_store::{Counts, Dim, DimKind, Duplicates, StoredTheme, StoredThemeEvent};
use serde::Serialize;

use crate::analysis::trend_score;
use crate::service::{EntityQuery, EntityTrend, Timeline, Trends, Window};
use crate::{Bucketing, Slice, TrendsError};

/// Which themes a list holds and in what order.
#[derive(Debug, Clone)]
pub struct ThemeQuery {
    pub source: Option<String>,
    /// Only among the comments of this brand or brand group.
    pub within: Option<Dim>,
    /// Most comments first, or fastest growing first (the emerging themes).
    pub order: ThemeOrder,
    pub limit: usize,
    pub duplicates: Duplicates,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThemeOrder {
    Comments,
    Growth,
}

/// A theme with what the window says of it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ThemeSummary {
    #[serde(flatten)]
    pub theme: StoredTheme,
    /// Its comments in the window, by sentiment.
    pub counts: Counts,
    pub net_sentiment: Option<f64>,
    /// Its comments in the window of the same length before.
    pub previous: i64,
    /// `comments / previous - 1`; absent when it had none before (a new theme).
    pub growth: Option<f64>,
    /// How far above its previous level it is, in standard deviations of a count (`(c - p) / sqrt(c + p)`).
    pub score: f64,
    /// Whether it was born in the window.
    pub new: bool,
}

/// One theme in full.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ThemeDetail {
    pub summary: ThemeSummary,
    pub timeline: Timeline,
    /// Its newest comments in the window.
    pub examples: Vec<SearchHit>,
    /// The names most mentioned in its comments.
    pub entities: Vec<EntityTrend>,
    /// The catalogue's brands most mentioned in its comments.
    pub brands: Vec<EntityTrend>,
    /// Births, splits, merges, fades and revivals, oldest first.
    pub history: Vec<StoredThemeEvent>,
}

impl Trends {
    /// The themes with comments in the window (see [`ThemeQuery`]).
    pub async fn themes(&self, query: &ThemeQuery, window: Window) -> Result<Vec<ThemeSummary>, TrendsError> {
        let ranking = EntityQuery {
            source: query.source.clone(),
            within: query.within.clone(),
            label: None,
            by: DimKind::Theme,
            limit: 10_000,
            duplicates: query.duplicates,
        };
        let now = self.top_entities(&ranking, window).await?;
        let before: HashMap<String, i64> = self
            .top_entities(&ranking, window.previous())
            .await?
            .into_iter()
            .map(|e| (e.name, e.counts.comments))
            .collect();
        let ids: Vec<i64> = now.iter().filter_map(|e| e.name.parse().ok()).collect();
        let stored: HashMap<i64, StoredTheme> =
            self.postgres().themes(Some(&ids)).await?.into_iter().map(|t| (t.id, t)).collect();
        let mut out: Vec<ThemeSummary> = now
            .into_iter()
            .filter_map(|e| {
                let theme = stored.get(&e.name.parse().ok()?)?.clone();
                let previous = before.get(&e.name).copied().unwrap_or(0);
                Some(summary(theme, e.counts, previous, window))
            })
            .collect();
        match query.order {
            ThemeOrder::Comments => {
                out.sort_by(|a, b| b.counts.comments.cmp(&a.counts.comments).then(a.theme.id.cmp(&b.theme.id)))
            }
            ThemeOrder::Growth => out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.theme.id.cmp(&b.theme.id))),
        }
        out.truncate(query.limit);
        Ok(out)
    }

    /// One theme in the window; `None` when there is no such theme.
    pub async fn theme(
        &self,
        id: i64,
        source: Option<String>,
        window: Window,
        bucketing: Bucketing,
        examples: usize,
    ) -> Result<Option<ThemeDetail>, TrendsError> {
        let Some(theme) = self.postgres().themes(Some(&[id])).await?.pop() else { return Ok(None) };
        let slice = Slice { theme: Some(id), source: source.clone(), ..Slice::default() };
        let timeline = self.timeline(&slice, window, bucketing).await?;
        let within = |by: DimKind| EntityQuery {
            source: source.clone(),
            within: Some(Dim::Theme(id)),
            label: None,
            by,
            limit: 10,
            duplicates: Duplicates::Once,
        };
        let entities = self.top_entities(&within(DimKind::Name), window).await?;
        let brands = self.top_entities(&within(DimKind::Brand), window).await?;
        let examples = self.examples(&slice, window, None::<SentimentLabel>, examples).await?;
        let now = timeline.total;
        let previous = self.timeline(&slice, window.previous(), bucketing).await?.total.comments;
        let history = self.postgres().theme_history(id).await?;
        Ok(Some(ThemeDetail {
            summary: summary(theme, now, previous, window),
            timeline,
            examples,
            entities,
            brands,
            history,
        }))
    }
}

fn summary(theme: StoredTheme, counts: Counts, previous: i64, window: Window) -> ThemeSummary {
    let new = theme.born_at >= window.from && theme.born_at < window.to;
    ThemeSummary {
        net_sentiment: counts.net_sentiment(),
        growth: (previous > 0).then(|| counts.comments as f64 / previous as f64 - 1.0),
        score: trend_score(counts.comments, previous),
        new,
        previous,
        counts,
        theme,
    }
}
