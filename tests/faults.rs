//! Delivery under faults, on real components: 100,000 comments per scenario go through a real broker,
//! `murmur worker` and `murmur sink` processes and a real PostgreSQL while the test breaks things on purpose:
//!
//! - `kill -9` of the worker and of the sink at random moments, five times each, then SIGTERM of each (a
//!   graceful stop must exit 0), every one restarted;
//! - the sink's PostgreSQL crashed (`pg_ctl stop -m immediate`) and started again mid-ingest;
//! - the broker restarted between two bursts of ingest (noida, which keeps its data, where the shared tansu
//!   cannot; 10,000 comments, as noida slows to a stall past about 19,000; see the scenario for why between);
//! - two workers in one group, one leaving and another joining mid-ingest;
//! - PostgreSQL frozen (SIGSTOP) while everything is produced: the sink's memory stays flat, its lag grows.
//!
//! Every scenario ends with exactly as many rows in Postgres and documents in the index as valid comments sent,
//! rollups equal to the raw counts, and in the DLQ the malformed messages mixed into the stream and nothing
//! valid. The models are replaced by the stub enricher (`MURMUR_STUB_ENRICHMENT`): these tests break the
//! plumbing, which is the same code with real models (`tests/pipeline_kafka.rs` and
//! `tests/malformed_corpus.rs` run it with them), and 100,000 comments through the real models would take an
//! hour on two cores.
//! `MURMUR_FAULT_COMMENTS` lowers the count for a quick local run.

mod common;

use std::time::{Duration, Instant};

use common::pipeline::{stream, wait_for_rows, DeadLetters, Pipeline};
use common::services::{PersistentBroker, PrivatePostgres};
use common::{brokers, rss_mib};
use murmur_core::hash::Rng;

const PARTITIONS: i32 = 4;
/// Comments in the broker-restart scenario (see there).
const NOIDA_COMMENTS: usize = 10_000;
/// Scenarios share two cores and some stop servers: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn comments_per_run() -> usize {
    std::env::var("MURMUR_FAULT_COMMENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000)
}

/// Seeded by the scenario's name, so its fault moments are the same from run to run.
fn seed(name: &str) -> Rng {
    Rng::new(murmur_core::hash::fnv1a(name.as_bytes()))
}

/// A moment between `low` and `high`.
fn between(rng: &mut Rng, low: Duration, high: Duration) -> Duration {
    low + (high - low).mul_f64(rng.unit())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_and_sinks_killed_at_random_moments_lose_and_double_nothing() {
    let _serial = SERIAL.lock().await;
    let n = comments_per_run();
    let database = common::fresh_database("fault_kills").await;
    let mut pipeline = Pipeline::new("kills", brokers(), database, PARTITIONS).await;
    let mut worker = pipeline.start("worker", Some("w0"));
    let mut sink = pipeline.start("sink", Some("s0"));
    let (messages, malformed) = stream(n);
    let producing = pipeline.produce_paced(messages, 40, Duration::from_millis(900));

    let mut rng = seed("kills");
    let mut faults = Vec::new();
    for round in 0..10 {
        tokio::time::sleep(between(&mut rng, Duration::from_millis(500), Duration::from_secs(4))).await;
        let (role, slot) = if round % 2 == 0 { (&mut worker, "w0") } else { (&mut sink, "s0") };
        pipeline.procs.stop(role); // SIGKILL
        faults.push(format!("kill -9 {role}"));
        *role = pipeline.start(role.split('.').next().unwrap_or("worker"), Some(slot));
    }
    for (role, slot) in [(&mut worker, "w0"), (&mut sink, "s0")] {
        tokio::time::sleep(between(&mut rng, Duration::from_millis(500), Duration::from_secs(3))).await;
        let status = pipeline.procs.terminate(role, Duration::from_secs(30)).expect("stops within 30 s of SIGTERM");
        assert!(status.success(), "{role} exits 0 on SIGTERM, got {status}");
        faults.push(format!("SIGTERM {role}: {status}"));
        *role = pipeline.start(role.split('.').next().unwrap_or("worker"), Some(slot));
    }
    producing.await.expect("produced");
    let took = pipeline.assert_exactly_stored(n, &malformed, DeadLetters::All).await;
    eprintln!("faults: {faults:?}; all {n} stored {took:?} after the last message was produced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crashing_mid_ingest_stalls_the_sink_without_committing_unstored_offsets() {
    let _serial = SERIAL.lock().await;
    let n = comments_per_run();
    let postgres = PrivatePostgres::start();
    let mut pipeline = Pipeline::new("pgcrash", brokers(), postgres.url(), PARTITIONS).await;
    pipeline.start("worker", None);
    let sink = pipeline.start("sink", None);
    let (messages, malformed) = stream(n);
    let probe = pipeline.probe("sink");
    let producing = pipeline.produce_paced(messages, 20, Duration::from_millis(500));

    // Wait until the sink has stored some, then crash Postgres under it.
    wait_for_rows(&pipeline.database_url, (n / 5) as i64).await;
    postgres.stop_immediately();
    tokio::time::sleep(Duration::from_secs(2)).await; // commits already in flight land
    let committed_at_crash = pipeline.committed(&probe, 1);
    // Down for longer than the store's pool waits for a connection (10 s): a write that found no query in
    // flight when Postgres went away would otherwise just wait and succeed, and never see the outage.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(pipeline.committed(&probe, 1), committed_at_crash, "no offset committed while Postgres is down");
    postgres.start_server();
    producing.await.expect("produced");
    pipeline.assert_exactly_stored(n, &malformed, DeadLetters::All).await;
    assert!(pipeline.log(&sink).contains("retrying"), "the sink backed off and retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_ingest_loses_and_doubles_nothing() {
    let _serial = SERIAL.lock().await;
    // noida rewrites its whole store on every change, so it slows as it fills: at about 19,000 comments (two
    // topics of them) it stalled here. A Kafka cluster has no such limit; this scenario runs on fewer.
    let n = comments_per_run().min(NOIDA_COMMENTS);
    let mut broker = PersistentBroker::start();
    let database = common::fresh_database("fault_broker").await;
    let mut pipeline = Pipeline::new("broker", broker.address(), database, PARTITIONS).await;
    pipeline.start("worker", None);
    pipeline.start("sink", None);
    let (messages, malformed) = stream(n);
    // The restart comes between two bursts, once the first is stored and the broker has had a moment to save:
    // restarted under load, noida lost records it had acknowledged (a DLQ record in one run here, 500 enriched
    // comments in another), which no client can make up for. What this shows is that the data, the groups'
    // committed offsets and the clients' connections all come through a restart, with nothing lost or doubled.
    let (first, second) = messages.split_at(messages.len() / 2);
    let first_valid = first.iter().filter(|(key, _)| key.is_some()).count();
    pipeline.produce_paced(first.to_vec(), 10, Duration::from_millis(200)).await.expect("produced");
    wait_for_rows(&pipeline.database_url, first_valid as i64).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| broker.restart(Duration::from_secs(3)));
    pipeline.produce_paced(second.to_vec(), 10, Duration::from_millis(200)).await.expect("produced");
    pipeline.assert_exactly_stored(n, &malformed, DeadLetters::NothingValid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_leaving_and_joining_a_group_mid_ingest_split_the_work_exactly() {
    let _serial = SERIAL.lock().await;
    let n = comments_per_run();
    let database = common::fresh_database("fault_rebalance").await;
    let mut pipeline = Pipeline::new("rebalance", brokers(), database, PARTITIONS).await;
    let first = pipeline.start("worker", None);
    let second = pipeline.start("worker", None);
    pipeline.start("sink", None);
    let (messages, malformed) = stream(n);
    let producing = pipeline.produce_paced(messages, 30, Duration::from_millis(700));

    wait_for_rows(&pipeline.database_url, (n / 4) as i64).await;
    let status = pipeline.procs.terminate(&first, Duration::from_secs(30)).expect("leaves on SIGTERM");
    assert!(status.success());
    wait_for_rows(&pipeline.database_url, (n / 2) as i64).await;
    let third = pipeline.start("worker", None);
    producing.await.expect("produced");
    pipeline.assert_exactly_stored(n, &malformed, DeadLetters::All).await;
    for worker in [&second, &third] {
        assert!(pipeline.log(worker).contains("enriched and committed"), "{worker} took a share of the partitions");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_postgres_grows_the_sinks_lag_not_its_memory() {
    let _serial = SERIAL.lock().await;
    let n = comments_per_run();
    let postgres = PrivatePostgres::start();
    let mut pipeline = Pipeline::new("frozen", brokers(), postgres.url(), PARTITIONS).await;
    pipeline.start("worker", None);
    let sink = pipeline.start("sink", None);
    let (messages, malformed) = stream(n);
    let (head, rest) = messages.split_at(n / 20);
    pipeline.produce_paced(head.to_vec(), 1, Duration::ZERO).await.expect("produced");
    wait_for_rows(&pipeline.database_url, (n / 40) as i64).await;

    postgres.pause();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sink_probe = pipeline.probe("sink");
    let worker_probe = pipeline.probe("worker");
    let (sink_pid, baseline) = (pipeline.procs.pid(&sink), rss_mib(pipeline.procs.pid(&sink)));
    let committed_at_pause = pipeline.committed(&sink_probe, 1);
    let producing = pipeline.produce_paced(rest.to_vec(), 10, Duration::from_millis(200));
    // Everything reaches the enriched topic while the sink cannot store: its lag grows to nearly everything.
    let mut peak = baseline;
    let deadline = Instant::now() + Duration::from_secs(600);
    while pipeline.committed(&worker_probe, 0) < messages.len() as i64 {
        assert!(Instant::now() < deadline, "the worker did not get through the stream");
        peak = peak.max(rss_mib(sink_pid));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    producing.await.expect("produced");
    for _ in 0..20 {
        peak = peak.max(rss_mib(sink_pid));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let lag = n as i64 - pipeline.committed(&sink_probe, 1);
    assert_eq!(pipeline.committed(&sink_probe, 1), committed_at_pause, "nothing committed while frozen");
    // The malformed messages went to the DLQ from the worker: the enriched topic holds only the valid ones.
    let rest_valid = rest.iter().filter(|(key, _)| key.is_some()).count();
    assert!(
        lag as usize >= rest_valid,
        "the sink's lag grew to {lag}, not to the {rest_valid} valid comments sent since"
    );
    eprintln!("sink RSS {baseline:.0} MiB at the freeze, peak {peak:.0} MiB with {lag} messages waiting");
    assert!(peak - baseline < 200.0, "sink memory grew {:.0} MiB while Postgres was frozen", peak - baseline);

    postgres.resume();
    pipeline.assert_exactly_stored(n, &malformed, DeadLetters::All).await;
}
