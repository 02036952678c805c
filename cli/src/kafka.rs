//! The broker and the topics.

use anyhow::Context;
use clap::Args;
use murmur_ingest::kafka::{KafkaConfig, DEFAULT_BROKERS};
use murmur_ingest::Topics;

#[derive(Args, Clone)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "MURMUR_KAFKA_BROKERS", default_value = DEFAULT_BROKERS)]
    pub kafka_brokers: String,
    /// Extra librdkafka setting, `key=value`; repeatable (environment: comma-separated).
    #[arg(long = "kafka-option", env = "MURMUR_KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_key_value)]
    pub kafka_options: Vec<(String, String)>,
    #[command(flatten)]
    pub topics: TopicArgs,
}

impl KafkaArgs {
    pub fn config(&self) -> KafkaConfig {
        KafkaConfig { brokers: self.kafka_brokers.clone(), options: self.kafka_options.clone() }
    }

    /// Creates the pipeline's topics where they do not exist, or says how to get a broker.
    pub async fn ensure_topics(&self, partitions: i32) -> anyhow::Result<()> {
        self.config().ensure_pipeline_topics(&self.topics.topics(), partitions).await.with_context(|| {
            format!("creating topics on {} (is the broker up? see infra/kafka.sh)", self.kafka_brokers)
        })
    }
}

#[derive(Args, Clone)]
pub struct TopicArgs {
    /// Topic of incoming comments.
    #[arg(long, env = "MURMUR_TOPIC_COMMENTS", default_value_t = Topics::default().comments)]
    pub topic_comments: String,
    /// Topic of enriched comments.
    #[arg(long, env = "MURMUR_TOPIC_ENRICHED", default_value_t = Topics::default().enriched)]
    pub topic_enriched: String,
    /// Dead-letter topic: refused messages, unchanged, with the reason in the `murmur-reason` header.
    #[arg(long, env = "MURMUR_TOPIC_DLQ", default_value_t = Topics::default().dlq)]
    pub topic_dlq: String,
}

impl TopicArgs {
    pub fn topics(&self) -> Topics {
        Topics {
            comments: self.topic_comments.clone(),
            enriched: self.topic_enriched.clone(),
            dlq: self.topic_dlq.clone(),
        }
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}
