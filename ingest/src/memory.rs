//! The in-process queue of the embedded demo: one bounded channel per topic, so a slow stage slows its
//! producer instead of growing memory. Nothing survives the process; commits are no-ops.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::queue::{Consumer, Message, Producer, Record};
use crate::IngestError;

struct Topic {
    sender: mpsc::Sender<Message>,
    receiver: Mutex<Option<mpsc::Receiver<Message>>>,
    next_offset: AtomicI64,
}

/// A set of named in-process topics.
#[derive(Clone)]
pub struct MemoryQueue {
    topics: Arc<HashMap<String, Topic>>,
}

impl MemoryQueue {
    pub fn new(topics: &[&str], capacity: usize) -> Self {
        let topics = topics
            .iter()
            .map(|name| {
                let (sender, receiver) = mpsc::channel(capacity.max(1));
                let topic = Topic { sender, receiver: Mutex::new(Some(receiver)), next_offset: AtomicI64::new(0) };
                ((*name).to_owned(), topic)
            })
            .collect();
        Self { topics: Arc::new(topics) }
    }

    /// The single consumer of `topic`; a second call for the same topic fails.
    pub fn consumer(&self, topic: &str) -> Result<MemoryConsumer, IngestError> {
        let entry = self.topics.get(topic).ok_or_else(|| IngestError::UnknownTopic(topic.to_owned()))?;
        let receiver = entry
            .receiver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| IngestError::QueueClosed(topic.to_owned()))?;
        Ok(MemoryConsumer { receiver })
    }
}

#[async_trait]
impl Producer for MemoryQueue {
    async fn send_all(&self, records: &[Record]) -> Result<(), IngestError> {
        for record in records.iter().cloned() {
            let topic =
                self.topics.get(&record.topic).ok_or_else(|| IngestError::UnknownTopic(record.topic.clone()))?;
            let message = Message {
                topic: record.topic.clone(),
                partition: 0,
                offset: topic.next_offset.fetch_add(1, Ordering::Relaxed),
                key: record.key,
                payload: record.payload,
                headers: record.headers.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            };
            topic.sender.send(message).await.map_err(|_| IngestError::QueueClosed(record.topic))?;
        }
        Ok(())
    }
}

pub struct MemoryConsumer {
    receiver: mpsc::Receiver<Message>,
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn poll_batch(&mut self, max: usize, idle: Duration, linger: Duration) -> Result<Vec<Message>, IngestError> {
        let mut batch = Vec::new();
        match tokio::time::timeout(idle, self.receiver.recv()).await {
            Ok(Some(first)) => batch.push(first),
            Ok(None) | Err(_) => return Ok(batch),
        }
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                Ok(Some(message)) => batch.push(message),
                Ok(None) | Err(_) => break,
            }
        }
        Ok(batch)
    }

    async fn commit(&mut self, _processed: &[Message]) -> Result<(), IngestError> {
        Ok(())
    }
}
