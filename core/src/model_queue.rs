//! The one way a model is served: a thread owns the [`Enricher`] and takes jobs from a bounded queue,
//! merging what is waiting into one call per kind (the enricher then batches by token budget) and answering
//! each job with its share. The worker waits for room ([`ModelQueue::enrich_waiting`]); the API refuses at
//! once when the queue is full ([`ModelQueue::enrich`], a 429), instead of letting requests wait without
//! bound. Each model call is a `model_call` span with its kind and number of texts.

use tokio::sync::{mpsc, oneshot};

use crate::{one_per_text, BoxError, Enricher, Enrichment, Explanation, QueryVectors};

/// Why a job got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ModelQueueError {
    #[error("the model queue is full")]
    Full,
    #[error("the model thread stopped")]
    Stopped,
    /// The model call failed for the whole merged call (the caller may retry texts alone).
    #[error("the model failed: {0}")]
    Model(String),
}

enum Reply {
    Enrich(oneshot::Sender<Result<Vec<Enrichment>, String>>),
    Embed(oneshot::Sender<Result<Vec<Vec<f32>>, String>>),
    /// Search queries' vectors (see [`Enricher::embed_queries`]), with the multilingual encoder's or without.
    Query {
        multilingual: bool,
        reply: oneshot::Sender<Result<Vec<QueryVectors>, String>>,
    },
    /// One text's explanation (one model call of its own: a reading per word).
    Explain(oneshot::Sender<Result<Explanation, String>>),
}

struct Job {
    texts: Vec<String>,
    reply: Reply,
}

/// A handle on the model thread; clones share it.
#[derive(Clone)]
pub struct ModelQueue {
    sender: mpsc::Sender<Job>,
    model: String,
    multilingual_model: Option<String>,
    max_texts: usize,
}

impl ModelQueue {
    /// Starts the model thread. `capacity` is how many jobs may wait; `max_texts` is how many waiting texts
    /// are merged into one call (a job larger than that is still one call).
    pub fn start(enricher: Box<dyn Enricher>, capacity: usize, max_texts: usize) -> std::io::Result<Self> {
        let (sender, mut receiver) = mpsc::channel::<Job>(capacity.max(1));
        let model = enricher.model_id().to_owned();
        let multilingual_model = enricher.multilingual_model().map(str::to_owned);
        std::thread::Builder::new().name("murmur-model".into()).spawn(move || {
            while let Some(first) = receiver.blocking_recv() {
                let mut queued = first.texts.len();
                let mut jobs = vec![first];
                while queued < max_texts {
                    match receiver.try_recv() {
                        Ok(job) => {
                            queued += job.texts.len();
                            jobs.push(job);
                        }
                        Err(_) => break,
                    }
                }
                let (explain, jobs): (Vec<Job>, Vec<Job>) =
                    jobs.into_iter().partition(|j| matches!(j.reply, Reply::Explain(_)));
                let (query, jobs): (Vec<Job>, Vec<Job>) =
                    jobs.into_iter().partition(|j| matches!(j.reply, Reply::Query { .. }));
                let (multilingual_query, query): (Vec<Job>, Vec<Job>) =
                    query.into_iter().partition(|j| matches!(j.reply, Reply::Query { multilingual: true, .. }));
                let (enrich, embed): (Vec<Job>, Vec<Job>) =
                    jobs.into_iter().partition(|j| matches!(j.reply, Reply::Enrich(_)));
                answer(
                    "enrich",
                    enrich,
                    |texts| enricher.enrich(texts),
                    |reply, share| {
                        if let Reply::Enrich(reply) = reply {
                            let _ = reply.send(share);
                        }
                    },
                );
                answer(
                    "embed",
                    embed,
                    |texts| enricher.embed(texts),
                    |reply, share| {
                        if let Reply::Embed(reply) = reply {
                            let _ = reply.send(share);
                        }
                    },
                );
                for (jobs, multilingual) in [(query, false), (multilingual_query, true)] {
                    answer(
                        "query",
                        jobs,
                        |texts| enricher.embed_queries(texts, multilingual),
                        |reply, share| {
                            if let Reply::Query { reply, .. } = reply {
                                let _ = reply.send(share);
                            }
                        },
                    );
                }
                for job in explain {
                    let span = tracing::debug_span!("model_call", kind = "explain", texts = 1, jobs = 1);
                    let _entered = span.enter();
                    let text = job.texts.first().map_or("", String::as_str);
                    let result = crate::explain::explain(enricher.as_ref(), text).map_err(|e| {
                        tracing::warn!(error = %e, kind = "explain", "model call failed");
                        e.to_string()
                    });
                    if let Reply::Explain(reply) = job.reply {
                        let _ = reply.send(result);
                    }
                }
            }
        })?;
        Ok(Self { sender, model, multilingual_model, max_texts })
    }

    /// The served model's identifier.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The multilingual encoder the served model runs beside its own, if any.
    pub fn multilingual_model(&self) -> Option<&str> {
        self.multilingual_model.as_deref()
    }

    /// Texts merged into one call at most (the API's limit per request).
    pub fn max_texts(&self) -> usize {
        self.max_texts
    }

    /// Enrichments of `texts`, one per text; [`ModelQueueError::Full`] at once when the queue is full.
    pub async fn enrich(&self, texts: Vec<String>) -> Result<Vec<Enrichment>, ModelQueueError> {
        let (reply, answer) = oneshot::channel();
        self.try_submit(Job { texts, reply: Reply::Enrich(reply) })?;
        answer.await.map_err(|_| ModelQueueError::Stopped)?.map_err(ModelQueueError::Model)
    }

    /// Enrichments of `texts`, waiting for room in the queue: back-pressure for the pipeline's worker.
    pub async fn enrich_waiting(&self, texts: Vec<String>) -> Result<Vec<Enrichment>, ModelQueueError> {
        let (reply, answer) = oneshot::channel();
        self.sender.send(Job { texts, reply: Reply::Enrich(reply) }).await.map_err(|_| ModelQueueError::Stopped)?;
        answer.await.map_err(|_| ModelQueueError::Stopped)?.map_err(ModelQueueError::Model)
    }

    /// The vectors of a search query (see [`Enricher::embed_queries`]; `multilingual`: also the multilingual
    /// encoder's, for an index that holds comments it embedded); [`ModelQueueError::Full`] at once when the queue
    /// is full.
    pub async fn embed_query(&self, text: String, multilingual: bool) -> Result<QueryVectors, ModelQueueError> {
        let (reply, answer) = oneshot::channel();
        self.try_submit(Job { texts: vec![text], reply: Reply::Query { multilingual, reply } })?;
        let vectors = answer.await.map_err(|_| ModelQueueError::Stopped)?.map_err(ModelQueueError::Model)?;
        vectors.into_iter().next().ok_or_else(|| ModelQueueError::Model("no vector for the query".into()))
    }

    /// The embeddings of `texts` (short ones: queries, names), one per text, as one job of the queue;
    /// [`ModelQueueError::Full`] at once when the queue is full.
    pub async fn embed_all(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ModelQueueError> {
        let n = texts.len();
        let (reply, answer) = oneshot::channel();
        self.try_submit(Job { texts, reply: Reply::Embed(reply) })?;
        let vectors = answer.await.map_err(|_| ModelQueueError::Stopped)?.map_err(ModelQueueError::Model)?;
        if vectors.len() != n {
            return Err(ModelQueueError::Model(format!("{} embeddings for {n} texts", vectors.len())));
        }
        Ok(vectors)
    }

    /// Why the model reads `text` as it does (see [`crate::explain`]); [`ModelQueueError::Full`] at once when
    /// the queue is full.
    pub async fn explain(&self, text: String) -> Result<Explanation, ModelQueueError> {
        let (reply, answer) = oneshot::channel();
        self.try_submit(Job { texts: vec![text], reply: Reply::Explain(reply) })?;
        answer.await.map_err(|_| ModelQueueError::Stopped)?.map_err(ModelQueueError::Model)
    }

    fn try_submit(&self, job: Job) -> Result<(), ModelQueueError> {
        self.sender.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ModelQueueError::Full,
            mpsc::error::TrySendError::Closed(_) => ModelQueueError::Stopped,
        })
    }
}

/// Runs one model call over every job's texts and hands each job its share, or the error.
fn answer<T>(
    kind: &'static str,
    jobs: Vec<Job>,
    call: impl FnOnce(&[&str]) -> Result<Vec<T>, BoxError>,
    mut send: impl FnMut(Reply, Result<Vec<T>, String>),
) {
    if jobs.is_empty() {
        return;
    }
    let texts: Vec<&str> = jobs.iter().flat_map(|j| j.texts.iter().map(String::as_str)).collect();
    let total = texts.len();
    let span = tracing::debug_span!("model_call", kind, texts = total, jobs = jobs.len());
    let _entered = span.enter();
    match call(&texts).and_then(|results| one_per_text(total, results)) {
        Ok(results) => {
            let mut results = results.into_iter();
            for job in jobs {
                let share: Vec<T> = results.by_ref().take(job.texts.len()).collect();
                send(job.reply, Ok(share));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, kind, texts = total, "model call failed");
            let message = e.to_string();
            jobs.into_iter().for_each(|job| send(job.reply, Err(message.clone())));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Records each call's texts; fails any call containing "poison".
    struct Recorder(Arc<Mutex<Vec<usize>>>);

    impl Enricher for Recorder {
        fn model_id(&self) -> &str {
            "recorder"
        }

        fn enrich(&self, texts: &[&str]) -> Result<Vec<Enrichment>, BoxError> {
            self.0.lock().map_err(|_| "poisoned")?.push(texts.len());
            if texts.contains(&"poison") {
                return Err("poisonous text".into());
            }
            Ok(texts.iter().map(|t| Enrichment::embedding_only("recorder", vec![t.len() as f32])).collect())
        }
    }

    #[tokio::test]
    async fn each_job_gets_its_share_and_a_failed_call_fails_only_its_jobs() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let queue = ModelQueue::start(Box::new(Recorder(Arc::clone(&calls))), 4, 64).expect("thread");
        assert_eq!(queue.model(), "recorder");
        let (a, b) = tokio::join!(
            queue.enrich(vec!["one".into(), "three".into()]),
            queue.enrich_waiting(vec!["fifteen letters".into()])
        );
        let lengths = |r: Vec<Enrichment>| r.into_iter().map(|e| e.embedding[0]).collect::<Vec<_>>();
        assert_eq!(lengths(a.expect("a")), [3.0, 5.0]);
        assert_eq!(lengths(b.expect("b")), [15.0]);
        let query = queue.embed_query("four".into(), true).await.expect("query");
        assert_eq!(query, QueryVectors { encoder: vec![4.0], multilingual: None });
        assert_eq!(queue.multilingual_model(), None, "a model runs no multilingual encoder unless it says so");
        // Two words: the whole text and 2 × (2 + 16) readings with words left out, in one call.
        let explained = queue.explain("two words".into()).await.expect("explain");
        assert!(explained.sentiment.is_none(), "a model without sentiment explains none");
        let failed = queue.enrich(vec!["poison".into()]).await;
        assert!(matches!(failed, Err(ModelQueueError::Model(ref m)) if m.contains("poisonous")), "{failed:?}");
        assert!(queue.enrich(vec!["fine".into()]).await.is_ok(), "the thread lives on after a failed call");
        assert_eq!(calls.lock().expect("calls").iter().sum::<usize>(), 2 + 1 + 1 + 37 + 1 + 1);
    }
}
