use chrono::{TimeZone, Utc};
use murmur_core::testing::Fixture;
use murmur_core::{EnrichedComment, Entity, EntityLabel};
use murmur_search::{
    Access, AnnMethod, EntityFilter, Filters, HitEntity, HnswParams, IndexOptions, SearchError, SearchIndex,
    SearchMode, SearchQuery,
};

/// A unit vector pointing mostly along axis `axis` of 4 (so comments on one axis are each other's neighbours).
fn toward(axis: usize, wobble: f32) -> Vec<f32> {
    let mut v = vec![wobble; 4];
    v[axis] = 1.0;
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn open(dir: &std::path::Path, access: Access) -> SearchIndex {
    SearchIndex::open(dir, access, IndexOptions::default()).expect("open")
}

fn comment(source: &str, id: &str, text: &str, day: u32) -> EnrichedComment {
    let at = Utc.with_ymd_and_hms(2026, 5, day, 0, 0, 0).single().expect("date");
    Fixture::new(source, id, text, at).tags(["pixel"]).model("m").embedding(toward(0, 0.1)).without_entities().build()
}

fn mentioning(mut c: EnrichedComment, entities: &[(EntityLabel, &str)]) -> EnrichedComment {
    let list = entities
        .iter()
        .map(|&(label, text)| Entity { label, text: text.into(), start: 0, end: text.chars().count(), score: 0.9 })
        .collect();
    c.enrichment.entities = Some(list);
    c
}

fn query(q: &str) -> SearchQuery {
    SearchQuery { q: q.into(), limit: 10, ..Default::default() }
}

fn entity(filter: &str) -> Filters {
    Filters { entity: EntityFilter::parse(filter), ..Filters::default() }
}

fn ids(results: &murmur_search::SearchResults) -> Vec<&str> {
    results.hits.iter().map(|h| h.id.as_str()).collect()
}

#[test]
fn bm25_with_filters_and_idempotent_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path(), Access::ReadWrite);
    let batch = vec![
        comment("twitter", "1", "The battery dies before lunch", 1),
        comment("twitter", "2", "Battery battery battery: best battery ever", 2),
        comment("reddit", "3", "Customer service never answered", 3),
        comment("reddit", "4", "My battery is fine, café ☕", 4),
    ];
    index.write_batch(&batch).expect("write");
    index.write_batch(&batch).expect("replay");
    assert_eq!(index.num_docs(), 4, "replay duplicated documents");

    let all = index.search(&query("battery")).expect("search");
    assert_eq!(all.total, 3);
    assert_eq!(all.hits[0].id, "2", "highest term frequency ranks first");
    assert_eq!(all.hits[0].tags, vec!["pixel"]);
    assert_eq!(all.hits[0].snippet, "<b>Battery</b> <b>battery</b> <b>battery</b>: best <b>battery</b> ever");

    let reddit = index
        .search(&SearchQuery {
            filters: Filters { source: Some("reddit".into()), ..Filters::default() },
            ..query("battery")
        })
        .expect("search");
    assert_eq!(reddit.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), vec!["4"]);

    let from = Utc.with_ymd_and_hms(2026, 5, 2, 0, 0, 0).single();
    let to = Utc.with_ymd_and_hms(2026, 5, 4, 0, 0, 0).single();
    let window = index
        .search(&SearchQuery { filters: Filters { from, to, ..Filters::default() }, ..query("battery") })
        .expect("search");
    assert_eq!(window.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), vec!["2"], "to is exclusive");

    // An edit replaces the document.
    index.write_batch(&[comment("twitter", "1", "Screen cracked on day one", 1)]).expect("edit");
    assert_eq!(index.search(&query("battery")).expect("search").total, 2);
    assert_eq!(index.search(&query("cracked")).expect("search").hits[0].id, "1");
    assert_eq!(index.num_docs(), 4);

    // A second process reading the same folder sees the data.
    let reader = open(dir.path(), Access::Read);
    assert_eq!(reader.search(&query("customer service")).expect("search").hits[0].id, "3");
    assert!(matches!(reader.write_batch(&batch), Err(SearchError::ReadOnly)));

    let invalid = index.search(&query("text:(unclosed")).expect_err("parse error");
    assert!(matches!(invalid, SearchError::InvalidQuery(_)), "{invalid}");
}

#[test]
fn an_index_of_an_older_murmur_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut builder = tantivy::schema::Schema::builder();
    builder.add_text_field("something_else", tantivy::schema::TEXT);
    tantivy::Index::create_in_dir(dir.path(), builder.build()).expect("foreign index");
    let err = SearchIndex::open(dir.path(), Access::Read, IndexOptions::default()).err().expect("refused");
    assert!(matches!(err, SearchError::OldLayout(_)), "{err}");
    assert!(err.to_string().contains("murmur reindex"), "{err}");
}

#[test]
fn one_writer_at_a_time_and_commits_decide_visibility() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = IndexOptions { commit_interval: std::time::Duration::from_secs(3600), ..IndexOptions::default() };
    let writer = SearchIndex::open(dir.path(), Access::ReadWrite, options).expect("open");
    let second = SearchIndex::open(dir.path(), Access::Write, IndexOptions::default()).err().expect("refused");
    assert!(matches!(second, SearchError::WriterBusy(_)), "{second}");
    assert!(writer.commit_due(), "nothing waits: due");
    writer.add(&[comment("t", "1", "battery dies", 1)]).expect("add");
    assert!(!writer.commit_due(), "one comment and an hour's interval: not yet");
    assert_eq!(writer.search(&query("battery")).expect("search").total, 0, "not visible before the commit");
    writer.commit().expect("commit");
    assert_eq!(writer.search(&query("battery")).expect("search").total, 1);
}

#[test]
fn social_text_is_searchable_by_hashtag_mention_url_and_emoji() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path(), Access::ReadWrite);
    index
        .write_batch(&[
            comment("t", "1", "@United lost my bag again #NeverAgain https://t.co/AbC123 😡", 1),
            comment("t", "2", "never again will I fly united", 2),
            comment("t", "3", "Shipping to Montréal took 3 weeks 😡😡", 3),
        ])
        .expect("write");
    let found = |q: &str| {
        let mut found: Vec<String> = index.search(&query(q)).expect("search").hits.into_iter().map(|h| h.id).collect();
        found.sort();
        found
    };
    assert_eq!(found("#neveragain"), vec!["1"], "the hashtag finds only the hashtag");
    assert_eq!(found("neveragain"), vec!["1"], "its word finds it too");
    assert_eq!(found("@united"), vec!["1"], "the mention finds only the mention");
    assert_eq!(found("united"), vec!["1", "2"], "the name finds the mention and the word");
    assert_eq!(found("\"https://t.co/AbC123\""), vec!["1"], "a URL is one token");
    assert_eq!(found("https"), Vec::<String>::new(), "URL pieces are not words");
    assert_eq!(found("😡"), vec!["1", "3"]);
    assert_eq!(found("montreal"), vec!["3"], "accents fold");
    let snippet = &index.search(&query("#neveragain")).expect("search").hits[0].snippet;
    assert!(snippet.contains("<b>#NeverAgain</b>"), "{snippet}");
}

#[test]
fn semantic_search_ranks_by_embedding_under_filters_and_hybrid_fuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path(), Access::ReadWrite);
    let with = |mut c: EnrichedComment, v: Vec<f32>| {
        c.enrichment.embedding = v;
        c
    };
    index
        .write_batch(&[
            with(comment("twitter", "near", "my phone is dead by noon", 1), toward(1, 0.05)),
            with(comment("reddit", "nearish", "phone gives up after lunch", 2), toward(1, 0.3)),
            with(comment("twitter", "words", "battery battery battery", 3), toward(2, 0.0)),
            with(comment("twitter", "far", "lovely weather", 4), toward(3, 0.1)),
        ])
        .expect("write");
    let semantic = |q: &str, filters: Filters| SearchQuery {
        mode: SearchMode::Semantic,
        embedding: Some(toward(1, 0.0)),
        filters,
        explain: true,
        ..query(q)
    };
    let all = index.search(&semantic("battery drains", Filters::default())).expect("search");
    assert_eq!(ids(&all)[..2], ["near", "nearish"], "nearest first, sharing no word with the query");
    assert_eq!(all.total, 4, "every comment has a similarity");
    assert_eq!(all.ann, Some(AnnMethod::Exact), "a set this small is searched exactly");
    assert!(all.hits[0].score > all.hits[1].score);
    assert_eq!(all.hits[0].explain.as_ref().expect("explain")["rank"], 1);

    let reddit = index
        .search(&semantic("battery drains", Filters { source: Some("reddit".into()), ..Filters::default() }))
        .expect("search");
    assert_eq!(ids(&reddit), vec!["nearish"], "filters apply to semantic search");

    let bm25 = index.search(&query("battery")).expect("search");
    assert_eq!(ids(&bm25), vec!["words"], "BM25 only finds the word");
    let hybrid = index
        .search(&SearchQuery { mode: SearchMode::Hybrid, ..semantic("battery", Filters::default()) })
        .expect("search");
    assert_eq!(ids(&hybrid), vec!["words", "near", "nearish", "far"], "in both lists first, then by semantic rank");
    let explained = hybrid.hits[0].explain.as_ref().expect("explain");
    assert_eq!(explained["bm25"]["rank"], 1);
    assert_eq!(explained["semantic"]["rank"], 4);
    assert!(explained["bm25"]["explanation"].is_object(), "{explained}");
    let semantic_only = SearchQuery {
        mode: SearchMode::Hybrid,
        fusion: murmur_search::Fusion { bm25_weight: 0.0, ..Default::default() },
        ..semantic("battery", Filters::default())
    };
    assert_eq!(
        ids(&index.search(&semantic_only).expect("search")),
        vec!["near", "nearish", "far", "words"],
        "weights shift the fusion"
    );

    let missing = index.search(&SearchQuery { embedding: None, ..semantic("x", Filters::default()) });
    assert!(matches!(missing, Err(SearchError::EmbeddingRequired("semantic"))));

    // Replacing a comment retires its old vector.
    index.write_batch(&[with(comment("twitter", "near", "lovely day", 1), toward(3, 0.0))]).expect("edit");
    let after = index.search(&semantic("battery drains", Filters::default())).expect("search");
    assert_eq!(ids(&after)[0], "nearish");
    assert_eq!(after.total, 4);
}

#[test]
fn the_graph_answers_large_sets_and_a_rebuild_switches_readers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hnsw = HnswParams { exact_below: 100, ..HnswParams::default() };
    let options =
        IndexOptions { hnsw, refresh_interval: std::time::Duration::from_millis(50), ..IndexOptions::default() };
    let batch: Vec<EnrichedComment> = (0..600)
        .map(|i| {
            let mut c = comment("t", &i.to_string(), &format!("comment number {i}"), 1 + (i % 20) as u32);
            let angle = i as f32 / 600.0 * std::f32::consts::FRAC_PI_2;
            c.enrichment.embedding = vec![angle.cos(), angle.sin(), 0.0, 0.0];
            c
        })
        .collect();
    {
        let writer = SearchIndex::open(dir.path(), Access::Write, options.clone()).expect("open");
        writer.write_batch(&batch).expect("write");
    }
    let reader = SearchIndex::open(dir.path(), Access::Read, options.clone()).expect("open");
    let probe = |index: &SearchIndex| {
        index
            .search(&SearchQuery {
                mode: SearchMode::Semantic,
                embedding: Some(vec![1.0, 0.0, 0.0, 0.0]),
                ..query("x")
            })
            .expect("search")
    };
    wait_for_graph(&reader);
    let before = probe(&reader);
    assert_eq!(before.ann, Some(AnnMethod::Graph));
    assert_eq!(ids(&before)[..3], ["0", "1", "2"]);

    // A rebuild with different content: the reader keeps serving the old generation until it is published.
    let mut rebuild = SearchIndex::rebuild(dir.path(), options.clone()).expect("rebuild");
    let busy = SearchIndex::open(dir.path(), Access::Write, options.clone()).err().expect("sink refused");
    assert!(matches!(busy, SearchError::WriterBusy(_)), "{busy}");
    let reversed: Vec<EnrichedComment> = batch
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.enrichment.embedding.swap(0, 1);
            c
        })
        .collect();
    rebuild.add(&reversed).expect("add");
    assert_eq!(ids(&probe(&reader))[..3], ["0", "1", "2"], "old generation still served");
    rebuild.finish().expect("finish");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ids(&probe(&reader)).first() != Some(&"599") {
        assert!(std::time::Instant::now() < deadline, "the reader never switched generations");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(reader.num_docs(), 600);
    SearchIndex::open(dir.path(), Access::Write, options).expect("the sink may write again");
}

/// Waits (at most 30 s) until the reader's graph is loaded or built.
fn wait_for_graph(index: &SearchIndex) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !index.graph_status().ready {
        assert!(std::time::Instant::now() < deadline, "the graph never became ready");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_replaced_comments_old_vector_leaves_the_graph_and_is_never_returned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = IndexOptions {
        hnsw: HnswParams { exact_below: 0, ..HnswParams::default() },
        refresh_interval: std::time::Duration::from_millis(20),
        ..IndexOptions::default()
    };
    let index = SearchIndex::open(dir.path(), Access::ReadWrite, options).expect("open");
    let axis = |k: usize| {
        let mut v = vec![0.02_f32; 8];
        v[k] = 1.0;
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
    };
    let batch: Vec<EnrichedComment> = (0..400)
        .map(|i| {
            let mut c = comment("t", &i.to_string(), &format!("comment {i}"), 1 + (i % 20) as u32);
            c.enrichment.embedding = axis(1 + i % 7);
            c
        })
        .collect();
    index.write_batch(&batch).expect("write");
    let mut moved = comment("t", "moved", "first about one thing", 1);
    moved.enrichment.embedding = axis(0);
    index.write_batch(&[moved.clone()]).expect("write");
    wait_for_graph(&index);
    let nearest = |k: usize| {
        index
            .search(&SearchQuery { mode: SearchMode::Semantic, embedding: Some(axis(k)), ..query("x") })
            .expect("search")
    };
    let before = nearest(0);
    assert_eq!(before.ann, Some(AnnMethod::Graph));
    assert_eq!(ids(&before)[0], "moved");
    assert!(before.hits[0].score > 0.99);

    // Edited: now about something else. Its old vector leaves the graph once the reader sees the edit.
    moved.enrichment.embedding = axis(3);
    index.write_batch(&[moved]).expect("edit");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while index.graph_status().removed < 1 {
        assert!(std::time::Instant::now() < deadline, "the old vector never left the graph");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(index.graph_status().removed, 1, "only the replaced vector");
    let after = nearest(0);
    assert_eq!(after.ann, Some(AnnMethod::Graph));
    assert!(after.hits.iter().all(|h| h.score < 0.5), "nothing near the old vector any more: {:?}", ids(&after));
    let moved_hit = after.hits.iter().find(|h| h.id == "moved");
    assert!(moved_hit.is_none_or(|h| h.score < 0.5), "found only by its new vector");
    assert_eq!(index.num_docs(), 401);
}

#[test]
fn entity_filters_by_type_name_or_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path(), Access::ReadWrite);
    index
        .write_batch(&[
            mentioning(
                comment("t", "1", "Google Pixel battery", 1),
                &[(EntityLabel::Org, "Google"), (EntityLabel::Misc, "Pixel")],
            ),
            mentioning(
                comment("t", "2", "battery at Google HQ in Mountain View", 2),
                &[(EntityLabel::Org, "GOOGLE"), (EntityLabel::Loc, "Mountain  View")],
            ),
            mentioning(
                comment("t", "3", "battery by Jordan #google", 3),
                &[(EntityLabel::Per, "Jordan"), (EntityLabel::Hashtag, "#google")],
            ),
            mentioning(comment("t", "4", "battery in Jordan", 4), &[(EntityLabel::Loc, "Jordan")]),
            comment("t", "5", "battery, no NER ran", 5),
        ])
        .expect("write");
    let ids = |entity: &str| {
        let filter = EntityFilter::parse(entity).expect("filter parses");
        let mut ids: Vec<String> = index
            .search(&SearchQuery {
                filters: Filters { entity: Some(filter), ..Filters::default() },
                ..query("battery")
            })
            .expect("search")
            .hits
            .into_iter()
            .map(|h| h.id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids("ORG:google"), vec!["1", "2"], "names compare case-insensitively");
    assert_eq!(ids("ORG"), vec!["1", "2"]);
    assert_eq!(ids("jordan"), vec!["3", "4"], "a bare name matches any type");
    assert_eq!(ids("google"), vec!["1", "2"], "a bare name is a name written in the text, not a mention");
    assert_eq!(ids("hashtag:google"), vec!["3"]);
    assert_eq!(ids("LOC:Jordan"), vec!["4"]);
    assert_eq!(ids("loc:mountain view"), vec!["2"], "whitespace collapses");
    assert_eq!(ids("PER:google"), Vec::<String>::new());
    assert_eq!(EntityFilter::parse("  "), None);

    let counted = index.search(&SearchQuery { facets: true, limit: 1, ..query("battery") }).expect("search");
    let facets = counted.facets.expect("facets asked for");
    let listed: Vec<(&str, &str, u64)> =
        facets.entities.iter().map(|e| (e.label.as_str(), e.name.as_str(), e.comments)).collect();
    assert_eq!(
        listed,
        vec![
            ("LOC", "jordan", 2),
            ("ORG", "google", 2),
            ("LOC", "mountain view", 1),
            ("MISC", "pixel", 1),
            ("hashtag", "google", 1)
        ],
        "over every match, not the page of one; a name once whatever its types; most first, then by type and name"
    );
    let jordan = &facets.entities[0];
    assert_eq!(jordan.types, vec![("LOC".to_owned(), 1), ("PER".to_owned(), 1)], "a name's types are kept");
    assert_eq!(facets.sentiment.values().sum::<usize>(), 0, "no sentiment was stored");
    let narrowed = index
        .search(&SearchQuery { facets: true, filters: entity("ORG"), ..query("battery") })
        .expect("search")
        .facets
        .expect("facets");
    assert_eq!(narrowed.entities.len(), 3, "facets follow the filters: google, mountain view, pixel");
    assert!(index.search(&query("battery")).expect("search").facets.is_none(), "only when asked for");

    let hit = index.search(&SearchQuery { filters: entity("MISC"), ..query("battery") }).expect("search");
    assert_eq!(
        hit.hits[0].entities,
        vec![
            HitEntity { label: "ORG".into(), name: "google".into() },
            HitEntity { label: "MISC".into(), name: "pixel".into() }
        ]
    );
}

#[test]
fn snippets_are_escaped_and_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path(), Access::ReadWrite);
    let long = format!("{} the battery <script>alert(1)</script> & more {}", "filler ".repeat(60), "tail ".repeat(60));
    index.write_batch(&[comment("t", "1", &long, 1)]).expect("write");
    let hit = &index.search(&query("battery")).expect("search").hits[0];
    assert!(hit.snippet.contains("<b>battery</b>"), "{}", hit.snippet);
    assert!(hit.snippet.contains("&lt;script&gt;") && !hit.snippet.contains("<script>"), "{}", hit.snippet);
    assert!(hit.snippet.chars().count() < long.chars().count() / 2, "a fragment, not the text");
    let filtered = index
        .search(&SearchQuery { filters: Filters { source: Some("t".into()), ..Filters::default() }, ..query("filler") })
        .expect("search");
    assert!(filtered.hits[0].snippet.contains("<b>filler</b>"));
}

#[test]
fn hybrid_pages_are_the_one_fused_ranking_without_repeats_or_gaps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path(), Access::ReadWrite);
    // 1,000 comments, 600 of them naming "refund" once among a varying number of other words (BM25 ranks
    // them by length), every one pointing its own way (a small deterministic generator), so the two lists
    // disagree deep into both.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 10_000) as f32 / 10_000.0 - 0.5
    };
    let batch: Vec<EnrichedComment> = (0..1000)
        .map(|i| {
            let filler = "word ".repeat(i % 37);
            let text = if i % 5 < 3 { format!("refund please {filler}") } else { format!("no money back {filler}") };
            let mut c = comment("t", &i.to_string(), &text, 1 + (i % 20) as u32);
            let v: Vec<f32> = (0..4).map(|_| next()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            c.enrichment.embedding = v.into_iter().map(|x| x / norm).collect();
            c
        })
        .collect();
    index.write_batch(&batch).expect("write");
    let hybrid = |offset: usize, limit: usize| {
        let q =
            SearchQuery { mode: SearchMode::Hybrid, embedding: Some(toward(1, 0.2)), offset, limit, ..query("refund") };
        let results = index.search(&q).expect("search");
        results.hits.iter().map(|h| h.id.clone()).collect::<Vec<String>>()
    };
    let at_once = hybrid(0, 300);
    assert_eq!(at_once.len(), 300);
    let paged: Vec<String> = (0..30).flat_map(|page| hybrid(page * 10, 10)).collect();
    let unique: std::collections::HashSet<&String> = paged.iter().collect();
    assert_eq!(unique.len(), paged.len(), "a hit repeated across pages");
    assert_eq!(paged, at_once, "30 pages of 10 differ from the first 300 of the fused ranking");
    // Pages of a small index down to the rank window hold the whole fused ranking: every comment once.
    let everything: Vec<String> = (0..10).flat_map(|page| hybrid(page * 100, 100)).collect();
    assert_eq!(everything.len(), 1000);
    assert_eq!(everything.iter().collect::<std::collections::HashSet<_>>().len(), 1000);
    assert_eq!(everything[..300], at_once[..]);
    // The rank window bounds how deep pages go, with an error that says so.
    let q = SearchQuery {
        mode: SearchMode::Hybrid,
        embedding: Some(toward(1, 0.2)),
        offset: 995,
        limit: 10,
        ..query("refund")
    };
    let err = index.search(&q).expect_err("a page past the rank window");
    assert!(err.to_string().contains("at most 1000 deep"), "{err}");
}
