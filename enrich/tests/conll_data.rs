//! The CoNLL-2003 files `infra/fetch-assets.sh` unpacks, read and scored the way conlleval does.

use std::path::PathBuf;

use murmur_enrich::datasets::conll;
use murmur_enrich::metrics::entity_scores;

#[test]
fn conll_2003_has_its_published_sizes_and_scores_itself_perfectly() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/data/conll2003");
    assert!(dir.join("test.txt").exists(), "no CoNLL-2003 at {}: run infra/fetch-assets.sh", dir.display());
    let sizes: Vec<usize> =
        ["train", "valid", "test"].iter().map(|s| conll(&dir.join(format!("{s}.txt"))).expect("reads").len()).collect();
    assert_eq!(sizes, vec![14_041, 3_250, 3_453]);
    let test = conll(&dir.join("test.txt")).expect("reads");
    let gold: Vec<Vec<String>> = test.iter().map(|s| s.tags.clone()).collect();
    let scores = entity_scores(&gold, &gold);
    assert_eq!(scores[0].support, 5_648, "entities in CoNLL-2003 test");
    assert!(scores.iter().all(|s| s.f1 == 1.0));
    let types: Vec<&str> = scores[1..].iter().map(|s| s.class.as_str()).collect();
    assert_eq!(types, vec!["LOC", "MISC", "ORG", "PER"]);
}
