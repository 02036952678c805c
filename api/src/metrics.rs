//! Prometheus metrics at `GET /metrics`: request latency per route, and on each scrape what the pipeline
//! has done (comments stored, documents and vectors indexed, per pipeline stage the messages its consumer
//! group committed — whose rate is the stage's throughput — and its lag). A scrape always answers: a source
//! it cannot read (Postgres down) is reported as down and its figures are left out, the rest stays.

use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::{ApiError, AppState};

/// Where each pipeline stage's consumer group stands, read when metrics are scraped (the stages are separate
/// processes; the broker knows how far each has come).
pub trait LagProbe: Send + Sync {
    /// `(group, topic, messages committed, messages not yet committed)` for each stage.
    fn progress(&self) -> Vec<(String, String, i64, i64)>;
}

/// Where stages stand, asked of the broker (one second at most per stage; a stage the broker does not answer
/// for is left out).
pub struct KafkaLag {
    kafka: murmur_ingest::kafka::KafkaConfig,
    /// (group, topic)
    stages: Vec<(String, String)>,
}

impl KafkaLag {
    pub fn new(kafka: murmur_ingest::kafka::KafkaConfig, stages: Vec<(String, String)>) -> Self {
        Self { kafka, stages }
    }
}

impl LagProbe for KafkaLag {
    fn progress(&self) -> Vec<(String, String, i64, i64)> {
        self.stages
            .iter()
            .filter_map(|(group, topic)| match self.kafka.progress(group, topic, Duration::from_secs(1)) {
                Ok(p) => Some((group.clone(), topic.clone(), p.committed, p.lag)),
                Err(e) => {
                    tracing::debug!(%group, %topic, error = %e, "consumer lag unavailable");
                    None
                }
            })
            .collect()
    }
}

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    latency: HistogramVec,
    /// Comments in Postgres, counted at scrape time; not registered: added to a scrape only when Postgres
    /// answered it (absent rather than stale, so a dashboard never shows the last count as current).
    stored: IntGauge,
    /// Documents in the search index.
    indexed: IntGauge,
    /// Embeddings stored beside the index, and those of them the HNSW graph holds.
    vectors: IntGauge,
    vectors_in_graph: IntGauge,
    /// Embeddings taken out of the graph (their comments gone), and whether the graph is loaded.
    vectors_removed: IntGauge,
    graph_ready: IntGauge,
    lag: IntGaugeVec,
    committed: IntGaugeVec,
    source_up: IntGaugeVec,
    /// Comments this server was asked to delete (`DELETE /v1/comments/…`).
    pub deletions_requested: IntCounter,
    /// Erasures this server was asked for (`POST /v1/erasure`).
    pub erasures_requested: IntCounter,
    /// Comments this server's eraser deleted.
    pub erased: IntCounter,
}

/// How long a scrape waits for Postgres before reporting it down (Prometheus allows a scrape 10 s).
const POSTGRES_SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let latency = HistogramVec::new(
            HistogramOpts::new("murmur_http_request_duration_seconds", "HTTP request latency by route")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["method", "route", "status"],
        )
        .expect("static metric definition");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("static metric definition");
        let stored = gauge("murmur_postgres_comments", "Comments stored in Postgres, counted at scrape time");
        let indexed = gauge("murmur_index_documents", "Comments in the search index");
        let vectors = gauge("murmur_index_vectors", "Embeddings stored beside the search index");
        let vectors_in_graph =
            gauge("murmur_index_vectors_in_graph", "Embeddings the HNSW graph holds (the rest are searched exactly)");
        let vectors_removed = gauge(
            "murmur_index_vectors_removed",
            "Embeddings taken out of the HNSW graph because their comments are gone",
        );
        let graph_ready =
            gauge("murmur_index_graph_ready", "1 once the HNSW graph is loaded; 0 while semantic search is exact");
        let lag = IntGaugeVec::new(
            Opts::new("murmur_consumer_lag_messages", "Messages a pipeline stage has not committed yet"),
            &["group", "topic"],
        )
        .expect("static metric definition");
        let committed = IntGaugeVec::new(
            Opts::new(
                "murmur_consumer_committed_messages",
                "Messages a pipeline stage has committed (its rate is the stage's throughput: the worker group's is \
                 the enrichment rate)",
            ),
            &["group", "topic"],
        )
        .expect("static metric definition");
        let source_up = IntGaugeVec::new(
            Opts::new(
                "murmur_scrape_source_up",
                "Whether the last scrape could read this source (1) or not (0: its figures are left out)",
            ),
            &["source"],
        )
        .expect("static metric definition");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("static metric definition");
        let deletions_requested =
            counter("murmur_deletion_requests_total", "Comments this server was asked to delete (DELETE /v1/comments)");
        let erasures_requested =
            counter("murmur_erasure_requests_total", "Authors this server was asked to erase (POST /v1/erasure)");
        let erased = counter("murmur_erased_comments_total", "Comments this server's eraser deleted");
        for collector in [
            Box::new(latency.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(deletions_requested.clone()),
            Box::new(erasures_requested.clone()),
            Box::new(erased.clone()),
            Box::new(indexed.clone()),
            Box::new(vectors.clone()),
            Box::new(vectors_in_graph.clone()),
            Box::new(vectors_removed.clone()),
            Box::new(graph_ready.clone()),
            Box::new(lag.clone()),
            Box::new(committed.clone()),
            Box::new(source_up.clone()),
        ] {
            registry.register(collector).expect("metric names are distinct");
        }
        Self {
            registry,
            latency,
            stored,
            indexed,
            vectors,
            vectors_in_graph,
            vectors_removed,
            graph_ready,
            lag,
            committed,
            source_up,
            deletions_requested,
            erasures_requested,
            erased,
        }
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.latency.with_label_values(&[method, route, &status.to_string()]).observe(seconds);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Times every request under its route pattern (`/v1/comments/{source}/{id}`, not the concrete path, so the
/// label set stays small); unmatched paths count as `unmatched`.
pub(crate) async fn track(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = request.app_data::<web::Data<AppState>>().map(|s| s.metrics.clone());
    let method = request.method().to_string();
    let route = request.match_pattern().unwrap_or_else(|| "unmatched".into());
    let response = next.call(request).await?;
    if let Some(metrics) = metrics {
        metrics.observe(&method, &route, response.status().as_u16(), started.elapsed().as_secs_f64());
    }
    Ok(response)
}

/// Prometheus metrics in the text exposition format: request latency per route, the pipeline's counts and
/// lag. Answers while Postgres is down (`murmur_source_up{source="postgres"} 0`, its figures left out).
#[utoipa::path(get, path = "/metrics", tag = "system", responses(
    (status = 200, description = "The exposition", body = String, content_type = "text/plain"),
    (status = 500, description = "The exposition could not be written", body = crate::error::ErrorBody),
))]
pub(crate) async fn scrape(state: web::Data<AppState>) -> Result<actix_web::HttpResponse, ApiError> {
    let m = &state.metrics;
    let stored = match tokio::time::timeout(POSTGRES_SCRAPE_TIMEOUT, state.postgres.stored_total()).await {
        Ok(Ok(stored)) => Some(stored),
        Ok(Err(error)) => {
            tracing::warn!(%error, "metrics: postgres unreadable, comments_stored left out");
            None
        }
        Err(_) => {
            tracing::warn!(timeout = ?POSTGRES_SCRAPE_TIMEOUT, "metrics: postgres did not answer, comments_stored left out");
            None
        }
    };
    m.source_up.with_label_values(&["postgres"]).set(i64::from(stored.is_some()));
    m.indexed.set(state.index.num_docs() as i64);
    let graph = state.index.graph_status();
    m.vectors.set(graph.stored as i64);
    m.vectors_in_graph.set(graph.in_graph as i64);
    m.vectors_removed.set(graph.removed as i64);
    m.graph_ready.set(i64::from(graph.ready));
    if let Some(probe) = state.lag.clone() {
        let stages = web::block(move || probe.progress()).await.map_err(|_| ApiError::Internal)?;
        for (group, topic, committed, lag) in stages {
            m.lag.with_label_values(&[&group, &topic]).set(lag);
            m.committed.with_label_values(&[&group, &topic]).set(committed);
        }
    }
    let mut families = m.registry.gather();
    if let Some(stored) = stored {
        m.stored.set(stored);
        families.extend(prometheus::core::Collector::collect(&m.stored));
    }
    let mut body = Vec::new();
    TextEncoder::new().encode(&families, &mut body).map_err(|_| ApiError::Internal)?;
    Ok(actix_web::HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body))
}
