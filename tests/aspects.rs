//! Aspects end to end on real components: comments about two phone brands, enriched by the committed model's
//! aspect head on the real encoder, stored in the real Postgres under the brand catalogue, and read over real
//! HTTP from `GET /v1/aspects`. Each brand's aspects are the ones its comments judge, with the polarity they
//! judge them with; the counts equal a recount of the stored aspects; near-synonyms are merged by the
//! encoder; bad requests are refused by name.

use chrono::{TimeDelta, Utc};
use murmur_api::{ApiKeys, AppState};
use murmur_core::testing::Fixture;
use murmur_core::{Aspect, Brand, EnrichedComment, Enricher, ModelQueue};
use murmur_search::{Access, IndexOptions, SearchIndex};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

mod common;

use common::in_process::{model_stack, InProcessApi};

/// Comments about the Acme X1: the battery disliked, the screen liked, customer service (also written
/// "customer support") disliked.
const ACME: [&str; 16] = [
    "The Acme X1 battery dies before lunch, but the screen is gorgeous.",
    "Acme X1 screen is stunning. Battery is terrible though.",
    "My Acme's battery drains in three hours. Awful.",
    "Battery on the Acme X1 is a joke, it barely lasts a day.",
    "Love the Acme X1 screen, colours are incredible.",
    "The screen on my new Acme is bright and sharp, best I've had.",
    "Acme customer service kept me on hold for an hour and never fixed anything.",
    "Acme customer support is useless, three emails and no answer.",
    "Acme X1: beautiful screen, horrible battery life.",
    "The Acme battery is the worst I've owned.",
    "Acme customer service was rude and unhelpful.",
    "Acme's screen is gorgeous but the battery is pathetic.",
    "Returned my Acme X1, the battery overheated twice.",
    "acme x1 screen is amazing, really crisp",
    "Acme customer support hung up on me twice.",
    "The camera on the Acme X1 is decent, nothing special.",
];

/// Comments about the Bolt 5: the battery liked.
const BOLT: [&str; 6] = [
    "The Bolt 5 battery lasts two full days, amazing.",
    "Bolt 5 battery life is fantastic.",
    "Really impressed with the Bolt 5 battery, it never dies.",
    "Bolt 5 has a great battery but the speaker is tinny.",
    "The speaker on my Bolt 5 is awful.",
    "Bolt 5 battery is excellent and charges fast.",
];

fn brand(name: &str) -> Brand {
    serde_json::from_value(serde_json::json!({ "name": name, "aliases": [name.to_lowercase()] })).expect("brand")
}

/// What the API should count for a brand, recounted from the stored rows: for each comment of the brand, each
/// aspect name once, under the polarity of its most confident mention.
fn recount(comments: &[EnrichedComment], brand: &str) -> BTreeMap<String, [i64; 3]> {
    let mut counts: BTreeMap<String, [i64; 3]> = BTreeMap::new();
    for c in comments.iter().filter(|c| c.comment.text.to_lowercase().contains(brand)) {
        let mut best: HashMap<&str, &Aspect> = HashMap::new();
        for a in c.enrichment.aspects.iter().flatten() {
            let entry = best.entry(a.name.as_str()).or_insert(a);
            if a.score > entry.score {
                *entry = a;
            }
        }
        for (name, a) in best {
            let k = match a.sentiment.label.as_str() {
                "positive" => 0,
                "neutral" => 1,
                _ => 2,
            };
            counts.entry(name.to_owned()).or_default()[k] += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_brand_gets_the_aspects_its_comments_judge_counted_as_stored() {
    let stack = model_stack();
    let now = Utc::now();
    let texts: Vec<&str> = ACME.iter().chain(&BOLT).copied().collect();
    let enrichments = stack.enrich(&texts).expect("enriches");
    let comments: Vec<EnrichedComment> = texts
        .iter()
        .zip(enrichments)
        .enumerate()
        .map(|(i, (text, enrichment))| {
            let mut c = Fixture::new("reviews", format!("r{i}"), *text, now - TimeDelta::minutes(i as i64 + 1)).build();
            c.enrichment = enrichment;
            c
        })
        .collect();
    let postgres = murmur_store::testing::fresh_database("aspects").await.expect("database");
    for name in ["Acme", "Bolt"] {
        postgres.put_brand(&brand(name), false).await.expect("brand");
    }
    postgres.upsert_batch(&comments).await.expect("store");
    let stored = postgres.get_comment("reviews", "r0", false).await.expect("read").expect("stored");
    assert_eq!(
        stored.enrichment.aspects.map(|a| a.0),
        comments[0].enrichment.aspects,
        "aspects round-trip through Postgres"
    );

    let index_dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(index_dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");
    let queue = ModelQueue::start(Box::new(stack), 64, 64).expect("model queue");
    let state = AppState::new(postgres.clone(), index, Some(queue), ApiKeys::default());
    let api = InProcessApi::start(state);
    let get = |path: String| api.get(path);
    let from = (now - TimeDelta::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    for brand in ["acme", "bolt"] {
        let (status, body) = get(format!("/v1/aspects?slice=brand:{brand}&from={from}&limit=100&examples=2")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["merged"], true, "the server has the encoder: {body}");
        let want = recount(&comments, brand);
        // Merged groups add up their names' counts; every stored name is in exactly one group.
        let mut names = HashSet::new();
        for aspect in body["aspects"].as_array().expect("aspects") {
            let members: Vec<String> = std::iter::once(&aspect["name"])
                .chain(aspect["also"].as_array().expect("also"))
                .map(|n| n.as_str().expect("name").to_owned())
                .collect();
            let mut sum = [0i64; 3];
            for name in &members {
                assert!(names.insert(name.clone()), "{name} in two groups: {body}");
                let counts = want.get(name).unwrap_or_else(|| panic!("{name} is not a stored aspect of {brand}"));
                (0..3).for_each(|k| sum[k] += counts[k]);
            }
            let got =
                [&aspect["positive"], &aspect["neutral"], &aspect["negative"]].map(|v| v.as_i64().expect("count"));
            assert_eq!(got, sum, "{brand} {members:?}: {body}");
            assert_eq!(aspect["mentions"].as_i64(), Some(sum.iter().sum()), "{body}");
            for example in aspect["examples"].as_array().expect("examples") {
                let text = example["text"].as_str().expect("text");
                assert!(text.to_lowercase().contains(brand), "{brand}'s example {text:?}");
                let (start, end) = (
                    example["start"].as_u64().expect("start") as usize,
                    example["end"].as_u64().expect("end") as usize,
                );
                let term: String = text.chars().skip(start).take(end - start).collect();
                assert_eq!(example["term"].as_str(), Some(term.as_str()), "{example}");
                assert!(members.iter().any(|m| *m == murmur_core::aspect_name(&term)), "{term} in {members:?}");
            }
        }
        assert_eq!(names, want.keys().cloned().collect::<HashSet<_>>(), "every stored aspect is listed: {body}");
    }

    // Every comment (no dim to narrow by) and a name of any type (its entity dims of every type) are slices too:
    // their totals equal the recount's.
    let total = |counts: &BTreeMap<String, [i64; 3]>| {
        counts.values().fold([0i64; 3], |t, c| [t[0] + c[0], t[1] + c[1], t[2] + c[2]])
    };
    for (slice, brand) in [("all", ""), ("source:reviews", "")] {
        let (status, body) = get(format!("/v1/aspects?slice={slice}&from={from}&limit=100&examples=0")).await;
        assert_eq!(status, 200, "{slice}: {body}");
        let listed = body["aspects"].as_array().expect("aspects").iter().fold([0i64; 3], |t, a| {
            [0, 1, 2].map(|k| t[k] + a[["positive", "neutral", "negative"][k]].as_i64().unwrap_or(0))
        });
        assert_eq!(listed, total(&recount(&comments, brand)), "{slice}: {body}");
    }

    // What each brand's comments say about the battery, and about Acme's screen and customer service.
    let (_, acme) = get(format!("/v1/aspects?slice=brand:acme&from={from}&examples=1")).await;
    let (_, bolt) = get(format!("/v1/aspects?slice=brand:bolt&from={from}&examples=1")).await;
    let aspect = |body: &Value, name: &str| -> Value {
        body["aspects"]
            .as_array()
            .and_then(|list| list.iter().find(|a| a["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no {name} in {body}"))
    };
    let net = |a: &Value| a["net_sentiment"].as_f64().expect("net");
    assert_eq!(acme["aspects"][0]["name"], "battery", "Acme's most mentioned aspect: {acme}");
    assert!(net(&aspect(&acme, "battery")) <= -0.6, "Acme's battery is disliked: {acme}");
    assert!(net(&aspect(&acme, "screen")) >= 0.6, "Acme's screen is liked: {acme}");
    assert!(net(&aspect(&bolt, "battery")) >= 0.6, "Bolt's battery is liked: {bolt}");
    let service = aspect(&acme, "customer service");
    assert!(net(&service) <= -0.6, "{service}");
    assert!(
        service["also"].as_array().is_some_and(|a| a.iter().any(|n| n == "customer support")),
        "customer support is merged into customer service: {service}"
    );
    let battery = aspect(&acme, "battery");
    let negative =
        battery["examples"].as_array().and_then(|e| e.iter().find(|x| x["sentiment"] == "negative").cloned());
    assert!(negative.is_some(), "a complaint about Acme's battery is quoted: {battery}");

    for (query, field) in [
        ("slice=brand:acme&q=battery", "unknown parameter `q`"),
        ("slice=nonsense", "slice"),
        ("slice=brand:acme&limit=0", "limit"),
        ("slice=source:twitter&source=reviews", "source"),
        ("duplicates=twice", "duplicates"),
    ] {
        let (status, body) = get(format!("/v1/aspects?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(field), "{query}: {message}");
    }
}
