//! Synchronous enrichment for `POST /v1/enrich`, and query embeddings for semantic search: one model thread
//! takes queued requests, merges what is waiting into one call per kind (the enricher then batches by token
//! budget), and answers each request with its share. The queue is bounded; a request that finds it full is
//! refused at once (429) instead of waiting without bound.

use murmur_core::{Enricher, Enrichment};
use tokio::sync::{mpsc, oneshot};

use crate::ApiError;

enum Reply {
    Enrich(oneshot::Sender<Result<Vec<Enrichment>, String>>),
    Embed(oneshot::Sender<Result<Vec<Vec<f32>>, String>>),
}

struct Job {
    texts: Vec<String>,
    reply: Reply,
}

#[derive(Clone)]
pub struct EnrichService {
    sender: mpsc::Sender<Job>,
    model: String,
    max_texts: usize,
}

impl EnrichService {
    /// Starts the model thread. `queue` is how many requests may wait; `max_texts` bounds one request and
    /// how many texts are merged into one model call.
    pub fn start(enricher: Box<dyn Enricher>, queue: usize, max_texts: usize) -> std::io::Result<Self> {
        let (sender, mut receiver) = mpsc::channel::<Job>(queue.max(1));
        let model = enricher.model_id().to_owned();
        std::thread::Builder::new().name("murmur-enrich-api".into()).spawn(move || {
            while let Some(first) = receiver.blocking_recv() {
                let mut jobs = vec![first];
                let mut queued = jobs[0].texts.len();
                while queued < max_texts {
                    match receiver.try_recv() {
                        Ok(job) => {
                            queued += job.texts.len();
                            jobs.push(job);
                        }
                        Err(_) => break,
                    }
                }
                let (enrich, embed): (Vec<Job>, Vec<Job>) =
                    jobs.into_iter().partition(|j| matches!(j.reply, Reply::Enrich(_)));
                answer(
                    enrich,
                    |texts| enricher.enrich(texts),
                    |job, share| {
                        if let Reply::Enrich(reply) = job.reply {
                            let _ = reply.send(share);
                        }
                    },
                );
                answer(
                    embed,
                    |texts| enricher.embed(texts),
                    |job, share| {
                        if let Reply::Embed(reply) = job.reply {
                            let _ = reply.send(share);
                        }
                    },
                );
            }
        })?;
        Ok(Self { sender, model, max_texts })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn max_texts(&self) -> usize {
        self.max_texts
    }

    pub async fn enrich(&self, texts: Vec<String>) -> Result<Vec<Enrichment>, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job { texts, reply: Reply::Enrich(reply) })?;
        answer.await.map_err(|_| ApiError::Internal)?.map_err(ApiError::ModelFailed)
    }

    /// The embedding of one text (a search query).
    pub async fn embed(&self, text: String) -> Result<Vec<f32>, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job { texts: vec![text], reply: Reply::Embed(reply) })?;
        let vectors = answer.await.map_err(|_| ApiError::Internal)?.map_err(ApiError::ModelFailed)?;
        vectors.into_iter().next().ok_or(ApiError::Internal)
    }

    fn submit(&self, job: Job) -> Result<(), ApiError> {
        self.sender.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ApiError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => ApiError::NotReady("the model thread stopped".into()),
        })
    }
}

/// Runs one model call over every job's texts and hands each job its share, or the error.
fn answer<T>(
    jobs: Vec<Job>,
    call: impl FnOnce(&[&str]) -> Result<Vec<T>, murmur_core::BoxError>,
    mut send: impl FnMut(Job, Result<Vec<T>, String>),
) {
    if jobs.is_empty() {
        return;
    }
    let texts: Vec<&str> = jobs.iter().flat_map(|j| j.texts.iter().map(String::as_str)).collect();
    let total = texts.len();
    match call(&texts).and_then(|results| murmur_core::one_per_text(total, results)) {
        Ok(results) => {
            let mut results = results.into_iter();
            for job in jobs {
                let share: Vec<T> = results.by_ref().take(job.texts.len()).collect();
                send(job, Ok(share));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "model call failed");
            let message = e.to_string();
            jobs.into_iter().for_each(|job| send(job, Err(message.clone())));
        }
    }
}
