//! Trend rollups and queries against the real Postgres and a real index, on comments whose truth is known:
//! every answer is compared with a direct SQL count over the raw rows.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use murmur_core::testing::{sentiment, Fixture};
use murmur_core::{Emotion, EmotionLabel, EnrichedComment, EntityLabel, SentimentLabel};
use murmur_search::{Access, IndexOptions, SearchIndex};
use murmur_store::{testing, Counts, DimKind, Postgres};
use murmur_trends::{Bucketing, EntityQuery, ServedBy, Slice, SpikeKind, SpikeParams, Trends, Unit, Window};

/// A small deterministic generator (64-bit LCG), so a failure reproduces.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).single().expect("date")
}

const TAGS: [&str; 3] = ["pixel", "iphone", "galaxy"];
/// Entities as a model would write them: case, accent and punctuation variants, one name under two types, and
/// mentions (an account and a tag with the names of entities).
const ENTITIES: [(EntityLabel, &str); 10] = [
    (EntityLabel::Org, "Google"),
    (EntityLabel::Org, "google"),
    (EntityLabel::Org, "Apple"),
    (EntityLabel::Misc, "Apple"),
    (EntityLabel::Loc, "Paris"),
    (EntityLabel::Per, "Tim Cook"),
    (EntityLabel::Loc, "Montréal"),
    (EntityLabel::Loc, "MONTREAL"),
    (EntityLabel::Handle, "@google"),
    (EntityLabel::Hashtag, "#Apple"),
];

fn unit_vector(axis: usize, wobble: f32) -> Vec<f32> {
    let mut v = vec![0.05_f32; 4];
    v[axis] = 1.0;
    v[(axis + 1) % 4] += wobble;
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

/// A comment whose text holds its entities at their character offsets.
#[allow(clippy::too_many_arguments)] // every field varies between the comments the tests make
fn comment(
    source: &str,
    id: String,
    at: DateTime<Utc>,
    tags: Vec<String>,
    entities: &[(EntityLabel, &str)],
    label: Option<SentimentLabel>,
    words: &str,
    axis: usize,
) -> EnrichedComment {
    let mut fixture = Fixture::new(source, id.clone(), format!("{id} {words}"), at)
        .tags(tags)
        .embedding(unit_vector(axis, 0.01 * (at.timestamp() % 17) as f32))
        .emotion(emotion_of(at));
    for &(label, name) in entities {
        fixture = fixture.mention(label, name);
    }
    if let Some(label) = label {
        fixture = fixture.sentiment(label);
    }
    fixture.build()
}

/// Emotions as a model would give them: none (no emotion head), neutral alone, or one or two emotions.
fn emotion_of(at: DateTime<Utc>) -> Option<Emotion> {
    let k = at.timestamp().unsigned_abs();
    let labels = match k % 5 {
        0 => return None,
        1 => vec![EmotionLabel::Neutral],
        2 => vec![EmotionLabel::Anger],
        3 => vec![EmotionLabel::Joy, EmotionLabel::Surprise],
        _ => vec![EmotionLabel::Sadness, EmotionLabel::Anger],
    };
    Some(Emotion::new(labels, [0.1; 7]))
}

/// 4,000 comments over 10 days: two sources, 0–2 tags, 0–3 entity mentions (repeats included), a sentiment
/// or none, and the word "zqxfoo" in about a third.
fn corpus(seed: u64, n: usize) -> Vec<EnrichedComment> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|i| {
            let at = t0() + Duration::minutes(rng.below(10 * 24 * 60) as i64) + Duration::seconds(rng.below(60) as i64);
            let source = if rng.below(3) == 0 { "reviews" } else { "twitter" };
            let tags: Vec<String> =
                (0..rng.below(3)).map(|_| TAGS[rng.below(3) as usize].to_owned()).collect::<Vec<_>>();
            let mut tags_unique = tags.clone();
            tags_unique.sort();
            tags_unique.dedup();
            let entities: Vec<(EntityLabel, &str)> =
                (0..rng.below(4)).map(|_| ENTITIES[rng.below(ENTITIES.len() as u64) as usize]).collect();
            let label = match rng.below(10) {
                0 => None,
                1..=4 => Some(SentimentLabel::Negative),
                5..=7 => Some(SentimentLabel::Neutral),
                _ => Some(SentimentLabel::Positive),
            };
            let words = if rng.below(3) == 0 { "zqxfoo battery" } else { "screen" };
            comment(source, format!("c{i}"), at, tags_unique, &entities, label, words, rng.below(4) as usize)
        })
        .collect()
}

async fn write(postgres: &Postgres, index: &SearchIndex, comments: &[EnrichedComment], batch: usize) {
    for chunk in comments.chunks(batch) {
        postgres.upsert_batch(chunk).await.expect("postgres upsert");
        index.write_batch(chunk).expect("index write");
    }
}

/// The rollups hold exactly what a recount from the raw rows gives, at every grain, for every dimension.
async fn assert_rollups_match_raw(postgres: &Postgres) {
    postgres.fold_rollups().await.expect("fold");
    let (missing, extra): (i64, i64) = sqlx::query_as(&format!(
        r#"
        WITH entities AS ({}),
        dims AS (
            SELECT c.source, c.id, c.created_at, c.sentiment, 'all' AS kind, '' AS key, '' AS label
            FROM comments c WHERE c.model IS NOT NULL
            UNION ALL
            SELECT c.source, c.id, c.created_at, c.sentiment, 'tag', t, ''
            FROM comments c, unnest(c.tags) t WHERE c.model IS NOT NULL
            UNION
            SELECT c.source, c.id, c.created_at, c.sentiment, 'entity', m.name, m.label
            FROM comments c JOIN entities m USING (source, id)
            UNION
            SELECT c.source, c.id, c.created_at, c.sentiment, 'emotion', e, ''
            FROM comments c, jsonb_array_elements_text(c.emotion->'labels') e
            UNION ALL
            SELECT c.source, c.id, c.created_at, c.sentiment, 'lang',
                   coalesce(CASE WHEN c.lang_confidence >= 0.5 THEN c.lang_detected END,
                            lower(split_part(c.lang, '-', 1)), 'und'), ''
            FROM comments c WHERE c.model IS NOT NULL
        ),
        expected AS (
            SELECT kind, key, label, g.grain, date_trunc(g.grain, created_at, 'UTC') AS bucket, source,
                   count(*)::int8 AS comments,
                   count(*) FILTER (WHERE sentiment = 'negative')::int8 AS negative,
                   count(*) FILTER (WHERE sentiment = 'neutral')::int8 AS neutral,
                   count(*) FILTER (WHERE sentiment = 'positive')::int8 AS positive
            FROM dims CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS g(grain)
            WHERE g.grain <> 'minute' OR kind IN ('all', 'tag', 'emotion', 'lang')
            GROUP BY 1, 2, 3, 4, 5, 6
        ),
        actual AS (
            SELECT kind, key, label, grain, bucket, source, comments, negative, neutral, positive FROM rollups
            WHERE comments <> 0 OR negative <> 0 OR neutral <> 0 OR positive <> 0
        )
        SELECT (SELECT count(*) FROM (SELECT * FROM expected EXCEPT SELECT * FROM actual) x),
               (SELECT count(*) FROM (SELECT * FROM actual EXCEPT SELECT * FROM expected) y)
        "#,
        testing::COUNTED_ENTITIES
    ))
    .bind(Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).single().expect("a date"))
    .bind(Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).single().expect("a date"))
    .fetch_one(postgres.pool())
    .await
    .expect("recount");
    assert_eq!((missing, extra), (0, 0), "rollup rows missing / wrong compared with a recount of the raw rows");
}

async fn raw_timeline(
    postgres: &Postgres,
    condition: &str,
    unit: &str,
    tz: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, Counts)> {
    testing::raw_series(postgres, condition, unit, tz, from, to).await.expect("raw timeline")
}

async fn raw_entities(postgres: &Postgres, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(String, Counts)> {
    testing::raw_entities(postgres, from, to).await.expect("raw entities")
}

async fn assert_queries_match_raw(trends: &Trends, postgres: &Postgres) {
    let from = t0() + Duration::hours(27) + Duration::minutes(17);
    let to = t0() + Duration::days(6) + Duration::hours(11) + Duration::minutes(42);
    let window = Window::new(from, to).expect("window");
    let cases: Vec<(Slice, String)> = vec![
        (Slice::default(), "true".into()),
        (Slice { tag: Some("pixel".into()), ..Slice::default() }, "'pixel' = ANY(c.tags)".into()),
        (
            Slice { tag: Some("iphone".into()), source: Some("reviews".into()), ..Slice::default() },
            "'iphone' = ANY(c.tags) AND c.source = 'reviews'".into(),
        ),
        (
            Slice { entity: Some("ORG:Apple".into()), ..Slice::default() },
            // A comment gives a name the type of its first mention (`murmur_core::counted_entities`).
            "(SELECT m->>'label' FROM jsonb_array_elements(c.entities) WITH ORDINALITY AS x(m, n) \
             WHERE m->>'name' = 'apple' AND m->>'label' NOT IN ('handle', 'hashtag') ORDER BY n LIMIT 1) = 'ORG'"
                .into(),
        ),
        (
            Slice { entity: Some("apple".into()), ..Slice::default() },
            // A name of any type: names written in the text, not the `#Apple` hashtag (mentions rank apart).
            "EXISTS (SELECT 1 FROM jsonb_array_elements(c.entities) m \
             WHERE m->>'name' = 'apple' AND m->>'label' NOT IN ('handle', 'hashtag'))"
                .into(),
        ),
        (
            Slice { q: Some("zqxfoo".into()), tag: Some("galaxy".into()), ..Slice::default() },
            "c.text LIKE '%zqxfoo%' AND 'galaxy' = ANY(c.tags)".into(),
        ),
    ];
    for (unit, tz) in [
        (Unit::Hour, "UTC"),
        (Unit::Day, "UTC"),
        (Unit::Day, "America/New_York"),
        (Unit::Week, "UTC"),
        (Unit::Minute, "UTC"),
    ] {
        let bucketing = Bucketing { unit, tz: tz.parse::<Tz>().expect("tz") };
        let window =
            if unit == Unit::Minute { Window::new(from, from + Duration::hours(5)).expect("window") } else { window };
        for (slice, condition) in &cases {
            let timeline = trends.timeline(slice, window, bucketing).await.expect("timeline");
            // Words, and entities by the minute (kept by hour and day only), are counted by the index.
            let by_index = slice.q.is_some() || (unit == Unit::Minute && slice.entity.is_some());
            let expected_source = if by_index { ServedBy::Index } else { ServedBy::Rollups };
            assert_eq!(timeline.served_by, expected_source, "{}", slice.label());
            let got: Vec<(DateTime<Utc>, Counts)> =
                timeline.points.iter().filter(|p| p.counts.comments > 0).map(|p| (p.start, p.counts)).collect();
            let raw = raw_timeline(postgres, condition, unit.as_str(), tz, timeline.from, timeline.to).await;
            assert!(!raw.is_empty(), "{} has comments in the window", slice.label());
            assert_eq!(got, raw, "{} by {} in {tz}", slice.label(), unit.as_str());
        }
    }

    // Share of voice: each tag's comments over the tags' total, per bucket and over the window.
    let slices: Vec<Slice> = TAGS.iter().map(|t| Slice { tag: Some((*t).into()), ..Slice::default() }).collect();
    let bucketing = Bucketing { unit: Unit::Day, tz: Tz::UTC };
    let share = trends.share_of_voice(&slices, window, bucketing).await.expect("share");
    let timeline = trends.timeline(&Slice::default(), window, bucketing).await.expect("timeline");
    let mut raw_totals = Vec::new();
    for tag in TAGS {
        let raw =
            raw_timeline(postgres, &format!("'{tag}' = ANY(c.tags)"), "day", "UTC", timeline.from, timeline.to).await;
        raw_totals.push(raw.iter().map(|(_, c)| c.comments).sum::<i64>());
    }
    let all: i64 = raw_totals.iter().sum();
    for (series, raw) in share.iter().zip(&raw_totals) {
        assert_eq!(series.comments, *raw, "{}", series.label);
        assert!((series.share - *raw as f64 / all as f64).abs() < 1e-12);
        let bucket_shares: f64 = series.points.iter().map(|p| p.share).sum();
        assert!(bucket_shares > 0.0);
    }
    for b in 0..share[0].points.len() {
        let sum: f64 = share.iter().map(|s| s.points[b].share).sum();
        assert!((sum - 1.0).abs() < 1e-9 || sum == 0.0, "shares of a bucket add up to 1: {sum}");
    }

    // Top entities over an unaligned window: widened to whole hours (entities are kept by hour and day).
    let entity_window = window.for_entities();
    assert_eq!(entity_window.from, t0() + Duration::hours(27));
    let raw = raw_entities(postgres, entity_window.from, entity_window.to).await;
    let by_entity = EntityQuery { limit: 100, by: DimKind::Entity, ..EntityQuery::default() };
    let top = trends.top_entities(&by_entity, window).await.expect("top entities");
    let got: Vec<(String, Counts)> =
        top.iter().map(|e| (format!("{}:{}", e.label.map_or("", |l| l.as_str()), e.name), e.counts)).collect();
    assert_eq!(got, raw, "top entities = a count over the raw rows");

    // By name (the default): a name written any way and typed any way is one entity, shown with the type most
    // of its comments give it; mentions are not names.
    let names = testing::raw_names(postgres, entity_window.from, entity_window.to).await.expect("raw names");
    let top = trends.top_entities(&EntityQuery { limit: 100, ..EntityQuery::default() }, window).await.expect("names");
    let got: Vec<(String, String, Counts)> =
        top.iter().map(|e| (e.label.map_or("", |l| l.as_str()).to_owned(), e.name.clone(), e.counts)).collect();
    assert_eq!(got, names, "top names = a count over the raw rows, each with its most frequent type");
    let keys: Vec<&str> = top.iter().map(|e| e.name.as_str()).collect();
    assert!(keys.contains(&"montreal") && !keys.contains(&"montréal"), "accents fold: {keys:?}");
    assert_eq!(top.iter().find(|e| e.name == "apple").map(|e| e.types.len()), Some(2), "Apple as ORG and MISC");
    let accounts =
        EntityQuery { limit: 100, by: DimKind::Entity, label: Some(EntityLabel::Handle), ..EntityQuery::default() };
    let accounts = trends.top_entities(&accounts, window).await.expect("accounts");
    assert_eq!(accounts.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), vec!["google"], "accounts rank apart");

    // Trending: now against the window before, from the raw rows.
    let before = raw_entities(postgres, entity_window.previous().from, entity_window.previous().to).await;
    let previous = |key: &str| before.iter().find(|(k, _)| k == key).map_or(0, |(_, c)| c.comments);
    let min = 100;
    let mut expected: Vec<(String, i64, i64)> = raw
        .iter()
        .filter(|(key, c)| c.comments >= min && c.comments > previous(key))
        .map(|(key, c)| (key.clone(), c.comments, previous(key)))
        .collect();
    let score = |c: i64, p: i64| (c - p) as f64 / ((c + p) as f64).sqrt();
    expected.sort_by(|a, b| score(b.1, b.2).total_cmp(&score(a.1, a.2)).then(a.0.cmp(&b.0)));
    let trending = trends.trending_entities(&by_entity, window, min).await.expect("trending");
    let got: Vec<(String, i64, i64)> = trending
        .iter()
        .map(|e| {
            (format!("{}:{}", e.label.map_or("", |l| l.as_str()), e.name), e.counts.comments, e.previous.unwrap_or(-1))
        })
        .collect();
    assert!(expected.len() >= 2, "the corpus has growing entities: {expected:?}");
    assert_eq!(got, expected, "trending entities = the raw counts, ranked by score");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_and_trend_queries_equal_counts_over_raw_rows() {
    let postgres = murmur_store::testing::fresh_database("trends_rollups").await.expect("postgres (infra/postgres.sh)");
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");
    let trends = Trends::new(postgres.clone(), index.clone());
    // The window before the trending window must see growth for some entities: the first days are thinner.
    let mut comments = corpus(7, 4000);
    comments.retain(|c| c.comment.created_at >= t0() + Duration::hours(30) || c.comment.id.ends_with('0'));
    write(&postgres, &index, &comments, 500).await;
    assert_rollups_match_raw(&postgres).await;
    assert_queries_match_raw(&trends, &postgres).await;

    // Replaying everything, in other batch sizes and twice concurrently, changes no rollup row.
    let snapshot = || async {
        postgres.fold_rollups().await.expect("fold");
        sqlx::query_as::<_, (String, String, String, String, DateTime<Utc>, String, i32, i32, i32, i32)>(
            "SELECT kind, key, label, grain, bucket, source, comments, negative, neutral, positive FROM rollups \
             ORDER BY kind, key, label, grain, bucket, source",
        )
        .fetch_all(postgres.pool())
        .await
        .expect("rollups")
    };
    let before = snapshot().await;
    write(&postgres, &index, &comments, 333).await;
    let (a, b) = (postgres.clone(), postgres.clone());
    let (first, second) = (comments[..1000].to_vec(), comments[..1000].to_vec());
    let (r1, r2) =
        tokio::join!(async move { a.upsert_batch(&first).await }, async move { b.upsert_batch(&second).await });
    r1.expect("concurrent replay");
    r2.expect("concurrent replay");
    assert_eq!(snapshot().await, before, "replayed comments must not count twice");

    // Edits move counts (new time, sentiment, tags, entities); deletions take them away.
    let mut rng = Lcg(99);
    let edited: Vec<EnrichedComment> = comments
        .iter()
        .step_by(9)
        .map(|c| {
            let mut e = c.clone();
            e.comment.created_at += Duration::hours(rng.below(72) as i64 - 36);
            e.comment.tags = vec![TAGS[rng.below(3) as usize].to_owned()];
            e.enrichment.sentiment = Some(sentiment(SentimentLabel::Positive));
            if let Some(list) = e.enrichment.entities.as_mut() {
                list.truncate(1);
            }
            e
        })
        .collect();
    write(&postgres, &index, &edited, 250).await;
    sqlx::query("DELETE FROM comments WHERE id LIKE 'c1%7'").execute(postgres.pool()).await.expect("delete");
    assert_rollups_match_raw(&postgres).await;
    // (The index still holds the deleted comments; only the rollup-served slices are compared after it.)
    let slice = Slice { tag: Some("galaxy".into()), ..Slice::default() };
    let window = Window::new(t0(), t0() + Duration::days(10)).expect("window");
    let timeline = trends.timeline(&slice, window, Bucketing { unit: Unit::Day, tz: Tz::UTC }).await.expect("timeline");
    let raw = raw_timeline(&postgres, "'galaxy' = ANY(c.tags)", "day", "UTC", timeline.from, timeline.to).await;
    let got: Vec<(DateTime<Utc>, Counts)> =
        timeline.points.iter().filter(|p| p.counts.comments > 0).map(|p| (p.start, p.counts)).collect();
    assert_eq!(got, raw, "after edits and deletions");
}

/// The writers' transactions only log rollup deltas; a read answers from rollups folded first, and folders
/// racing each other and the writers fold every delta exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_deltas_are_folded_once_by_racing_folders_and_reads_never_miss_them() {
    let postgres =
        murmur_store::testing::fresh_database("trends_rollup_log").await.expect("postgres (infra/postgres.sh)");
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");
    let trends = Trends::new(postgres.clone(), index.clone());
    let comments = corpus(11, 1500);
    write(&postgres, &index, &comments[..500], 250).await;
    let rows =
        || async { sqlx::query_scalar::<_, i64>("SELECT count(*) FROM rollups").fetch_one(postgres.pool()).await };
    assert_eq!(rows().await.expect("rollups"), 0, "the writers' transactions touch no rollup row");
    assert!(postgres.rollups_pending().await.expect("pending") >= 500, "each comment logged its deltas");

    let window = Window::new(t0(), t0() + Duration::days(10)).expect("window");
    let day = Bucketing { unit: Unit::Day, tz: Tz::UTC };
    let timeline = trends.timeline(&Slice::default(), window, day).await.expect("timeline");
    assert_eq!(timeline.points.iter().map(|p| p.counts.comments).sum::<i64>(), 500, "the read folded first");
    assert_eq!(postgres.rollups_pending().await.expect("pending"), 0);

    let folder = |postgres: Postgres| async move {
        for _ in 0..30 {
            postgres.fold_rollups().await.expect("fold");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    let writer = async {
        for chunk in comments[500..].chunks(100) {
            postgres.upsert_batch(chunk).await.expect("postgres upsert");
        }
    };
    tokio::join!(writer, folder(postgres.clone()), folder(postgres.clone()));
    assert_rollups_match_raw(&postgres).await;
    assert_eq!(postgres.rollups_pending().await.expect("pending"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_spike_is_found_with_examples_and_a_flat_series_yields_none() {
    let postgres = murmur_store::testing::fresh_database("trends_spikes").await.expect("postgres (infra/postgres.sh)");
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");
    let trends = Trends::new(postgres.clone(), index.clone());
    let start = t0() + Duration::days(20);
    let mut comments = Vec::new();
    let mut rng = Lcg(3);
    for hour in 0..48_i64 {
        // "flat": 9–11 an hour, a fifth negative. "spiky": the same, but 70 comments in hour 40 and a
        // mostly negative hour 44.
        for (tag, n, negative) in [
            ("flat", 9 + hour % 3, 2),
            (
                "spiky",
                match hour {
                    40 => 70,
                    44 => 12,
                    _ => 9 + (hour + 1) % 3,
                },
                if hour == 44 { 10 } else { 2 },
            ),
        ] {
            for k in 0..n {
                let at = start + Duration::hours(hour) + Duration::minutes(rng.below(60) as i64);
                let label = if k < negative { SentimentLabel::Negative } else { SentimentLabel::Positive };
                // The spike's comments are about one thing (axis 2); the rest spread over the others.
                let axis = if hour == 40 && tag == "spiky" { 2 } else { (k as usize) % 2 };
                let words = if axis == 2 { "the update bricked my phone" } else { "fine" };
                comments.push(comment(
                    "twitter",
                    format!("{tag}-{hour}-{k}"),
                    at,
                    vec![tag.into()],
                    &[],
                    Some(label),
                    words,
                    axis,
                ));
            }
        }
    }
    write(&postgres, &index, &comments, 400).await;
    let window = Window::new(start, start + Duration::hours(48)).expect("window");
    let hours = Bucketing { unit: Unit::Hour, tz: Tz::UTC };

    let flat = Slice { tag: Some("flat".into()), ..Slice::default() };
    let (_, found) = trends.spikes(&flat, window, hours, SpikeParams::default(), 3).await.expect("spikes");
    assert!(found.is_empty(), "a flat series has no spikes: {found:?}");

    let spiky = Slice { tag: Some("spiky".into()), ..Slice::default() };
    let (timeline, found) = trends.spikes(&spiky, window, hours, SpikeParams::default(), 3).await.expect("spikes");
    assert_eq!(timeline.points.len(), 48);
    let got: Vec<(DateTime<Utc>, SpikeKind)> = found.iter().map(|s| (s.start, s.departure.kind)).collect();
    assert_eq!(
        got,
        vec![(start + Duration::hours(40), SpikeKind::Volume), (start + Duration::hours(44), SpikeKind::NegativeShare)]
    );
    let volume = &found[0];
    assert_eq!(volume.counts.comments, 70);
    assert_eq!(volume.examples.len(), 3);
    for example in &volume.examples {
        assert!(example.id.starts_with("spiky-40-"), "{}", example.id);
        assert!(example.text.contains("bricked"), "the representative comments say what the spike says");
    }
    for example in &found[1].examples {
        assert!(example.id.starts_with("spiky-44-"), "{}", example.id);
        assert_eq!(example.sentiment.as_deref(), Some("negative"));
    }

    // Examples rank by closeness to the slice's centroid.
    let examples = trends.examples(&spiky, window, None, 20).await.expect("examples");
    assert_eq!(examples.len(), 20);
    assert!(examples.windows(2).all(|w| w[0].score >= w[1].score), "most representative first");
    assert!(examples.iter().all(|e| e.tags == vec!["spiky".to_owned()]));
}
