//! The worker and the sink as tasks of one process, over any queue: the embedded demo runs them over the
//! in-process queue, the benchmarks over Kafka. (The `worker` and `sink` roles run one stage each.)

use std::sync::Arc;

use murmur_core::{CommentStore, DeletionLedger, ModelQueue};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::queue::{Consumer, Producer};
use crate::schema::Validator;
use crate::sink::{Sink, SinkConfig};
use crate::worker::{Worker, WorkerConfig};
use crate::{IngestError, PipelineStats};

/// What the two stages are made of.
pub struct Stages {
    pub validator: Validator,
    /// The model the worker enriches through (the demo's API shares it).
    pub model: ModelQueue,
    /// Where the worker sends enriched and refused comments.
    pub worker_out: Arc<dyn Producer>,
    pub worker: WorkerConfig,
    /// Where the sink writes, every comment to each.
    pub stores: Vec<Arc<dyn CommentStore>>,
    /// What the sink must not store again (Postgres).
    pub ledger: Arc<dyn DeletionLedger>,
    /// Where the sink sends comments no store accepts.
    pub sink_out: Arc<dyn Producer>,
    pub sink: SinkConfig,
}

/// The running stages; they stop when `shutdown` is cancelled.
pub struct Pipeline {
    /// The worker's counters (consumed, enriched, dead-lettered).
    pub worker_stats: Arc<PipelineStats>,
    /// The sink's counters (consumed, stored).
    pub sink_stats: Arc<PipelineStats>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<Result<(), IngestError>>>,
}

impl Pipeline {
    /// Starts the worker on `worker_input` (the comments topic) and the sink on `sink_input` (the enriched
    /// topic).
    pub fn start(
        stages: Stages,
        worker_input: impl Consumer + 'static,
        sink_input: impl Consumer + 'static,
        shutdown: CancellationToken,
    ) -> Self {
        let (worker_stats, sink_stats) = (Arc::new(PipelineStats::default()), Arc::new(PipelineStats::default()));
        let worker =
            Worker::new(stages.validator, stages.model, stages.worker_out, stages.worker, Arc::clone(&worker_stats));
        let sink = Sink::new(stages.stores, stages.ledger, stages.sink_out, stages.sink, Arc::clone(&sink_stats));
        let tasks = vec![
            tokio::spawn({
                let shutdown = shutdown.clone();
                async move { worker.run(worker_input, shutdown).await }
            }),
            tokio::spawn({
                let shutdown = shutdown.clone();
                async move { sink.run(sink_input, shutdown).await }
            }),
        ];
        Self { worker_stats, sink_stats, shutdown, tasks }
    }

    /// Comments the worker took from its topic.
    pub fn consumed(&self) -> u64 {
        PipelineStats::get(&self.worker_stats.consumed)
    }

    /// Comments the worker refused (sent to the DLQ).
    pub fn dead_lettered(&self) -> u64 {
        PipelineStats::get(&self.worker_stats.dead_lettered)
    }

    /// Comments the sink wrote to every store.
    pub fn stored(&self) -> u64 {
        PipelineStats::get(&self.sink_stats.stored)
    }

    /// Stops both stages (each finishes or abandons, uncommitted, its batch) and returns the first error
    /// either ended with.
    pub async fn stop(self) -> Result<(), IngestError> {
        self.shutdown.cancel();
        let mut first = Ok(());
        for task in self.tasks {
            let ended = task.await.unwrap_or_else(|e| Err(IngestError::Stage(e.to_string())));
            if first.is_ok() {
                first = ended;
            }
        }
        first
    }
}
