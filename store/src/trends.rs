//! Reads of the trend rollups (migration 0004): comments per dimension, time bucket and source, by sentiment,
//! kept up to date by the writes themselves. Every read here touches rollup rows, never comment rows, so its
//! cost follows the number of buckets and keys asked for, not the number of comments.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use murmur_core::{counted_entities, BrandHits, Emotion, EmotionLabel, EnrichedComment, Entity, EntityLabel};
use serde::Serialize;
use sqlx::postgres::PgArguments;
use sqlx::Arguments;

use crate::{Postgres, StoreError};

/// The bucket sizes the rollups keep (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grain {
    Minute,
    Hour,
    Day,
}

impl Grain {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    pub fn length(self) -> TimeDelta {
        match self {
            Self::Minute => TimeDelta::minutes(1),
            Self::Hour => TimeDelta::hours(1),
            Self::Day => TimeDelta::days(1),
        }
    }

    /// The start of the bucket holding `t`.
    pub fn floor(self, t: DateTime<Utc>) -> DateTime<Utc> {
        t.duration_trunc(self.length()).unwrap_or(t)
    }

    /// The first bucket start at or after `t`.
    pub fn ceil(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let floor = self.floor(t);
        if floor == t {
            t
        } else {
            floor + self.length()
        }
    }
}

/// What comments are counted under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    /// Every comment.
    All,
    /// A producer's tag (lower case).
    Tag(String),
    /// An entity of one type, by normalised name.
    Entity(EntityLabel, String),
    /// An entity name, whatever type the model gave it: its entity rows of every type but the mentions
    /// (a comment gives each name one type, so it counts once).
    Name(String),
    /// An emotion the model found in the comment (several may hold at once).
    Emotion(EmotionLabel),
    /// A brand of the catalogue the comment mentions, by key (see `murmur_core::brands`).
    Brand(String),
    /// A brand group (competitors compared together), by key.
    BrandGroup(String),
    /// A theme the themer found (see `murmur_core::themes`), by id.
    Theme(murmur_core::themes::ThemeId),
    /// The comment's language ([`murmur_core::language_key`]: `en`, `fr`, `und`); each comment has one.
    Lang(String),
}

/// The kinds of [`Dim`], as the rollups store them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DimKind {
    Tag,
    Entity,
    Name,
    Emotion,
    Brand,
    BrandGroup,
    Theme,
    Lang,
}

/// The rollup rows of names written in the text: entity rows of every label but these (handles and hashtags,
/// whose names would otherwise merge with the words they spell).
const NOT_A_NAME: &str = "r.label NOT IN ('handle', 'hashtag')";

impl DimKind {
    /// The finest grain the rollups keep this kind at (the grain rule of migrations 0004, 0012 and 0013):
    /// entities and themes by the hour, as a minute row per key would be about one row per comment.
    pub fn finest_grain(self) -> Grain {
        match self {
            Self::Tag | Self::Emotion | Self::Brand | Self::BrandGroup | Self::Lang => Grain::Minute,
            Self::Entity | Self::Name | Self::Theme => Grain::Hour,
        }
    }

    /// The `kind` of this kind's rollup rows (names are entity rows).
    fn stored_kind(self) -> &'static str {
        match self {
            Self::Tag => "tag",
            Self::Entity | Self::Name => "entity",
            Self::Emotion => "emotion",
            Self::Brand => "brand",
            Self::BrandGroup => "brand_group",
            Self::Theme => "theme",
            Self::Lang => "lang",
        }
    }
}

impl Dim {
    /// The finest grain the rollups keep this dimension at (see migration 0004).
    pub fn finest_grain(&self) -> Grain {
        match self {
            Self::All => Grain::Minute,
            Self::Tag(_) => DimKind::Tag.finest_grain(),
            Self::Entity(..) => DimKind::Entity.finest_grain(),
            Self::Name(_) => DimKind::Name.finest_grain(),
            Self::Emotion(_) => DimKind::Emotion.finest_grain(),
            Self::Brand(_) => DimKind::Brand.finest_grain(),
            Self::BrandGroup(_) => DimKind::BrandGroup.finest_grain(),
            Self::Theme(_) => DimKind::Theme.finest_grain(),
            Self::Lang(_) => DimKind::Lang.finest_grain(),
        }
    }

    /// The rollup rows counting this dimension: `(kind, key, label)`, the label `None` for a name (its rows
    /// of every type, see [`NOT_A_NAME`]).
    fn rows(&self) -> (&'static str, String, Option<&'static str>) {
        match self {
            Self::All => ("all", String::new(), Some("")),
            Self::Tag(tag) => (DimKind::Tag.stored_kind(), tag.clone(), Some("")),
            Self::Entity(label, name) => (DimKind::Entity.stored_kind(), name.clone(), Some(label.as_str())),
            Self::Name(name) => (DimKind::Name.stored_kind(), name.clone(), None),
            Self::Emotion(label) => (DimKind::Emotion.stored_kind(), label.as_str().to_owned(), Some("")),
            Self::Brand(key) => (DimKind::Brand.stored_kind(), key.clone(), Some("")),
            Self::BrandGroup(key) => (DimKind::BrandGroup.stored_kind(), key.clone(), Some("")),
            Self::Theme(id) => (DimKind::Theme.stored_kind(), id.to_string(), Some("")),
            Self::Lang(code) => (DimKind::Lang.stored_kind(), code.clone(), Some("")),
        }
    }

    /// An entity key as rankings by type return it (`ORG:google`) back to its type and name.
    pub fn parse_entity_key(key: &str) -> Option<(EntityLabel, &str)> {
        let (label, name) = key.split_once(':')?;
        Some((EntityLabel::parse(label)?, name))
    }

    /// The dimensions a comment counts under besides [`Dim::All`], as `comments.dims` holds them:
    /// `kind:key`, distinct and sorted.
    pub(crate) fn of(e: &EnrichedComment, brands: &BrandHits) -> Vec<String> {
        let parts = Parts {
            tags: &e.comment.tags,
            entities: e.enrichment.entities.as_deref(),
            emotion: e.enrichment.emotion.as_ref(),
            language: e.language_key(),
        };
        Self::of_parts(parts, brands)
    }

    /// [`Dim::of`] from the parts a comment counts by: its tags; its entities as
    /// [`murmur_core::counted_entities`] counts them (a name under the type of its first mention only); each
    /// emotion found; its language; each brand of the catalogue it mentions and each of their groups.
    pub(crate) fn of_parts(parts: Parts<'_>, brands: &BrandHits) -> Vec<String> {
        let Parts { tags, entities, emotion, language } = parts;
        let mut dims: Vec<Dim> = tags.iter().map(|t| Dim::Tag(t.clone())).collect();
        dims.push(Dim::Lang(language));
        dims.extend(brands.brands.iter().map(|b| Dim::Brand(b.clone())));
        dims.extend(brands.groups.iter().map(|g| Dim::BrandGroup(g.clone())));
        let counted = counted_entities(entities.unwrap_or_default());
        dims.extend(counted.into_iter().map(|(label, name)| Dim::Entity(label, name)));
        dims.extend(emotion.iter().flat_map(|x| &x.labels).map(|label| Dim::Emotion(*label)));
        let mut dims: Vec<String> = dims.iter().filter_map(Dim::stored).collect();
        dims.sort();
        dims.dedup();
        dims
    }

    /// The brands and groups stored dims (`kind:key`) count a comment under.
    pub(crate) fn brands_in(dims: &[String]) -> BrandHits {
        let keys = |prefix: &str| -> Vec<String> {
            dims.iter().filter_map(|d| d.strip_prefix(prefix)).map(str::to_owned).collect()
        };
        BrandHits { brands: keys("brand:"), groups: keys("brand_group:") }
    }

    /// This dimension as `comments.dims` holds it (`tag:pixel`, `entity:ORG:google`); `None` for
    /// [`Dim::All`] (every comment, never listed) and [`Dim::Name`] (a comment's names are its entity dims).
    pub(crate) fn stored(&self) -> Option<String> {
        match self {
            Self::All | Self::Name(_) => None,
            Self::Entity(label, name) => Some(format!("entity:{}:{name}", label.as_str())),
            Self::Tag(_) | Self::Emotion(_) | Self::Brand(_) | Self::BrandGroup(_) | Self::Theme(_) | Self::Lang(_) => {
                let (kind, key, _) = self.rows();
                Some(format!("{kind}:{key}"))
            }
        }
    }

    /// The `comments.dims` values any one of which puts a comment under this dimension (a name is its entity
    /// dims of every name type); `None` for [`Dim::All`].
    pub(crate) fn stored_any(&self) -> Option<Vec<String>> {
        match self {
            Self::All => None,
            Self::Name(name) => {
                Some(EntityLabel::NAMES.iter().map(|label| format!("entity:{}:{name}", label.as_str())).collect())
            }
            _ => self.stored().map(|d| vec![d]),
        }
    }

    /// [`Self::stored`] for a dimension a query reads comment rows under (a brand or brand group).
    pub(crate) fn stored_for(&self, field: &str) -> Result<String, StoreError> {
        self.stored().ok_or_else(|| StoreError::Invalid(format!("{field}: expected a stored dimension, got {self:?}")))
    }
}

/// What a comment counts under, as [`Dim::of_parts`] reads it from a stored or arriving comment.
pub(crate) struct Parts<'a> {
    pub tags: &'a [String],
    pub entities: Option<&'a [Entity]>,
    pub emotion: Option<&'a Emotion>,
    /// [`murmur_core::language_key`].
    pub language: String,
}

/// Comments in a bucket or window, in total and per sentiment class (comments enriched without a sentiment
/// head count in `comments` only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Counts {
    pub comments: i64,
    pub negative: i64,
    pub neutral: i64,
    pub positive: i64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.comments += other.comments;
        self.negative += other.negative;
        self.neutral += other.neutral;
        self.positive += other.positive;
    }

    /// (positive − negative) / comments with a sentiment, in [-1, 1]; `None` without any.
    pub fn net_sentiment(&self) -> Option<f64> {
        let classified = self.negative + self.neutral + self.positive;
        (classified > 0).then(|| (self.positive - self.negative) as f64 / classified as f64)
    }

    /// Comments counted in volume without a sentiment: in a language the heads never learned, or enriched
    /// by a model without a sentiment head.
    pub fn without_sentiment(&self) -> i64 {
        self.comments - self.negative - self.neutral - self.positive
    }

    /// Share of negative comments among those with a sentiment.
    pub fn negative_share(&self) -> Option<f64> {
        let classified = self.negative + self.neutral + self.positive;
        (classified > 0).then(|| self.negative as f64 / classified as f64)
    }
}

/// A piece of a window read at one grain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub grain: Grain,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// `[from, to)` as the fewest rollup buckets no finer than `finest`: whole days in the middle, whole hours
/// next to them, minutes at the edges. The window is first widened to whole `finest` buckets.
pub fn cover(from: DateTime<Utc>, to: DateTime<Utc>, finest: Grain) -> Vec<Segment> {
    fn split(from: DateTime<Utc>, to: DateTime<Utc>, grain: Grain, finest: Grain, out: &mut Vec<Segment>) {
        if from >= to {
            return;
        }
        let finer = match grain {
            Grain::Day => Some(Grain::Hour),
            Grain::Hour => Some(Grain::Minute),
            Grain::Minute => None,
        }
        .filter(|&g| g >= finest);
        let (lo, hi) = (grain.ceil(from), grain.floor(to));
        match finer {
            Some(finer) if lo < hi => {
                split(from, lo, finer, finest, out);
                out.push(Segment { grain, from: lo, to: hi });
                split(hi, to, finer, finest, out);
            }
            Some(finer) => split(from, to, finer, finest, out),
            None => out.push(Segment { grain, from, to }),
        }
    }
    let mut out = Vec::new();
    split(finest.floor(from), finest.ceil(to), Grain::Day, finest, &mut out);
    out
}

/// A key's counts in a window and, for growth, in the window before it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyCounts {
    pub key: String,
    #[sqlx(flatten)]
    pub counts: Counts,
    pub previous: i64,
}

/// Which keys of a kind a window read covers.
#[derive(Debug, Clone, Copy)]
pub struct KeyFilter<'a> {
    pub kind: DimKind,
    pub source: Option<&'a str>,
    /// Only entities of this type (for [`DimKind::Entity`]).
    pub label: Option<EntityLabel>,
    pub duplicates: Duplicates,
}

impl KeyFilter<'_> {
    /// The finest grain the rollups keep these keys at.
    pub fn finest_grain(&self) -> Grain {
        self.kind.finest_grain()
    }

    /// The key a row is ranked under: `ORG:google` by type, the name alone by name, the key otherwise.
    fn key(&self) -> &'static str {
        match self.kind {
            DimKind::Entity => "r.label || ':' || r.key",
            _ => "r.key",
        }
    }

    /// What the rows are grouped by for one ranked key.
    fn group(&self) -> &'static str {
        match self.kind {
            DimKind::Entity => "r.label, r.key",
            _ => "r.key",
        }
    }

    /// The rollup key a ranked key reads (the name of `ORG:google`).
    fn stored_key<'k>(&self, key: &'k str) -> &'k str {
        match self.kind {
            DimKind::Entity => key.split_once(':').map_or(key, |(_, name)| name),
            _ => key,
        }
    }
}

/// How a read counts the copies among the comments (near-duplicates, `murmur_core::duplicates`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Duplicates {
    /// A cluster of copies counts once, as its original: a retweet storm or a copy-paste campaign is one
    /// opinion. Comments not yet compared (a second or so behind the sink) count as originals.
    #[default]
    Once,
    /// Every copy counts.
    Include,
}

impl Duplicates {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "once" => Some(Self::Once),
            "include" => Some(Self::Include),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Include => "include",
        }
    }

    /// Rollup row `r`'s count in `column` (`comments`, `negative`, `neutral` or `positive`) as this counts it.
    fn counted(self, column: &str) -> String {
        match self {
            Self::Include => format!("r.{column}"),
            Self::Once if column == "comments" => "(r.comments - r.copies)".to_owned(),
            Self::Once => format!("(r.{column} - r.copies_{column})"),
        }
    }

    /// The four sums of [`Counts`] over rollup rows `r`, named as its fields.
    fn sums(self) -> String {
        ["comments", "negative", "neutral", "positive"]
            .map(|c| format!("sum({})::int8 AS {c}", self.counted(c)))
            .join(", ")
    }

    /// An SQL condition on comment row `c`: true unless this leaves copies out and `c` is one.
    pub(crate) fn keeps_comment(self) -> &'static str {
        match self {
            Self::Include => "true",
            Self::Once => "NOT EXISTS (SELECT 1 FROM copies k WHERE k.source = c.source AND k.id = c.id)",
        }
    }
}

/// A key's counts in a window, the columns of [`KeyCounts`] (`previous` filled in later where wanted).
fn key_sums(filter: &KeyFilter<'_>) -> String {
    format!("{} AS key, {}, 0::int8 AS previous", filter.key(), filter.duplicates.sums())
}

/// The parameters of a [`key_rows`] query: `$1` kind, `$2` source, `$3` entity type, `$4` the query's own
/// value, then the segments' ranges as [`window_conditions`] numbered them from `$5`.
fn key_arguments<'q, T>(
    filter: &KeyFilter<'_>,
    fourth: T,
    segments: Vec<SegmentBind>,
) -> Result<PgArguments, StoreError>
where
    T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    let mut arguments = PgArguments::default();
    let add = |result: Result<(), sqlx::error::BoxDynError>| result.map_err(sqlx::Error::Encode);
    add(arguments.add(filter.kind.stored_kind()))?;
    add(arguments.add(filter.source.unwrap_or_default().to_owned()))?;
    add(arguments.add(filter.label.map_or("", EntityLabel::as_str)))?;
    add(arguments.add(fourth))?;
    for (grain, from, to) in segments {
        add(arguments.add(grain))?;
        add(arguments.add(from))?;
        add(arguments.add(to))?;
    }
    Ok(arguments)
}

/// A range of rollup buckets as a query parameter triple: (grain, from, to).
type SegmentBind = (&'static str, DateTime<Utc>, DateTime<Utc>);

/// Each window as an SQL condition on rollup row `r` (its segments OR'ed), with the parameters they use,
/// numbered from `$first`. Explicit ranges let Postgres read each segment from the (grain, kind, bucket)
/// index; a join against a list of ranges was planned as a scan of the whole table.
fn window_conditions(
    windows: &[(DateTime<Utc>, DateTime<Utc>)],
    finest: Grain,
    first: usize,
) -> (Vec<String>, Vec<SegmentBind>) {
    let mut conditions = Vec::new();
    let mut binds = Vec::new();
    for &(from, to) in windows {
        let parts: Vec<String> = cover(from, to, finest)
            .into_iter()
            .map(|s| {
                let n = first + 3 * binds.len();
                binds.push((s.grain.as_str(), s.from, s.to));
                format!("(r.grain = ${n} AND r.bucket >= ${} AND r.bucket < ${})", n + 1, n + 2)
            })
            .collect();
        conditions.push(if parts.is_empty() { "false".to_owned() } else { format!("({})", parts.join(" OR ")) });
    }
    (conditions, binds)
}

/// Rollup rows of kind `$1`, of source `$2` and of entity type `$3` where the filter has them; names are
/// entity rows but mentions.
fn key_rows(filter: &KeyFilter<'_>) -> String {
    let mut sql = "FROM rollups r WHERE r.kind = $1".to_owned();
    if filter.source.is_some() {
        sql.push_str(" AND r.source = $2");
    }
    match filter.kind {
        DimKind::Entity if filter.label.is_some() => sql.push_str(" AND r.label = $3"),
        DimKind::Name => sql.push_str(&format!(" AND {NOT_A_NAME}")),
        _ => {}
    }
    sql
}

impl Postgres {
    /// Comments stored, from the rollups (one row per day and source, not a count over the comments).
    pub async fn stored_total(&self) -> Result<i64, StoreError> {
        self.fold_rollups().await?;
        Ok(sqlx::query_scalar(
            "SELECT coalesce(sum(comments), 0)::int8 FROM rollups WHERE kind = 'all' AND key = '' AND grain = 'day'",
        )
        .fetch_one(self.pool())
        .await?)
    }

    /// Counts per `grain` bucket in `[from, to)` for each dimension (of one source, or summed over all):
    /// `(index into dims, bucket start, counts)`, ordered; buckets without comments are absent.
    pub async fn rollup_series(
        &self,
        dims: &[Dim],
        source: Option<&str>,
        duplicates: Duplicates,
        grain: Grain,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(usize, DateTime<Utc>, Counts)>, StoreError> {
        self.fold_rollups().await?;
        let rows: Vec<(&str, String, Option<&str>)> = dims.iter().map(Dim::rows).collect();
        let kinds: Vec<&str> = rows.iter().map(|r| r.0).collect();
        let keys: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        let labels: Vec<Option<&str>> = rows.iter().map(|r| r.2).collect();
        let sql = format!(
            "SELECT d.i - 1, r.bucket, {} \
             FROM unnest($1::text[], $2::text[], $7::text[]) WITH ORDINALITY AS d(kind, key, label, i) \
             JOIN rollups r ON r.kind = d.kind AND r.key = d.key \
             WHERE r.grain = $3 AND r.bucket >= $4 AND r.bucket < $5 AND ($6::text IS NULL OR r.source = $6) \
               AND (r.label = d.label OR (d.label IS NULL AND {NOT_A_NAME})) \
             GROUP BY 1, 2 HAVING sum({}) > 0 ORDER BY 1, 2",
            duplicates.sums(),
            duplicates.counted("comments")
        );
        let rows: Vec<(i64, DateTime<Utc>, i64, i64, i64, i64)> = sqlx::query_as(&sql)
            .bind(&kinds)
            .bind(&keys)
            .bind(grain.as_str())
            .bind(grain.floor(from))
            .bind(grain.ceil(to))
            .bind(source)
            .bind(&labels)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(i, bucket, comments, negative, neutral, positive)| {
                (i as usize, bucket, Counts { comments, negative, neutral, positive })
            })
            .collect())
    }

    /// The keys with the most comments in `[from, to)` (widened to whole buckets of the kind's finest grain),
    /// most first (ties by key).
    pub async fn rollup_top(
        &self,
        filter: KeyFilter<'_>,
        window: (DateTime<Utc>, DateTime<Utc>),
        limit: i64,
    ) -> Result<Vec<KeyCounts>, StoreError> {
        self.fold_rollups().await?;
        let (conditions, segments) = window_conditions(&[window], filter.finest_grain(), 5);
        let sql = format!(
            "SELECT {} {} AND {} GROUP BY {} HAVING sum({}) > 0 ORDER BY comments DESC, key LIMIT $4",
            key_sums(&filter),
            key_rows(&filter),
            conditions[0],
            filter.group(),
            filter.duplicates.counted("comments")
        );
        let arguments = key_arguments(&filter, limit, segments)?;
        Ok(sqlx::query_as_with(&sql, arguments).persistent(false).fetch_all(self.pool()).await?)
    }

    /// For names written in the text, how many comments gave each one each entity type in `[from, to)`
    /// (widened to whole hours), most first: `name → [(type, comments)]`. What says which type a name is
    /// shown with when it is counted by name.
    pub async fn rollup_types(
        &self,
        names: &[String],
        source: Option<&str>,
        duplicates: Duplicates,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<std::collections::HashMap<String, Vec<(EntityLabel, i64)>>, StoreError> {
        let mut out: std::collections::HashMap<String, Vec<(EntityLabel, i64)>> = std::collections::HashMap::new();
        if names.is_empty() {
            return Ok(out);
        }
        self.fold_rollups().await?;
        let filter = KeyFilter { kind: DimKind::Name, source, label: None, duplicates };
        let (conditions, segments) = window_conditions(&[window], filter.finest_grain(), 5);
        let counted = duplicates.counted("comments");
        let sql = format!(
            "SELECT r.key, r.label, sum({counted})::int8 {} AND {} AND r.key = ANY($4::text[]) \
             GROUP BY r.key, r.label HAVING sum({counted}) > 0",
            key_rows(&filter),
            conditions[0]
        );
        let arguments = key_arguments(&filter, names, segments)?;
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as_with(&sql, arguments).persistent(false).fetch_all(self.pool()).await?;
        for (name, label, comments) in rows {
            if let Some(label) = EntityLabel::parse(&label) {
                out.entry(name).or_default().push((label, comments));
            }
        }
        for types in out.values_mut() {
            types.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.as_str().cmp(b.0.as_str())));
        }
        Ok(out)
    }

    /// Every key with at least `min_current` comments in `current`, with its count in `previous` too (both
    /// widened to whole buckets of the kind's finest grain). Two reads: the keys that qualify now, then the
    /// window before for those keys only, rather than aggregating every key of both windows.
    pub async fn rollup_growth(
        &self,
        filter: KeyFilter<'_>,
        current: (DateTime<Utc>, DateTime<Utc>),
        previous: (DateTime<Utc>, DateTime<Utc>),
        min_current: i64,
    ) -> Result<Vec<KeyCounts>, StoreError> {
        self.fold_rollups().await?;
        let (now, segments) = window_conditions(&[current], filter.finest_grain(), 5);
        let counted = filter.duplicates.counted("comments");
        let sql = format!(
            "SELECT {} {} AND {} GROUP BY {} HAVING sum({counted}) >= $4",
            key_sums(&filter),
            key_rows(&filter),
            now[0],
            filter.group()
        );
        let arguments = key_arguments(&filter, min_current, segments)?;
        let mut rows: Vec<KeyCounts> =
            sqlx::query_as_with(&sql, arguments).persistent(false).fetch_all(self.pool()).await?;
        if rows.is_empty() {
            return Ok(rows);
        }
        let mut keys: Vec<&str> = rows.iter().map(|r| filter.stored_key(&r.key)).collect();
        keys.sort_unstable();
        keys.dedup();
        let (before, segments) = window_conditions(&[previous], filter.finest_grain(), 5);
        let sql = format!(
            "SELECT {} AS key, sum({counted})::int8 {} AND {} AND r.key = ANY($4::text[]) GROUP BY {}",
            filter.key(),
            key_rows(&filter),
            before[0],
            filter.group()
        );
        let arguments = key_arguments(&filter, &keys, segments)?;
        let query = sqlx::query_as_with::<_, (String, i64), _>(&sql, arguments).persistent(false);
        let previous: std::collections::HashMap<String, i64> =
            query.fetch_all(self.pool()).await?.into_iter().collect();
        for row in &mut rows {
            row.previous = previous.get(&row.key).copied().unwrap_or(0);
        }
        Ok(rows)
    }
}

impl Postgres {
    /// The keys of `filter` most counted among the comments of `[from, to)` that also count under `within`
    /// (a brand or brand group: rollups count each dimension on its own, so co-mentions come from the comment
    /// rows, through the `created_at` index), most first; `previous` is 0.
    pub async fn co_mentioned_top(
        &self,
        within: &Dim,
        filter: KeyFilter<'_>,
        window: (DateTime<Utc>, DateTime<Utc>),
        limit: i64,
    ) -> Result<Vec<KeyCounts>, StoreError> {
        let sql = format!("{} HAVING count(*) > 0 ORDER BY comments DESC, key LIMIT $6", co_mentions(&filter));
        Ok(sqlx::query_as(&sql)
            .bind(within.stored_for("within")?)
            .bind(window.0)
            .bind(window.1)
            .bind(filter.source)
            .bind(co_mention_prefix(&filter))
            .bind(limit)
            .fetch_all(self.pool())
            .await?)
    }

    /// [`Self::rollup_growth`] among the comments that count under `within` (see [`Self::co_mentioned_top`]).
    pub async fn co_mentioned_growth(
        &self,
        within: &Dim,
        filter: KeyFilter<'_>,
        current: (DateTime<Utc>, DateTime<Utc>),
        previous: (DateTime<Utc>, DateTime<Utc>),
        min_current: i64,
    ) -> Result<Vec<KeyCounts>, StoreError> {
        let sql = format!("{} HAVING count(*) >= $6", co_mentions(&filter));
        let within = within.stored_for("within")?;
        let read = |window: (DateTime<Utc>, DateTime<Utc>), min: i64| {
            sqlx::query_as::<_, KeyCounts>(&sql)
                .bind(&within)
                .bind(window.0)
                .bind(window.1)
                .bind(filter.source)
                .bind(co_mention_prefix(&filter))
                .bind(min)
                .fetch_all(self.pool())
        };
        let mut rows = read(current, min_current).await?;
        if rows.is_empty() {
            return Ok(rows);
        }
        let before: std::collections::HashMap<String, i64> =
            read(previous, 1).await?.into_iter().map(|r| (r.key, r.counts.comments)).collect();
        for row in &mut rows {
            row.previous = before.get(&row.key).copied().unwrap_or(0);
        }
        Ok(rows)
    }
}

/// Keys of one kind counted over the comment rows of a window that count under a dimension: `$1` the
/// dimension as stored, `$2`/`$3` the window, `$4` a source or NULL, `$5` the stored prefix of the dims
/// ranked ([`co_mention_prefix`]). Keys as [`KeyFilter::key`] gives them.
fn co_mentions(filter: &KeyFilter<'_>) -> String {
    let (key, names_only) = match filter.kind {
        // 'entity:ORG:google' → 'ORG:google'.
        DimKind::Entity => ("substr(d, 8)", ""),
        // 'entity:ORG:google' → 'google', mentions left out.
        DimKind::Name => {
            ("substr(d, length(split_part(d, ':', 2)) + 9)", " AND split_part(d, ':', 2) NOT IN ('handle', 'hashtag')")
        }
        _ => ("substr(d, length($5) + 1)", ""),
    };
    format!(
        "SELECT {key} AS key, count(*)::int8 AS comments, \
         count(*) FILTER (WHERE c.sentiment = 'negative')::int8 AS negative, \
         count(*) FILTER (WHERE c.sentiment = 'neutral')::int8 AS neutral, \
         count(*) FILTER (WHERE c.sentiment = 'positive')::int8 AS positive, 0::int8 AS previous \
         FROM comments c CROSS JOIN LATERAL unnest(c.dims) AS d \
         WHERE c.dims @> ARRAY[$1] AND c.created_at >= $2 AND c.created_at < $3 \
           AND ($4::text IS NULL OR c.source = $4) AND starts_with(d, $5){names_only} AND {} \
         GROUP BY 1",
        filter.duplicates.keeps_comment()
    )
}

/// The stored prefix of the dims a filter ranks: `tag:`, `entity:` (by name, or by type of any type),
/// `entity:ORG:` (one type).
fn co_mention_prefix(filter: &KeyFilter<'_>) -> String {
    match (filter.kind, filter.label) {
        (DimKind::Entity, Some(label)) => format!("entity:{}:", label.as_str()),
        (kind, _) => format!("{}:", kind.stored_kind()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, h, m, 0).single().expect("valid")
    }

    #[test]
    fn a_window_is_covered_by_days_then_hours_then_minutes() {
        let segments = cover(t(1, 22, 30), t(4, 1, 15), Grain::Minute);
        let got: Vec<(Grain, DateTime<Utc>, DateTime<Utc>)> =
            segments.iter().map(|s| (s.grain, s.from, s.to)).collect();
        assert_eq!(
            got,
            vec![
                (Grain::Minute, t(1, 22, 30), t(1, 23, 0)),
                (Grain::Hour, t(1, 23, 0), t(2, 0, 0)),
                (Grain::Day, t(2, 0, 0), t(4, 0, 0)),
                (Grain::Hour, t(4, 0, 0), t(4, 1, 0)),
                (Grain::Minute, t(4, 1, 0), t(4, 1, 15)),
            ]
        );
        // Contiguous and exact, whatever the window.
        for (from, to) in [(t(1, 0, 0), t(1, 0, 1)), (t(1, 3, 7), t(1, 3, 59)), (t(1, 0, 0), t(8, 0, 0))] {
            let s = cover(from, to, Grain::Minute);
            assert_eq!(s.first().map(|s| s.from), Some(from));
            assert_eq!(s.last().map(|s| s.to), Some(to));
            assert!(s.windows(2).all(|w| w[0].to == w[1].from));
        }
        assert!(cover(t(2, 0, 0), t(2, 0, 0), Grain::Minute).is_empty());
        // At hour grain the window is widened to whole hours.
        let hours: Vec<(Grain, DateTime<Utc>, DateTime<Utc>)> =
            cover(t(1, 22, 30), t(2, 1, 15), Grain::Hour).iter().map(|s| (s.grain, s.from, s.to)).collect();
        assert_eq!(hours, vec![(Grain::Hour, t(1, 22, 0), t(2, 2, 0))]);
    }

    #[test]
    fn a_comment_counts_each_name_under_the_type_of_its_first_mention() {
        // The rule is `murmur_core::counted_entities`'s; here, that the dims follow it, stored and sorted.
        let entity = |label, text: &str| Entity { label, text: text.into(), start: 0, end: 0, score: 0.9 };
        let entities = [
            entity(EntityLabel::Org, "Apple"),
            entity(EntityLabel::Misc, "APPLE"),
            entity(EntityLabel::Handle, "@apple"),
        ];
        let brands = BrandHits { brands: vec!["apple".into()], groups: Vec::new() };
        let tags = ["iphone".to_owned()];
        let parts = Parts { tags: &tags, entities: Some(&entities), emotion: None, language: "en".into() };
        let dims = Dim::of_parts(parts, &brands);
        assert_eq!(dims, ["brand:apple", "entity:ORG:apple", "entity:handle:apple", "lang:en", "tag:iphone"]);
        assert_eq!(Dim::Name("apple".into()).stored(), None, "a name is its entity rows, never a dim of its own");
        assert!(Dim::Name("apple".into()).stored_for("within").is_err_and(|e| e.to_string().contains("within")));
    }

    #[test]
    fn net_sentiment_reads_classified_comments() {
        let c = Counts { comments: 10, negative: 2, neutral: 2, positive: 4 };
        assert_eq!(c.net_sentiment(), Some(0.25));
        assert_eq!(c.negative_share(), Some(0.25));
        assert_eq!(Counts { comments: 3, ..Counts::default() }.net_sentiment(), None);
        assert_eq!(c.without_sentiment(), 2);
    }
}
