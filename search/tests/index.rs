use chrono::{TimeZone, Utc};
use murmur_core::{Comment, EnrichedComment, Enrichment, Entity, EntityLabel};
use murmur_search::{Access, EntityFilter, HitEntity, SearchError, SearchIndex, SearchQuery};

fn comment(source: &str, id: &str, text: &str, day: u32) -> EnrichedComment {
    EnrichedComment::new(
        Comment {
            source: source.into(),
            id: id.into(),
            author: None,
            text: text.into(),
            created_at: Utc.with_ymd_and_hms(2026, 5, day, 0, 0, 0).single().expect("date"),
            lang: Some("en".into()),
            url: None,
            tags: vec!["pixel".into()],
            metadata: serde_json::Map::new(),
        },
        Enrichment { model: "m".into(), embedding: vec![1.0], sentiment: None, entities: None },
    )
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

#[test]
fn bm25_with_filters_and_idempotent_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), Access::ReadWrite).expect("open");
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

    let reddit = index.search(&SearchQuery { source: Some("reddit".into()), ..query("battery") }).expect("search");
    assert_eq!(reddit.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), vec!["4"]);

    let from = Utc.with_ymd_and_hms(2026, 5, 2, 0, 0, 0).single();
    let to = Utc.with_ymd_and_hms(2026, 5, 4, 0, 0, 0).single();
    let window = index.search(&SearchQuery { from, to, ..query("battery") }).expect("search");
    assert_eq!(window.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), vec!["2"], "to is exclusive");

    // An edit replaces the document.
    index.write_batch(&[comment("twitter", "1", "Screen cracked on day one", 1)]).expect("edit");
    assert_eq!(index.search(&query("battery")).expect("search").total, 2);
    assert_eq!(index.search(&query("cracked")).expect("search").hits[0].id, "1");
    assert_eq!(index.num_docs(), 4);

    // A second process reading the same folder sees the data.
    let reader = SearchIndex::open(dir.path(), Access::ReadOnly).expect("open read-only");
    assert_eq!(reader.search(&query("customer service")).expect("search").hits[0].id, "3");
    assert!(matches!(reader.write_batch(&batch), Err(SearchError::ReadOnly)));

    let invalid = index.search(&query("text:(unclosed")).expect_err("parse error");
    assert!(matches!(invalid, SearchError::InvalidQuery(_)), "{invalid}");
}

#[test]
fn an_index_of_another_schema_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut builder = tantivy::schema::Schema::builder();
    builder.add_text_field("something_else", tantivy::schema::TEXT);
    tantivy::Index::create_in_dir(dir.path(), builder.build()).expect("foreign index");
    let err = SearchIndex::open(dir.path(), Access::ReadOnly).err().expect("refused");
    assert!(matches!(err, SearchError::SchemaMismatch(_)), "{err}");
}

#[test]
fn entity_filters_by_type_name_or_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), Access::ReadWrite).expect("open");
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
            mentioning(comment("t", "3", "battery by Jordan", 3), &[(EntityLabel::Per, "Jordan")]),
            mentioning(comment("t", "4", "battery in Jordan", 4), &[(EntityLabel::Loc, "Jordan")]),
            comment("t", "5", "battery, no NER ran", 5),
        ])
        .expect("write");
    let ids = |entity: &str| {
        let filter = EntityFilter::parse(entity).expect("filter parses");
        let mut ids: Vec<String> = index
            .search(&SearchQuery { entity: Some(filter), ..query("battery") })
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
            ("ORG", "google", 2),
            ("LOC", "jordan", 1),
            ("LOC", "mountain view", 1),
            ("MISC", "pixel", 1),
            ("PER", "jordan", 1)
        ],
        "over every match, not the page of one; most first, then by type and name"
    );
    assert_eq!(facets.sentiment.values().sum::<usize>(), 0, "no sentiment was stored");
    let narrowed = index
        .search(&SearchQuery { facets: true, entity: EntityFilter::parse("ORG"), ..query("battery") })
        .expect("search")
        .facets
        .expect("facets");
    assert_eq!(narrowed.entities.len(), 3, "facets follow the filters: google, mountain view, pixel");
    assert!(index.search(&query("battery")).expect("search").facets.is_none(), "only when asked for");

    let hit = index.search(&SearchQuery { entity: EntityFilter::parse("MISC"), ..query("battery") }).expect("search");
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
    let index = SearchIndex::open(dir.path(), Access::ReadWrite).expect("open");
    let long = format!("{} the battery <script>alert(1)</script> & more {}", "filler ".repeat(60), "tail ".repeat(60));
    index.write_batch(&[comment("t", "1", &long, 1)]).expect("write");
    let hit = &index.search(&query("battery")).expect("search").hits[0];
    assert!(hit.snippet.contains("<b>battery</b>"), "{}", hit.snippet);
    assert!(hit.snippet.contains("&lt;script&gt;") && !hit.snippet.contains("<script>"), "{}", hit.snippet);
    assert!(hit.snippet.chars().count() < long.chars().count() / 2, "a fragment, not the text");
    let filtered = index.search(&SearchQuery { source: Some("t".into()), ..query("filler") }).expect("search");
    assert!(filtered.hits[0].snippet.contains("<b>filler</b>"));
}
