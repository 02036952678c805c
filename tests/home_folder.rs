//! murmur started outside its checkout, as a newcomer might from their home folder: without `MURMUR_HOME` the
//! error says which variable finds the assets; with it, the same command finds the corpus, the encoder and
//! the task model and runs (`murmur demo` on five comments, into a database and index of its own).

mod common;

use std::process::{Command, Output};

/// `murmur demo --limit 5 --exit-after-load` run in an empty folder, with `home` as `MURMUR_HOME` if given.
fn demo_elsewhere(database_url: &str, home: Option<&std::path::Path>) -> Output {
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_murmur"));
    command
        .args(["demo", "--limit", "5", "--exit-after-load", "--listen", "127.0.0.1:0"])
        .current_dir(elsewhere.path())
        .env("MURMUR_DATABASE_URL", database_url)
        .env("MURMUR_INDEX_DIR", elsewhere.path().join("index"))
        .env_remove("MURMUR_HOME")
        .env_remove("MURMUR_DEMO_CORPUS")
        .env_remove("MURMUR_MODEL_DIR")
        .env_remove("MURMUR_TASK_MODEL");
    if let Some(home) = home {
        command.env("MURMUR_HOME", home);
    }
    command.output().expect("murmur runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_outside_the_checkout_murmur_names_murmur_home_and_runs_with_it() {
    let database_url = common::fresh_database("it_home_folder").await;

    let lost = demo_elsewhere(&database_url, None);
    let stderr = String::from_utf8_lossy(&lost.stderr);
    assert!(!lost.status.success(), "no assets in an empty folder: {stderr}");
    assert!(stderr.contains("MURMUR_HOME"), "the error names the variable that finds them: {stderr}");

    let found = demo_elsewhere(&database_url, Some(&common::repo_path("")));
    let stderr = String::from_utf8_lossy(&found.stderr);
    assert!(found.status.success(), "with MURMUR_HOME the demo runs: {stderr}");
    assert!(stderr.contains("demo data loaded: 5 comments"), "{stderr}");
}
