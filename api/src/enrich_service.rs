//! Synchronous enrichment for `POST /v1/enrich`: one model thread takes queued requests, merges what is
//! waiting into one call (the enricher then batches by token budget), and answers each request with its
//! share. The queue is bounded; a request that finds it full is refused at once (429) instead of waiting
//! without bound.

use murmur_core::{Enricher, Enrichment};
use tokio::sync::{mpsc, oneshot};

use crate::ApiError;

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Enrichment>, String>>,
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
                let texts: Vec<&str> = jobs.iter().flat_map(|j| j.texts.iter().map(String::as_str)).collect();
                match enricher.enrich(&texts) {
                    Ok(results) if results.len() == texts.len() => {
                        let mut results = results.into_iter();
                        for job in jobs {
                            let share: Vec<Enrichment> = results.by_ref().take(job.texts.len()).collect();
                            let _ = job.reply.send(Ok(share));
                        }
                    }
                    Ok(_) => {
                        jobs.into_iter().for_each(|j| drop(j.reply.send(Err("model returned a wrong count".into()))))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "enrichment failed");
                        jobs.into_iter().for_each(|j| drop(j.reply.send(Err(e.to_string()))));
                    }
                }
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
        self.sender.try_send(Job { texts, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ApiError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => ApiError::NotReady("the model thread stopped".into()),
        })?;
        answer.await.map_err(|_| ApiError::Internal)?.map_err(ApiError::ModelFailed)
    }
}
