//! What the in-process end-to-end tests share: the committed model stack on the real encoder, and the API
//! served in the test's own process over real Postgres and index, read over real HTTP.

use murmur_api::AppState;
use murmur_enrich::{EncoderOptions, Heads, ModelStack, SentenceEncoder, TaskModel};
use serde_json::Value;

use super::repo_path;

/// The real encoder and the committed task model with every head.
pub fn model_stack() -> ModelStack {
    let encoder = SentenceEncoder::load(&repo_path(".cache/models/all-MiniLM-L6-v2"), EncoderOptions::default())
        .expect("encoder (run infra/fetch-assets.sh)");
    let model = TaskModel::load(&repo_path("models/enrichment"), encoder.device()).expect("task model");
    ModelStack::new(encoder, Some((model, Heads::ALL))).expect("fits")
}

/// The API on an ephemeral port of this process.
pub struct InProcessApi {
    base: String,
    client: reqwest::Client,
}

impl InProcessApi {
    pub fn start(state: AppState) -> Self {
        let (server, addr) = murmur_api::bind(state, "127.0.0.1:0".parse().expect("addr"), 2).expect("bind");
        tokio::spawn(server);
        Self { base: format!("http://{addr}"), client: reqwest::Client::new() }
    }

    /// `GET path`: the status and the JSON body (a body that is not JSON fails the test, quoting it).
    pub async fn get(&self, path: String) -> (u16, Value) {
        let response = self.client.get(format!("{}{path}", self.base)).send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str::<Value>(&text).unwrap_or_else(|_| panic!("{path}: {status} {text:?}")))
    }
}
