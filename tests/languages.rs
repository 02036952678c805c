//! Languages end to end on real components: comments in seven languages enriched by the committed model stack
//! on the real encoder (language detection, English heads), stored in the real Postgres and the real tantivy
//! index, and read over real HTTP. Comments in languages the heads never learned are stored, embedded and
//! searchable by their words with sentiment, emotion, entities and aspects absent; `lang=` filters search and
//! trends; trends count them in volume and say how many had no sentiment; the language mix is a ranking.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use murmur_api::{ApiKeys, AppState};
use murmur_core::testing::Fixture;
use murmur_core::{EnrichedComment, Enricher, ModelQueue};
use murmur_search::{Access, IndexOptions, SearchIndex};
use serde_json::Value;

mod common;

use common::in_process::{model_stack, InProcessApi};

/// `(id, text, producer's lang, the language murmur should count it under, whether the English heads read it)`.
const COMMENTS: [(&str, &str, Option<&str>, &str, bool); 9] = [
    ("en1", "The Samsung support in Montréal never answered my emails", None, "en", true),
    ("en2", "Samsung fixed my phone in a day, great service", Some("en"), "en", true),
    ("fr", "Le service client de Samsung ne répond jamais, c'est vraiment décevant", None, "fr", false),
    ("zh", "我很喜欢这个手机，但是电池不好。", None, "zh", false),
    ("ja", "このスマートフォンのバッテリーはすぐに切れてしまいます。", None, "ja", false),
    ("ko", "이 휴대폰은 배터리가 너무 빨리 닳아서 실망했어요.", None, "ko", false),
    ("th", "แบตเตอรี่ของโทรศัพท์เครื่องนี้หมดเร็วมาก", None, "th", false),
    // No letters to detect: the producer's tag decides (its primary subtag); with none either, `und`.
    ("pt", "👍👍 10/10", Some("pt-BR"), "pt", true),
    ("und", "🔥🔥🔥", None, "und", true),
];

fn at(now: DateTime<Utc>, i: usize) -> DateTime<Utc> {
    now - TimeDelta::minutes(i as i64 + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_in_other_languages_are_stored_searchable_and_counted_but_not_scored() {
    let stack = model_stack();
    let now = Utc::now();
    let texts: Vec<&str> = COMMENTS.iter().map(|c| c.1).collect();
    let enrichments = stack.enrich(&texts).expect("enriches");
    let comments: Vec<EnrichedComment> = COMMENTS
        .iter()
        .zip(enrichments)
        .enumerate()
        .map(|(i, (&(id, text, lang, _, _), enrichment))| {
            let mut c = Fixture::new("social", id, text, at(now, i)).build();
            c.comment.lang = lang.map(str::to_owned);
            c.enrichment = enrichment;
            c
        })
        .collect();
    for (c, &(id, _, _, language, read)) in comments.iter().zip(&COMMENTS) {
        assert_eq!(c.language_key(), language, "{id}: {:?}", c.enrichment.language);
        assert_eq!(c.enrichment.skipped.is_none(), read, "{id}: {:?}", c.enrichment);
        assert_eq!(c.enrichment.sentiment.is_some(), read, "{id}: sentiment only where the heads read it");
        assert_eq!(c.enrichment.entities.is_some(), read, "{id}: entities only where the heads read it");
        assert_eq!(c.enrichment.embedding.len(), 384, "{id}: every comment is embedded");
    }

    let postgres = murmur_store::testing::fresh_database("languages").await.expect("database");
    postgres.upsert_batch(&comments).await.expect("store");
    postgres.fold_rollups().await.expect("fold");
    let index_dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(index_dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");
    index.add(&comments).expect("index");
    index.commit().expect("commit");
    let queue = ModelQueue::start(Box::new(stack), 64, 64).expect("model queue");
    let state = AppState::new(postgres.clone(), index, Some(queue), ApiKeys::default());
    let api = InProcessApi::start(state);
    let get = |path: String| api.get(path);
    let ids = |body: &Value| -> Vec<String> {
        let mut ids: Vec<String> = body["hits"]
            .as_array()
            .unwrap_or_else(|| panic!("hits in {body}"))
            .iter()
            .map(|h| h["id"].as_str().unwrap_or("").to_owned())
            .collect();
        ids.sort();
        ids
    };

    // Stored as read: the detected language, why the heads left it, and no sentiment or entities.
    let (status, french) = get("/v1/comments/social/fr".into()).await;
    assert_eq!(status, 200, "{french}");
    assert_eq!(french["enrichment"]["language"]["code"], "fr", "{french}");
    assert_eq!(french["enrichment"]["skipped"], "language", "{french}");
    for field in ["sentiment", "emotion", "entities", "aspects"] {
        assert!(french["enrichment"][field].is_null(), "{field} absent: {french}");
    }
    let (_, chinese) = get("/v1/comments/social/zh".into()).await;
    assert_eq!(
        (&chinese["enrichment"]["language"]["code"], &chinese["enrichment"]["skipped"]),
        (&Value::from("zh"), &Value::from("language")),
        "{chinese}"
    );

    // Searchable by their words, a word inside a run of another script's letters included.
    for (q, id) in
        [("répond", "fr"), ("电池", "zh"), ("手机", "zh"), ("バッテリー", "ja"), ("배터리", "ko"), ("แบตเตอรี่", "th")]
    {
        let (status, body) = get(format!("/v1/search?q={q}")).await;
        assert_eq!(status, 200, "{q}: {body}");
        assert_eq!(ids(&body), [id], "{q} finds the {id} comment: {body}");
        assert_eq!(body["hits"][0]["language"], id, "{body}");
        let snippet = body["hits"][0]["snippet"].as_str().unwrap_or("").replace("</b><b>", "");
        assert!(snippet.contains(&format!("<b>{q}</b>")), "{q} marked in the snippet: {snippet}");
        assert!(body["hits"][0]["sentiment"].is_null(), "{body}");
    }

    // lang= filters search: the French and the English comments about Samsung apart.
    let (_, samsung) = get("/v1/search?q=samsung".into()).await;
    assert_eq!(ids(&samsung), ["en1", "en2", "fr"], "{samsung}");
    let (_, french_only) = get("/v1/search?q=samsung&lang=fr".into()).await;
    assert_eq!(ids(&french_only), ["fr"], "{french_only}");
    let (_, english_only) = get("/v1/search?q=samsung&lang=en".into()).await;
    assert_eq!(ids(&english_only), ["en1", "en2"], "{english_only}");
    let (status, refused) = get("/v1/search?q=samsung&lang=French".into()).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap_or("").starts_with("lang: "), "{refused}");

    // Trends count every comment in volume, and say how many had no sentiment.
    let from = (now - TimeDelta::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let to = (now + TimeDelta::minutes(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let window = format!("from={from}&to={to}");
    let skipped = COMMENTS.iter().filter(|c| !c.4).count() as i64;
    let (status, all) = get(format!("/v1/trends/timeline?{window}")).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["total"]["comments"], COMMENTS.len() as i64, "{all}");
    // The emoji-only comments are read (nothing says they are in another language) and scored.
    assert_eq!(all["without_sentiment"], skipped, "{all}");
    let points: i64 =
        all["points"].as_array().expect("points").iter().filter_map(|p| p["without_sentiment"].as_i64()).sum();
    assert_eq!(points, skipped, "the buckets add up to the total: {all}");
    for (lang, comments, without) in [("fr", 1, 1), ("en", 2, 0), ("pt", 1, 0), ("und", 1, 0)] {
        let (status, body) = get(format!("/v1/trends/timeline?{window}&lang={lang}")).await;
        assert_eq!(status, 200, "{lang}: {body}");
        assert_eq!(body["served_by"], "rollups", "a language alone is a rollup dimension: {body}");
        assert_eq!(
            (&body["total"]["comments"], &body["without_sentiment"]),
            (&comments.into(), &without.into()),
            "{lang}: {body}"
        );
    }
    // With words too, the index counts it.
    let (_, words) = get(format!("/v1/trends/timeline?{window}&lang=fr&q=samsung")).await;
    assert_eq!((&words["served_by"], &words["total"]["comments"]), (&"index".into(), &1.into()), "{words}");
    let (status, refused) = get(format!("/v1/trends/timeline?{window}&lang=FR")).await;
    assert_eq!(status, 400, "{refused}");
    let (status, refused) = get(format!("/v1/trends/timeline?{window}&lang=fr&theme=1")).await;
    assert_eq!(status, 400, "a theme combines with source only: {refused}");

    // The language mix: every comment under exactly one language.
    let (status, mix) = get(format!("/v1/trends/entities?{window}&by=lang&limit=100")).await;
    assert_eq!(status, 200, "{mix}");
    let mut counted: Vec<(String, i64)> = mix["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|e| (e["name"].as_str().unwrap_or("").to_owned(), e["comments"].as_i64().unwrap_or(0)))
        .collect();
    counted.sort();
    let mut expected: Vec<(String, i64)> = Vec::new();
    for &(_, _, _, language, _) in &COMMENTS {
        match expected.iter_mut().find(|(l, _)| l == language) {
            Some((_, n)) => *n += 1,
            None => expected.push((language.to_owned(), 1)),
        }
    }
    expected.sort();
    assert_eq!(counted, expected, "{mix}");

    // The comments behind a language's row.
    let (status, examples) = get(format!("/v1/trends/examples?{window}&lang=zh")).await;
    assert_eq!(status, 200, "{examples}");
    let listed: Vec<&str> =
        examples["examples"].as_array().expect("examples").iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(listed, ["zh"], "{examples}");
}
