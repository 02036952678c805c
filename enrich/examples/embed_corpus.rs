//! Embeds the first N lines of a text file and prints sentences/s: a quick look at encoder speed.
//!   cargo run --release -p murmur-enrich --example embed_corpus -- MODEL_DIR FILE [N]
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (model, file) = (args.get(1).ok_or("model dir")?, args.get(2).ok_or("file")?);
    let n: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let raw = std::fs::read(file)?;
    let text = String::from_utf8_lossy(&raw);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(n).collect();
    let encoder = murmur_enrich::SentenceEncoder::load(model.as_ref(), Default::default())?;
    encoder.embed(&lines[..lines.len().min(32)])?;
    let started = Instant::now();
    let mut tokens = 0;
    for chunk in lines.chunks(256) {
        encoder.embed(chunk)?;
        tokens += chunk.len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} sentences in {secs:.2}s: {:.0} sentences/s (threads {})",
        tokens,
        tokens as f64 / secs,
        tch::get_num_threads()
    );
    Ok(())
}
