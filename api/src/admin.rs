//! The admin port of the pipeline roles without an API (`murmur worker` and `murmur sink`, with
//! `--admin-listen`): `GET /metrics` (Prometheus text format, one quantity per name with its unit: what the
//! stage has done, batch sizes, enrichment and store-write latency histograms, its consumer group's lag,
//! process memory), `GET /healthz` (the process answers) and `GET /readyz` (the stage is running: models
//! loaded, stores connected, consumer created). Nothing here reads a database, so the port answers whatever
//! state the stores are in; the lag comes from the broker, and is left out while the broker does not answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use murmur_ingest::{HistogramSnapshot, PipelineStats};
use prometheus::{Encoder, IntCounter, IntGauge, Opts, Registry, TextEncoder};
use serde_json::json;

use crate::{ApiError, LagProbe};

/// What the admin port reports for one process.
#[derive(Clone)]
pub struct AdminState {
    /// `worker` or `sink`: a label on every metric.
    pub role: &'static str,
    pub stats: Arc<PipelineStats>,
    /// Set once the stage's loop runs.
    pub ready: Arc<AtomicBool>,
    /// Where the stage's consumer group stands, when the broker is known.
    pub lag: Option<Arc<dyn LagProbe>>,
    started: SystemTime,
}

impl AdminState {
    pub fn new(role: &'static str, stats: Arc<PipelineStats>) -> Self {
        Self { role, stats, ready: Arc::new(AtomicBool::new(false)), lag: None, started: SystemTime::now() }
    }

    /// The exposition, with `progress` (`(group, topic, committed, lag)`, read from the broker) as gauges.
    fn exposition(&self, progress: &[(String, String, i64, i64)]) -> Result<String, ApiError> {
        let registry = Registry::new();
        let counters = [
            ("murmur_consumed_messages_total", "Messages the stage has read from its topic", &self.stats.consumed),
            ("murmur_enriched_comments_total", "Comments enriched and sent on (worker)", &self.stats.enriched),
            (
                "murmur_dead_lettered_messages_total",
                "Messages refused and sent to the dead-letter topic with their reason",
                &self.stats.dead_lettered,
            ),
            ("murmur_stored_comments_total", "Comments written to every store (sink)", &self.stats.stored),
            (
                "murmur_deletions_total",
                "Deletions: tombstones passed on (worker); comments deleted from every store (sink)",
                &self.stats.deleted,
            ),
            (
                "murmur_forgotten_comments_total",
                "Comments not stored because they were deleted before or their author was erased (sink)",
                &self.stats.forgotten,
            ),
            ("murmur_expired_comments_total", "Comments retention removed from Postgres (sink)", &self.stats.expired),
        ];
        let label = |name: &str, help: &str| Opts::new(name, help).const_label("role", self.role);
        for (name, help, counter) in counters {
            // Counted by the stage; each scrape reports the running total.
            let metric = IntCounter::with_opts(label(name, help)).map_err(|_| ApiError::Internal)?;
            metric.inc_by(PipelineStats::get(counter));
            registry.register(Box::new(metric)).map_err(|_| ApiError::Internal)?;
        }
        let started = self.started.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let mut gauges = vec![
            ("murmur_process_start_time_seconds", "When the process started, in Unix seconds", started),
            ("murmur_ready", "1 once the stage's loop runs", i64::from(self.ready.load(Ordering::Relaxed))),
        ];
        if let Some(bytes) = resident_memory_bytes() {
            gauges.push(("murmur_process_resident_memory_bytes", "Resident memory of the process", bytes));
        }
        for (name, help, value) in gauges {
            let metric = IntGauge::with_opts(label(name, help)).map_err(|_| ApiError::Internal)?;
            metric.set(value);
            registry.register(Box::new(metric)).map_err(|_| ApiError::Internal)?;
        }
        let stage = |name: &str, help: &str| {
            prometheus::IntGaugeVec::new(label(name, help), &["group", "topic"]).map_err(|_| ApiError::Internal)
        };
        let lag = stage("murmur_consumer_lag_messages", "Messages the stage's group has not committed yet")?;
        let committed = stage("murmur_consumer_committed_messages", "Messages the stage's group has committed")?;
        for (group, topic, done, behind) in progress {
            lag.with_label_values(&[group, topic]).set(*behind);
            committed.with_label_values(&[group, topic]).set(*done);
        }
        registry.register(Box::new(lag)).map_err(|_| ApiError::Internal)?;
        registry.register(Box::new(committed)).map_err(|_| ApiError::Internal)?;
        let mut out = Vec::new();
        TextEncoder::new().encode(&registry.gather(), &mut out).map_err(|_| ApiError::Internal)?;
        let mut text = String::from_utf8(out).map_err(|_| ApiError::Internal)?;
        let role = ("role", self.role);
        histogram(
            &mut text,
            "murmur_batch_messages",
            "Messages per batch read from the stage's topic",
            role,
            &[(None, self.stats.batch_messages.snapshot())],
        );
        if self.role == "worker" {
            histogram(
                &mut text,
                "murmur_enrich_batch_duration_seconds",
                "Time to enrich one batch (the models' share of the worker)",
                role,
                &[(None, self.stats.enrich_seconds.snapshot())],
            );
        }
        let writes: Vec<(Option<(&str, &str)>, HistogramSnapshot)> =
            self.stats.store_writes().into_iter().map(|(store, h)| (Some(("store", store)), h.snapshot())).collect();
        if !writes.is_empty() {
            histogram(
                &mut text,
                "murmur_store_write_duration_seconds",
                "Time for a store to write one batch, retries included",
                role,
                &writes,
            );
        }
        Ok(text)
    }
}

/// Appends one histogram family in the text format: for each series (the `role` label, then its own
/// label if any) cumulative `_bucket`s up to `+Inf`, `_sum` and `_count`.
fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    role: (&str, &str),
    series: &[(Option<(&str, &str)>, HistogramSnapshot)],
) {
    use std::fmt::Write;
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (label, snapshot) in series {
        let labels: Vec<String> = std::iter::once(role).chain(*label).map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let labels = labels.join(",");
        for (bound, n) in &snapshot.buckets {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", snapshot.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", snapshot.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", snapshot.count);
    }
}

/// Resident set size from `/proc/self/statm` (Linux; pages of 4 KiB).
fn resident_memory_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

async fn metrics(state: web::Data<AdminState>) -> Result<HttpResponse, ApiError> {
    let progress = match state.lag.clone() {
        Some(probe) => web::block(move || probe.progress()).await.map_err(|_| ApiError::Internal)?,
        None => Vec::new(),
    };
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.exposition(&progress)?))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AdminState>) -> Result<HttpResponse, ApiError> {
    if !state.ready.load(Ordering::Relaxed) {
        return Err(ApiError::NotReady(format!("the {} is starting", state.role)));
    }
    Ok(HttpResponse::Ok().json(json!({ "status": "ready", "role": state.role })))
}

async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound(
        "the admin port serves /metrics, /healthz and /readyz".into(),
    ))
}

/// Binds the admin port on `addr` (port 0 picks one) with one HTTP worker; the server is to be awaited.
pub fn bind_admin(state: AdminState, addr: SocketAddr) -> std::io::Result<(Server, SocketAddr)> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/metrics", web::get().to(metrics))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .default_service(web::to(not_found))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(addr)?;
    let bound = server.addrs().first().copied().unwrap_or(addr);
    Ok((server.run(), bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_each_quantity_once_with_the_role() {
        let state = AdminState::new("worker", Arc::new(PipelineStats::default()));
        PipelineStats::add(&state.stats.consumed, 7);
        PipelineStats::add(&state.stats.dead_lettered, 2);
        state.stats.batch_messages.observe(7.0);
        state.stats.enrich_seconds.observe(0.2);
        state.stats.store_write("tantivy").observe(0.004);
        let progress = [("murmur-worker".to_owned(), "comments".to_owned(), 7, 3)];
        let text = state.exposition(&progress).expect("metrics");
        assert!(text.contains(r#"murmur_consumed_messages_total{role="worker"} 7"#), "{text}");
        assert!(text.contains(r#"murmur_dead_lettered_messages_total{role="worker"} 2"#), "{text}");
        assert!(text.contains(r#"murmur_ready{role="worker"} 0"#), "{text}");
        assert!(
            text.contains(r#"murmur_consumer_lag_messages{group="murmur-worker",role="worker",topic="comments"} 3"#),
            "{text}"
        );
        assert!(text.contains(r#"murmur_batch_messages_bucket{role="worker",le="5"} 0"#), "{text}");
        assert!(text.contains(r#"murmur_batch_messages_bucket{role="worker",le="10"} 1"#), "{text}");
        assert!(text.contains(r#"murmur_batch_messages_bucket{role="worker",le="+Inf"} 1"#), "{text}");
        assert!(text.contains(r#"murmur_enrich_batch_duration_seconds_sum{role="worker"} 0.2"#), "{text}");
        assert!(
            text.contains(r#"murmur_store_write_duration_seconds_bucket{role="worker",store="tantivy",le="0.005"} 1"#),
            "{text}"
        );
        // Each family is declared once, with its type.
        for family in
            ["murmur_batch_messages", "murmur_enrich_batch_duration_seconds", "murmur_store_write_duration_seconds"]
        {
            assert_eq!(text.matches(&format!("# TYPE {family} histogram")).count(), 1, "{family}");
        }
        state.ready.store(true, Ordering::Relaxed);
        assert!(state.exposition(&[]).expect("metrics").contains(r#"murmur_ready{role="worker"} 1"#));
    }
}
