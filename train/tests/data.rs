//! The labelled sets, read the way training and scoring read them: their published sizes, murmur's mention
//! rule on the tweet corpus, and splits that never share a row.

use std::path::PathBuf;

use murmur_train::data::{self, Corpus, DataPaths};
use murmur_train::metrics::entity_scores;

fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

#[test]
fn conll_2003_has_its_published_sizes_and_scores_itself_perfectly() {
    let dir = repo(".cache/data/conll2003");
    assert!(dir.join("test.txt").exists(), "no CoNLL-2003 at {}: run infra/fetch-assets.sh", dir.display());
    let set = data::conll2003(&dir, None).expect("reads");
    let sizes = [set.rows.train.len(), set.rows.valid.len(), set.rows.test.len()];
    assert_eq!(sizes, [14_041, 3_250, 3_453]);
    let gold: Vec<Vec<String>> = set.rows.test.iter().map(|s| s.tags.clone()).collect();
    let scores = entity_scores(&gold, &gold);
    assert_eq!(scores[0].support, 5_648, "entities in CoNLL-2003 test");
    assert!(scores.iter().all(|s| s.f1 == 1.0));
    let types: Vec<&str> = scores[1..].iter().map(|s| s.class.as_str()).collect();
    assert_eq!(types, vec!["LOC", "MISC", "ORG", "PER"]);
}

/// The shared labelled sets are not in the repository (see its README): where the checkout has no
/// `../shared/data` (or `MURMUR_SHARED_DATA`), this test says so and checks nothing else.
fn shared() -> Option<PathBuf> {
    let path = std::env::var_os("MURMUR_SHARED_DATA").map_or_else(|| repo("../shared/data"), PathBuf::from);
    if path.join("goemotions/train.tsv").exists() {
        Some(path)
    } else {
        eprintln!("no shared labelled data at {}: set MURMUR_SHARED_DATA to check it", path.display());
        None
    }
}

#[test]
fn the_shared_sets_read_with_their_sizes_and_disjoint_splits() {
    let Some(shared) = shared() else { return };
    let corpus = Corpus::load(&DataPaths { packages: repo(".cache/data"), shared }, None).expect("every set reads");
    let sizes = |name: &str| {
        let set = corpus.sentiment.iter().find(|s| s.name == name).expect("set is there");
        [set.rows.train.len(), set.rows.valid.len(), set.rows.test.len()]
    };
    // The UCI sentences: 2,950 rows, 60/20/20 within each source and label.
    let uci: usize = ["uci-amazon", "uci-yelp", "uci-imdb"].iter().map(|n| sizes(n).iter().sum::<usize>()).sum();
    assert_eq!(uci, 2_950);
    let amazon = sizes("uci-amazon");
    // A fifth of each label (two labels, rounded up): the test split is within a row per label of a fifth.
    let total = amazon.iter().sum::<usize>();
    assert!((amazon[2] * 5).abs_diff(total) <= 10, "amazon {amazon:?}");
    // GoEmotions: every comment has Ekman labels; the three-class sentiment leaves the ambiguous ones out.
    assert_eq!(
        [corpus.emotion.train.len(), corpus.emotion.valid.len(), corpus.emotion.test.len()],
        [43_187, 5_409, 5_406]
    );
    let go = sizes("goemotions");
    assert!(go[0] > 30_000 && go[0] < 43_187, "{go:?}");
    assert!(corpus.emotion.train.iter().all(|e| e.labels.iter().any(|&l| l)));
    // Broad Twitter Corpus: its tweet counts, and no mention left tagged as a name.
    let btc = corpus.ner.iter().find(|s| s.name == "broad_twitter_corpus").expect("BTC is there");
    assert_eq!([btc.rows.train.len(), btc.rows.valid.len(), btc.rows.test.len()], [6_310, 996, 1_989]);
    for sentence in btc.rows.train.iter().chain(&btc.rows.test) {
        for (word, tag) in sentence.words.iter().zip(&sentence.tags) {
            if word.len() > 1 && (word.starts_with('@') || word.starts_with('#')) {
                assert_eq!(tag, "O", "{word} is a mention, not a name: {sentence:?}");
            }
        }
    }
    // No test row is trained on, not even as a repeat under another row number.
    for set in &corpus.sentiment {
        let test: std::collections::HashSet<&str> = set.rows.test.iter().map(|e| e.text.as_str()).collect();
        let leaked = set.rows.train.iter().filter(|e| test.contains(e.text.as_str())).count();
        assert_eq!(leaked, 0, "{}: train rows repeat test rows", set.name);
    }
}
