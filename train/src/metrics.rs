//! Scores: accuracy, per-class precision/recall/F1 and macro-F1 over the classes that occur in the gold
//! labels; expected calibration error; multi-label F1 (emotions); entity-level scores for tagging
//! (conlleval's chunk rules, [`murmur_enrich::ner::chunks`]).

use murmur_enrich::ner::chunks;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassScore {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scores {
    pub n: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassScore>,
}

pub fn score(gold: &[usize], predicted: &[usize], classes: &[&str]) -> Scores {
    debug_assert_eq!(gold.len(), predicted.len());
    let correct = gold.iter().zip(predicted).filter(|(g, p)| g == p).count();
    let mut per_class = Vec::new();
    for (c, name) in classes.iter().enumerate() {
        let support = gold.iter().filter(|&&g| g == c).count();
        if support == 0 {
            continue;
        }
        let tp = gold.iter().zip(predicted).filter(|(&g, &p)| g == c && p == c).count() as f64;
        let predicted_c = predicted.iter().filter(|&&p| p == c).count() as f64;
        let precision = if predicted_c > 0.0 { tp / predicted_c } else { 0.0 };
        let recall = tp / support as f64;
        let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        per_class.push(ClassScore { class: (*name).to_owned(), precision, recall, f1, support });
    }
    let macro_f1 = per_class.iter().map(|c| c.f1).sum::<f64>() / per_class.len().max(1) as f64;
    Scores { n: gold.len(), accuracy: correct as f64 / gold.len().max(1) as f64, macro_f1, per_class }
}

/// Expected calibration error: predictions binned by their confidence (the probability of the predicted
/// class) into `bins` equal-width bins, the gap between mean confidence and accuracy in each, weighted by
/// the bin's share of predictions.
pub fn expected_calibration_error(confidence: &[f64], correct: &[bool], bins: usize) -> f64 {
    debug_assert_eq!(confidence.len(), correct.len());
    let mut sums = vec![(0.0, 0.0, 0usize); bins];
    for (&c, &ok) in confidence.iter().zip(correct) {
        let bin = ((c * bins as f64) as usize).min(bins - 1);
        sums[bin].0 += c;
        sums[bin].1 += if ok { 1.0 } else { 0.0 };
        sums[bin].2 += 1;
    }
    let n = confidence.len().max(1) as f64;
    // Per bin |mean confidence − accuracy| × k/n, which is |Σ confidence − Σ correct| / n.
    sums.iter().filter(|b| b.2 > 0).map(|&(c, a, _)| (c - a).abs() / n).sum()
}

/// Per-class and macro F1 of multi-label predictions (each row a set of classes).
pub fn multilabel_scores(gold: &[Vec<bool>], predicted: &[Vec<bool>], classes: &[&str]) -> Scores {
    let mut per_class = Vec::new();
    for (c, name) in classes.iter().enumerate() {
        let support = gold.iter().filter(|g| g[c]).count();
        if support == 0 {
            continue;
        }
        let tp = gold.iter().zip(predicted).filter(|(g, p)| g[c] && p[c]).count() as f64;
        let predicted_c = predicted.iter().filter(|p| p[c]).count() as f64;
        let precision = if predicted_c > 0.0 { tp / predicted_c } else { 0.0 };
        let recall = tp / support as f64;
        let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        per_class.push(ClassScore { class: (*name).to_owned(), precision, recall, f1, support });
    }
    let exact = gold.iter().zip(predicted).filter(|(g, p)| g == p).count();
    let macro_f1 = per_class.iter().map(|c| c.f1).sum::<f64>() / per_class.len().max(1) as f64;
    Scores { n: gold.len(), accuracy: exact as f64 / gold.len().max(1) as f64, macro_f1, per_class }
}

/// Entity-level precision, recall and F1 over sentences (exact type and boundaries), overall and per type,
/// as conlleval and seqeval's default mode count them.
pub fn entity_scores(gold: &[Vec<String>], predicted: &[Vec<String>]) -> Vec<ClassScore> {
    use std::collections::BTreeMap;
    let mut counts: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new(); // (correct, predicted, gold)
    for (g, p) in gold.iter().zip(predicted) {
        let gold_chunks = chunks(g);
        let predicted_chunks = chunks(p);
        for c in &gold_chunks {
            counts.entry(c.kind.clone()).or_default().2 += 1;
        }
        for c in &predicted_chunks {
            let entry = counts.entry(c.kind.clone()).or_default();
            entry.1 += 1;
            if gold_chunks.contains(c) {
                entry.0 += 1;
            }
        }
    }
    let score = |class: String, (correct, predicted, gold): (usize, usize, usize)| {
        let precision = if predicted > 0 { correct as f64 / predicted as f64 } else { 0.0 };
        let recall = if gold > 0 { correct as f64 / gold as f64 } else { 0.0 };
        let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        ClassScore { class, precision, recall, f1, support: gold }
    };
    let total = counts.values().fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
    let mut out = vec![score("overall".into(), total)];
    out.extend(counts.into_iter().map(|(kind, c)| score(kind, c)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn entity_scores_count_exact_matches_only() {
        let gold = vec![tags("B-PER I-PER O B-ORG"), tags("B-LOC O")];
        // PER boundary wrong, ORG right, LOC typed as MISC.
        let predicted = vec![tags("B-PER O O B-ORG"), tags("B-MISC O")];
        let scores = entity_scores(&gold, &predicted);
        let overall = &scores[0];
        assert_eq!(overall.class, "overall");
        assert!((overall.precision - 1.0 / 3.0).abs() < 1e-9 && (overall.recall - 1.0 / 3.0).abs() < 1e-9);
        let org = scores.iter().find(|s| s.class == "ORG").expect("ORG row");
        assert_eq!((org.f1, org.support), (1.0, 1));
        let misc = scores.iter().find(|s| s.class == "MISC").expect("MISC row");
        assert_eq!((misc.precision, misc.support), (0.0, 0));
    }

    #[test]
    fn calibration_error_is_the_weighted_gap() {
        // Two bins: 0.9 confident and right 1 of 2 times (gap 0.4), 0.6 confident and right (gap 0.4).
        let ece = expected_calibration_error(&[0.9, 0.9, 0.6], &[true, false, true], 10);
        assert!((ece - (2.0 / 3.0 * 0.4 + 1.0 / 3.0 * 0.4)).abs() < 1e-9, "{ece}");
        assert!(expected_calibration_error(&[1.0, 1.0], &[true, true], 15) < 1e-12);
    }

    #[test]
    fn multilabel_f1_per_class() {
        let gold = vec![vec![true, false], vec![true, true]];
        let predicted = vec![vec![true, true], vec![false, true]];
        let s = multilabel_scores(&gold, &predicted, &["a", "b"]);
        assert!((s.per_class[0].f1 - 2.0 / 3.0).abs() < 1e-9 && (s.per_class[1].f1 - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.accuracy, 0.0);
    }

    #[test]
    fn known_values() {
        // gold: 0 0 1 1 2 ; predicted: 0 1 1 1 0
        let s = score(&[0, 0, 1, 1, 2], &[0, 1, 1, 1, 0], &["neg", "neu", "pos"]);
        assert!((s.accuracy - 0.6).abs() < 1e-9);
        let f1: Vec<f64> = s.per_class.iter().map(|c| c.f1).collect();
        // neg: p 1/2 r 1/2 → 0.5; neu: p 2/3 r 1 → 0.8; pos: 0
        assert!((f1[0] - 0.5).abs() < 1e-9 && (f1[1] - 0.8).abs() < 1e-9 && f1[2] == 0.0);
        assert!((s.macro_f1 - 1.3 / 3.0).abs() < 1e-9);
        // Classes absent from gold do not count in the macro average.
        let binary = score(&[0, 2], &[0, 1], &["neg", "neu", "pos"]);
        assert_eq!(binary.per_class.len(), 2);
    }
}
