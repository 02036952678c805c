//! Scale-out on one machine, over loopback, with no new code: several `murmur worker` processes in one consumer
//! group and several Postgres-only `murmur sink` processes in another split the partitions between them, and
//! two index replicas are each built whole by a sink in a consumer group of its own (`MURMUR_SINK_STORES=index`,
//! as `infra/k8s/index.yaml` runs them). Every valid comment is stored once in Postgres and once in each
//! replica; the workers produce every enriched comment exactly once, and each process did a share.
//! The models are the stub enricher, as in `tests/faults.rs`: what scales here is the plumbing.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use common::brokers;
use common::pipeline::{stream, DeadLetters, Pipeline};
use rdkafka::consumer::Consumer;
use rdkafka::Message;

const COMMENTS: usize = 30_000;
const PARTITIONS: i32 = 6;
const WORKERS: usize = 3;
const POSTGRES_SINKS: usize = 2;
const REPLICAS: [&str; 2] = ["a", "b"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_and_sinks_in_groups_split_the_partitions_and_each_index_replica_gets_everything() {
    let database = common::fresh_database("scale_out").await;
    let mut pipeline = Pipeline::new("scale", brokers(), database, PARTITIONS).await;
    let workers: Vec<String> = (0..WORKERS).map(|_| pipeline.start("worker", None)).collect();
    let sinks: Vec<String> = (0..POSTGRES_SINKS).map(|_| pipeline.start_postgres_sink()).collect();
    let replicas: Vec<String> = REPLICAS.iter().map(|r| pipeline.start_index_replica(r)).collect();

    // The groups settle before the stream starts, so no batch is replayed by a rebalance (which is allowed,
    // at least once, but would hide a duplicate this test looks for).
    let (comments, enriched) = (pipeline.topics[0].clone(), pipeline.topics[1].clone());
    let all = |topic: &str| (0..PARTITIONS).map(|p| format!("{topic}/{p}")).collect::<BTreeSet<_>>();
    let worker_shares = wait_until_split(&mut pipeline, &workers, &all(&comments)).await;
    let sink_shares = wait_until_split(&mut pipeline, &sinks, &all(&enriched)).await;
    for replica in &replicas {
        wait_until_split(&mut pipeline, std::slice::from_ref(replica), &all(&enriched)).await;
    }
    eprintln!("workers hold {worker_shares:?}; Postgres sinks hold {sink_shares:?}");

    let (messages, malformed) = stream(COMMENTS);
    pipeline.produce_paced(messages, 10, Duration::from_millis(300)).await.expect("produced");
    let took = pipeline.assert_exactly_stored(COMMENTS, &malformed, DeadLetters::All).await;
    eprintln!("{COMMENTS} comments stored in Postgres and both replicas {took:?} after the last was produced");

    // Exactly once on the enriched topic: no worker produced a comment another had already produced.
    let (records, keys) = read_all(&pipeline, &enriched).await;
    assert_eq!((records, keys.len()), (COMMENTS, COMMENTS), "enriched records and distinct keys: one per comment");

    // Each process's own count, logged as it stops: shares that add up to the whole, none of them empty.
    let totals = |pipeline: &mut Pipeline, names: &[String], field: &str| -> Vec<u64> {
        names.iter().map(|name| totals_at_stop(pipeline, name, field)).collect()
    };
    let enriched_by = totals(&mut pipeline, &workers, "enriched");
    let stored_by = totals(&mut pipeline, &sinks, "stored");
    let replica_stored = totals(&mut pipeline, &replicas, "stored");
    eprintln!(
        "enriched per worker {enriched_by:?}; stored per Postgres sink {stored_by:?}; per replica {replica_stored:?}"
    );
    assert_eq!(enriched_by.iter().sum::<u64>(), COMMENTS as u64, "the workers enriched each comment once");
    assert!(enriched_by.iter().all(|&n| n > 0), "every worker took a share: {enriched_by:?}");
    assert_eq!(stored_by.iter().sum::<u64>(), COMMENTS as u64, "the Postgres sinks wrote each comment once");
    assert!(stored_by.iter().all(|&n| n > 0), "every Postgres sink took a share: {stored_by:?}");
    assert_eq!(replica_stored, vec![COMMENTS as u64; REPLICAS.len()], "each replica indexed each comment once");
}

/// Reads a topic from the start until it stays quiet for 3 s (joining the group takes longer: 30 s for the
/// first record): its records and their distinct keys.
async fn read_all(pipeline: &Pipeline, topic: &str) -> (usize, HashSet<Vec<u8>>) {
    let reader = common::consumer_of(&brokers(), &format!("{}-read-{topic}", pipeline.run));
    reader.subscribe(&[topic]).expect("subscribe");
    let (mut records, mut keys) = (0, HashSet::new());
    let quiet = |records| Duration::from_secs(if records == 0 { 30 } else { 3 });
    while let Ok(message) = tokio::time::timeout(quiet(records), reader.recv()).await {
        let message = message.expect("receive");
        records += 1;
        keys.insert(message.key().unwrap_or_default().to_vec());
    }
    (records, keys)
}

/// Waits until `members` (one consumer group) hold disjoint, non-empty sets of partitions that together are
/// `partitions`, each as its latest assignment; returns each member's set.
async fn wait_until_split(
    pipeline: &mut Pipeline,
    members: &[String],
    partitions: &BTreeSet<String>,
) -> Vec<BTreeSet<String>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        pipeline.procs.assert_running();
        let held: Vec<BTreeSet<String>> = members.iter().map(|m| latest_assignment(&pipeline.log(m))).collect();
        let union: BTreeSet<String> = held.iter().flatten().cloned().collect();
        let disjoint = held.iter().map(BTreeSet::len).sum::<usize>() == union.len();
        if disjoint && &union == partitions && held.iter().all(|h| !h.is_empty()) {
            return held;
        }
        assert!(Instant::now() < deadline, "{members:?} never split {partitions:?}: they hold {held:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The partitions a process's log says it holds: those of its latest rebalance, none after a revocation.
fn latest_assignment(log: &str) -> BTreeSet<String> {
    let latest = log.lines().rev().find(|l| l.contains("partitions assigned") || l.contains("partitions revoked"));
    match latest {
        Some(line) if line.contains("partitions assigned") => field(line, "partitions")
            .map(|list| list.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default(),
        _ => BTreeSet::new(),
    }
}

/// Stops a process with SIGTERM and reads one of the totals it logs as it stops.
fn totals_at_stop(pipeline: &mut Pipeline, name: &str, name_of_total: &str) -> u64 {
    let status = pipeline.procs.terminate(name, Duration::from_secs(30)).expect("stops within 30 s of SIGTERM");
    assert!(status.success(), "{name} exits 0 on SIGTERM, got {status}");
    let log = pipeline.log(name);
    let line = log.lines().rev().find(|l| l.contains("totals at stop")).unwrap_or_else(|| panic!("{name}: {log}"));
    field(line, name_of_total).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name_of_total} in {line}"))
}

/// The value of `name=value` in a plain-text log line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    line.split_whitespace().find_map(|token| token.strip_prefix(prefix.as_str()))
}
