//! What the processes that serve the API read (`murmur serve` and `murmur demo`): the HTTP listener, keys and
//! rate limits, the report scheduler and alert evaluator, and the model behind `POST /v1/enrich` and semantic search.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::builder::BoolishValueParser;
use clap::Args;
use murmur_api::{ApiKeys, AppState, Deleter, Eraser, ErasureOptions, RateLimit, RateLimiter};
use murmur_core::{Brand, ModelQueue};
use murmur_ingest::queue::Producer;
use murmur_ingest::Pseudonymizer;
use murmur_store::{BrandChange, Postgres};
use murmur_trends::{Alerter, AlerterOptions, Scheduler, SchedulerOptions, Trends, WebhookOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{home_path, ModelArgs};

#[derive(Args, Clone)]
pub struct BrandArgs {
    /// A TOML file of brands put into the catalogue at start (`[[brand]]` tables with `name`, `aliases`,
    /// `handles`, `hashtags`, `exclusions`, `group`; see docs/brands.md): each created or replaced, brands
    /// not in the file kept. The catalogue lives in Postgres; `/v1/brands` changes it while running.
    #[arg(long, env = "MURMUR_BRANDS_FILE", value_parser = home_path)]
    pub brands_file: Option<PathBuf>,
}

impl BrandArgs {
    /// Puts the file's brands into the catalogue, if a file is given; how many changed.
    pub async fn load(&self, postgres: &Postgres) -> anyhow::Result<usize> {
        let Some(path) = &self.brands_file else { return Ok(0) };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading the brands file {}", path.display()))?;
        put_brands(postgres, &parse_brands(&text, path)?).await
    }
}

/// The brands of a brands file (TOML, `[[brand]]` tables), each checked; errors name the brand and field.
pub fn parse_brands(text: &str, path: &Path) -> anyhow::Result<Vec<Brand>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct BrandsFile {
        #[serde(default)]
        brand: Vec<Brand>,
    }
    let file: BrandsFile = toml::from_str(text).with_context(|| format!("brands file {}", path.display()))?;
    for (i, brand) in file.brand.iter().enumerate() {
        brand.validate().map_err(|e| anyhow::anyhow!("brands file {}: brand[{i}] {e}", path.display()))?;
    }
    Ok(file.brand)
}

/// Creates or replaces each brand in the catalogue; how many changed.
pub async fn put_brands(postgres: &Postgres, brands: &[Brand]) -> anyhow::Result<usize> {
    let mut changed = 0;
    for brand in brands {
        if postgres.put_brand(brand, false).await? != BrandChange::Unchanged {
            changed += 1;
        }
    }
    tracing::info!(brands = brands.len(), changed, "brand catalogue loaded");
    Ok(changed)
}

#[derive(Args, Clone)]
pub struct HttpArgs {
    /// Address the API listens on.
    #[arg(long, env = "MURMUR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// API keys: `scope:key` pairs, comma-separated (scopes: read, write, admin, each including the ones
    /// before; keys of 16 characters or more). Without any, reads are open and writes answer 401; with any,
    /// reads need a key too.
    #[arg(long, env = "MURMUR_API_KEYS", hide_env_values = true, default_value = "")]
    pub api_keys: String,
    /// HTTP worker threads.
    #[arg(long, env = "MURMUR_HTTP_WORKERS", default_value_t = 2)]
    pub http_workers: usize,
    /// Sustained requests per second per client address (0: no limit); health, readiness and metrics are
    /// exempt. Behind a proxy all clients share its address: limit there and set 0 here.
    #[arg(long, env = "MURMUR_RATE_LIMIT", default_value_t = 20.0)]
    pub rate_limit: f64,
    /// Requests a client may make at once after being idle.
    #[arg(long, env = "MURMUR_RATE_BURST", default_value_t = 60.0)]
    pub rate_burst: f64,
}

impl HttpArgs {
    pub fn keys(&self) -> anyhow::Result<ApiKeys> {
        ApiKeys::parse(&self.api_keys).map_err(|e| anyhow::anyhow!("MURMUR_API_KEYS: {e}"))
    }

    pub fn rate_limiter(&self) -> anyhow::Result<Option<RateLimiter>> {
        if self.rate_limit == 0.0 {
            return Ok(None);
        }
        anyhow::ensure!(
            self.rate_limit.is_finite() && self.rate_limit > 0.0 && self.rate_burst >= 1.0,
            "MURMUR_RATE_LIMIT must be a positive number (or 0 for none) and MURMUR_RATE_BURST at least 1"
        );
        Ok(Some(RateLimiter::new(RateLimit { per_second: self.rate_limit, burst: self.rate_burst })))
    }
}

/// What `serve` pushes: scheduled reports and alerts, and how their webhooks are called.
#[derive(Args, Clone)]
pub struct PushArgs {
    /// How often the report scheduler looks for due schedules, in milliseconds (0: no scheduler here).
    #[arg(long, env = "MURMUR_SCHEDULER_TICK_MS", default_value_t = SchedulerOptions::default().tick.as_millis() as u64)]
    pub scheduler_tick_ms: u64,
    /// How often every alert rule is evaluated, in milliseconds (0: no alert evaluation here).
    #[arg(long, env = "MURMUR_ALERT_TICK_MS", default_value_t = AlerterOptions::default().tick.as_millis() as u64)]
    pub alert_tick_ms: u64,
    /// Webhook deliveries per report or alert before it is marked failed.
    #[arg(long, env = "MURMUR_WEBHOOK_ATTEMPTS", default_value_t = WebhookOptions::default().attempts)]
    pub webhook_attempts: u32,
    /// Wait before the second webhook attempt, in milliseconds; doubled after each.
    #[arg(long, env = "MURMUR_WEBHOOK_BACKOFF_MS", default_value_t = WebhookOptions::default().backoff.as_millis() as u64)]
    pub webhook_backoff_ms: u64,
    /// Secret that signs webhook bodies (`X-Murmur-Signature: sha256=<hex HMAC-SHA256>`); unsigned without.
    #[arg(long, env = "MURMUR_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
}

impl PushArgs {
    fn webhooks(&self) -> WebhookOptions {
        WebhookOptions {
            attempts: self.webhook_attempts.max(1),
            backoff: Duration::from_millis(self.webhook_backoff_ms),
            secret: self.webhook_secret.as_ref().map(|s| s.as_bytes().to_vec()),
            ..WebhookOptions::default()
        }
    }

    /// The scheduler's options, unless its tick is 0.
    pub fn scheduler(&self) -> Option<SchedulerOptions> {
        (self.scheduler_tick_ms > 0).then(|| SchedulerOptions {
            tick: Duration::from_millis(self.scheduler_tick_ms),
            webhooks: self.webhooks(),
        })
    }

    /// The report scheduler and the alert evaluator as tasks beside the API, those whose tick is not 0.
    pub fn start(&self, trends: &Trends, shutdown: &CancellationToken) -> anyhow::Result<Vec<JoinHandle<()>>> {
        let mut tasks = Vec::new();
        if let Some(options) = self.scheduler() {
            tasks.push(tokio::spawn(Scheduler::new(trends.clone(), options)?.run(shutdown.clone())));
        }
        if self.alert_tick_ms > 0 {
            let options = AlerterOptions { tick: Duration::from_millis(self.alert_tick_ms), webhooks: self.webhooks() };
            tasks.push(tokio::spawn(Alerter::new(trends.clone(), options)?.run(shutdown.clone())));
        }
        Ok(tasks)
    }
}

/// How erasure requests (`POST /v1/erasure`) run.
#[derive(Args, Clone)]
pub struct ErasureArgs {
    /// Hours an erased author's comments still arriving (in flight when the request came) are erased on
    /// arrival.
    #[arg(long, env = "MURMUR_ERASURE_ARRIVALS_HOURS", default_value_t = 72.0)]
    pub erasure_arrivals_hours: f64,
    /// Seconds after its first sweep an erasure sweeps the author's comments once more (for those whose write
    /// was under way when the request came); it is done after that.
    #[arg(long, env = "MURMUR_ERASURE_SETTLE_SECONDS", default_value_t = 60.0)]
    pub erasure_settle_seconds: f64,
    /// Comments an erasure deletes per step (one scan of the source's comments and one batch of tombstones
    /// each).
    #[arg(long, env = "MURMUR_ERASURE_PAGE", default_value_t = ErasureOptions::default().page)]
    pub erasure_page: i64,
}

impl ErasureArgs {
    pub fn options(&self) -> anyhow::Result<ErasureOptions> {
        let seconds = |name: &str, value: f64| {
            Duration::try_from_secs_f64(value)
                .map_err(|_| anyhow::anyhow!("{name}: expected a number of seconds of 0 or more, got {value}"))
        };
        Ok(ErasureOptions {
            arrivals: seconds("MURMUR_ERASURE_ARRIVALS_HOURS", self.erasure_arrivals_hours * 3600.0)?,
            settle: seconds("MURMUR_ERASURE_SETTLE_SECONDS", self.erasure_settle_seconds)?,
            page: self.erasure_page.max(1),
            ..ErasureOptions::default()
        })
    }

    /// The deleter that sends tombstones to `enriched_topic` through `producer`, with the eraser beside the API
    /// (until `shutdown`).
    pub fn start(
        &self,
        state: &mut AppState,
        producer: Arc<dyn Producer>,
        enriched_topic: &str,
        pseudonym_key: Option<&str>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<JoinHandle<()>> {
        let pseudonyms = pseudonym_key.map(|key| Pseudonymizer::new(key.as_bytes()));
        if pseudonyms.is_none() {
            tracing::info!("no pseudonym key (MURMUR_PSEUDONYM_KEY): POST /v1/erasure answers 503");
        }
        let deleter = Deleter::new(producer, enriched_topic.to_owned(), pseudonyms, self.options()?);
        state.deleter = Some(deleter.clone());
        let eraser = Eraser::new(state.postgres.clone(), deleter, state.metrics.erased.clone());
        Ok(tokio::spawn(eraser.run(shutdown.clone())))
    }
}

#[derive(Args, Clone)]
pub struct EnrichApiArgs {
    /// Requests that may wait for the model in `POST /v1/enrich`; more are refused with 429.
    #[arg(long, env = "MURMUR_ENRICH_QUEUE", default_value_t = 16)]
    pub enrich_queue: usize,
    /// Texts per `POST /v1/enrich` request at most.
    #[arg(long, env = "MURMUR_ENRICH_MAX_TEXTS", default_value_t = 64)]
    pub enrich_max_texts: usize,
    /// Serve without `POST /v1/enrich` (no model is loaded).
    #[arg(long, env = "MURMUR_NO_ENRICH", value_parser = BoolishValueParser::new())]
    pub no_enrich: bool,
}

impl EnrichApiArgs {
    /// `model` loaded and served by a queue sized for the API.
    pub fn serve(&self, model: &ModelArgs) -> anyhow::Result<ModelQueue> {
        ModelQueue::start(Box::new(model.load()?), self.enrich_queue, self.enrich_max_texts)
            .context("starting the model thread")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use murmur_ingest::demo_corpus::DEMO_BRANDS_FILE;

    #[test]
    fn the_demo_catalogue_parses_and_a_bad_file_names_brand_and_field() {
        let brands = super::parse_brands(DEMO_BRANDS_FILE, Path::new("demo_brands.toml")).expect("demo catalogue");
        assert!(brands.len() >= 20, "{} brands", brands.len());
        assert!(brands.iter().any(|b| b.name == "United" && b.group.as_deref() == Some("Airlines")));
        let bad = "[[brand]]\nname = \"ok\"\n[[brand]]\nname = \"a:b\"\n";
        let error = super::parse_brands(bad, Path::new("b.toml")).expect_err("refused").to_string();
        assert!(error.contains("brand[1] name: expected"), "{error}");
        let unknown = super::parse_brands("[[brand]]\nname = \"x\"\nalias = [\"y\"]\n", Path::new("b.toml"));
        assert!(unknown.is_err(), "an unknown field is refused");
    }
}
