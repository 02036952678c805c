//! The API never waits for its vector graph: an index of 60,000 comments written by a writer (which keeps
//! no graph, like the sink) is opened by the API's reader, which builds the graph behind; meanwhile semantic
//! queries (embedded by the real encoder, over real HTTP) are answered exactly and say so, in each answer and
//! in `/readyz`; once the graph is ready they come from it, with the same hits.

use chrono::{TimeDelta, Utc};
use murmur_api::{ApiKeys, AppState};
use murmur_core::hash::Rng;
use murmur_core::testing::Fixture;
use murmur_core::{EnrichedComment, ModelQueue};
use murmur_search::{Access, HnswParams, IndexOptions, SearchIndex};
use serde_json::Value;

mod common;

use common::in_process::{model_stack, InProcessApi};

const COMMENTS: usize = 60_000;
const DIM: usize = 384;

/// Unit vectors around 600 centres (comments about the same things sit together, as real ones do).
fn clustered(n: usize) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(3);
    let unit = |mut v: Vec<f32>| {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    };
    let centres: Vec<Vec<f32>> = (0..600).map(|_| unit((0..DIM).map(|_| rng.normal()).collect())).collect();
    (0..n).map(|i| unit(centres[i % centres.len()].iter().map(|c| c + 0.04 * rng.normal()).collect())).collect()
}

fn hit_ids(body: &Value) -> Vec<String> {
    body["hits"].as_array().expect("hits").iter().map(|h| h["id"].as_str().expect("id").to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semantic_search_answers_exactly_while_the_graph_builds_then_from_the_graph() {
    let stack = model_stack();
    let model = murmur_core::Enricher::model_id(&stack).to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let writer = SearchIndex::open(dir.path(), Access::Write, IndexOptions::default()).expect("writer");
        let now = Utc::now();
        let comments: Vec<EnrichedComment> = clustered(COMMENTS)
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                Fixture::new("reviews", format!("c{i}"), format!("comment {i}"), now - TimeDelta::seconds(i as i64))
                    .model(&model)
                    .embedding(v)
                    .build()
            })
            .collect();
        for batch in comments.chunks(20_000) {
            writer.add(batch).expect("add");
        }
        writer.commit().expect("commit");
    }

    // A graph at this size (the default waits for 120,000 vectors), built quickly.
    let hnsw = HnswParams { exact_below: 10_000, max_connections: 16, ef_construction: 128, ..HnswParams::default() };
    let options = IndexOptions { hnsw, ..IndexOptions::default() };
    let index = SearchIndex::open(dir.path(), Access::Read, options).expect("reader");
    let postgres = murmur_store::testing::fresh_database("graph_loading").await.expect("database");
    let queue = ModelQueue::start(Box::new(stack), 64, 64).expect("model queue");
    let api = InProcessApi::start(AppState::new(postgres, index.clone(), Some(queue), ApiKeys::default()));
    let search = "/v1/search?mode=semantic&q=my+battery+dies+by+noon&limit=10";

    let (status, ready) = api.get("/readyz".into()).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["vectors"]["graph"], "loading", "the graph of 60,000 vectors takes a while: {ready}");
    let (status, exact) = api.get(search.into()).await;
    assert_eq!(status, 200, "answered before the graph is ready: {exact}");
    assert_eq!(exact["ann"], "exact", "{exact}");
    assert_eq!(hit_ids(&exact).len(), 10);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let (_, ready) = api.get("/readyz".into()).await;
        if ready["vectors"]["graph"] == "ready" {
            assert_eq!(ready["vectors"]["in_graph"], COMMENTS, "{ready}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the graph never became ready: {ready}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (status, graph) = api.get(search.into()).await;
    assert_eq!(status, 200, "{graph}");
    assert_eq!(graph["ann"], "graph", "{graph}");
    let exact_ids = hit_ids(&exact);
    let same = hit_ids(&graph).iter().filter(|id| exact_ids.contains(id)).count();
    assert!(same >= 9, "the graph finds what exact search found: {same} of 10");
}
