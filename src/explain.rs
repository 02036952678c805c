//! `murmur explain`: the models' reading of texts, word by word, in a terminal (colours where it is one) or
//! as JSON Lines.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use murmur_core::explain::explain;
use murmur_core::{Explanation, LabelExplanation};

use crate::cli::ExplainArgs;

pub fn run(args: ExplainArgs) -> anyhow::Result<()> {
    let texts = if args.texts == ["-"] {
        std::io::stdin().lock().lines().collect::<Result<Vec<_>, _>>().context("reading texts from standard input")?
    } else {
        args.texts
    };
    let model = args.model.load()?;
    let colour = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    for text in texts.iter().filter(|t| !t.trim().is_empty()) {
        let explanation = explain(&model, text).map_err(|e| anyhow::anyhow!("explaining {text:?}: {e}"))?;
        if args.json {
            let line = serde_json::json!({ "text": text, "explanation": explanation });
            writeln!(out, "{line}")?;
        } else {
            write!(out, "{}", render(text, &explanation, args.top, colour))?;
        }
    }
    Ok(())
}

/// One text's explanation as a terminal reads it: per label, the text with its supporting words marked
/// (reversed when strong, underlined when weaker, in a terminal; `[brackets]` elsewhere), then the strongest words with their weights.
fn render(text: &str, explanation: &Explanation, top: usize, colour: bool) -> String {
    let mut out = format!("{text}\n");
    let labels = [("sentiment", &explanation.sentiment), ("emotion", &explanation.emotion)];
    for (task, label) in labels.into_iter().filter_map(|(task, l)| l.as_ref().map(|l| (task, l))) {
        out.push_str(&format!(
            "  {task}: {} (p = {:.2})\n    {}\n",
            label.label,
            label.probability,
            marked(text, label, colour)
        ));
        for word in label.top(top) {
            let bar = "█".repeat((word.strength * 20.0).round().max(1.0) as usize);
            out.push_str(&format!("    {:+6.2} {bar:<20} {}\n", word.weight, word.text));
        }
    }
    if explanation.truncated {
        out.push_str("  (only the first 200 words were weighed)\n");
    }
    out.push_str(&format!(
        "  weight: how much the label's probability rises with the word, whatever other words are there ({})\n\n",
        explanation.method
    ));
    out
}

/// `text` with the words that support `label` most marked (strength ≥ 0.25).
fn marked(text: &str, label: &LabelExplanation, colour: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut at = 0;
    for word in label.words.iter().filter(|w| w.strength >= 0.25) {
        out.extend(&chars[at..word.start]);
        let written: String = chars[word.start..word.end].iter().collect();
        match colour {
            true => out.push_str(&format!("\x1b[{}m{written}\x1b[0m", if word.strength >= 0.5 { "1;7" } else { "4" })),
            false => out.push_str(&format!("[{written}]")),
        }
        at = word.end;
    }
    out.extend(&chars[at..]);
    out
}
