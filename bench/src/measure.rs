//! What the benchmarks share beyond the seeded generator (`murmur_core::hash::Rng`): percentiles, the Python
//! peers, lingua's test data.

use std::time::Duration;

/// The `p` quantile (0..=1) of sorted durations, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at].as_secs_f64() * 1e3
}

/// Runs a Python peer: `python <script> <texts.json> <args…>`, the script and the texts written to a scratch
/// folder; its answer is the last line it prints, one JSON object. `needs` says what the Python must have.
pub fn python_peer(
    python: &str,
    script: &str,
    texts: &[impl AsRef<str>],
    args: &[String],
    needs: &str,
) -> anyhow::Result<serde_json::Value> {
    use anyhow::Context;
    let scratch = tempfile::tempdir().context("creating a folder for the peer's input")?;
    let (script_path, texts_path) = (scratch.path().join("peer.py"), scratch.path().join("texts.json"));
    std::fs::write(&script_path, script)?;
    let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
    std::fs::write(&texts_path, serde_json::to_vec(&texts)?)?;
    let output = std::process::Command::new(python)
        .arg(&script_path)
        .arg(&texts_path)
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .output()
        .with_context(|| format!("running the Python peer with {python}"))?;
    anyhow::ensure!(
        output.status.success(),
        "the Python peer failed (it needs {needs}; see --python):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(output.stdout.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).unwrap_or_default())
        .context("reading the peer's answer")
}

/// The folder of the `lingua-<language>-language-model-<version>` crate (newest version) under `root`, cargo's
/// registry sources: its `testdata/` holds the test sentences the language benchmarks read.
pub fn lingua_crate_dir(root: &std::path::Path, language: &str) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let prefix = format!("lingua-{language}-language-model-");
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir(root)
        .with_context(|| format!("listing {} (--testdata)", root.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix)))
        .collect();
    found.sort();
    found.pop().with_context(|| format!("no {prefix}* in {} (run cargo fetch)", root.display()))
}
