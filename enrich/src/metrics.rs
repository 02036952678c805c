//! Classification scores: accuracy, per-class precision/recall/F1, macro-F1 over the classes that occur in
//! the gold labels.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ClassScore {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, Serialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

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
