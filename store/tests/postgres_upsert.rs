//! Upserts against the real Postgres (a throwaway database per test).

use chrono::{TimeZone, Utc};
use murmur_core::{Comment, EnrichedComment, Enrichment, Entity, EntityLabel, Sentiment, SentimentLabel};
use murmur_store::{DimKind, KeyFilter, PackedVector, Postgres};
use sqlx::Connection;

async fn fresh_database(name: &str) -> Postgres {
    let store = murmur_store::testing::fresh_database(name).await.expect("postgres reachable (infra/postgres.sh)");
    store.migrate().await.expect("migrations are idempotent");
    store
}

fn enriched(id: usize, text: &str) -> EnrichedComment {
    let mut metadata = serde_json::Map::new();
    metadata.insert("n".into(), id.into());
    EnrichedComment::new(
        Comment {
            source: "app-store".into(),
            id: id.to_string(),
            author: Some(format!("a_{id}")),
            text: text.into(),
            created_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("date")
                + chrono::Duration::minutes(id as i64),
            lang: Some("en".into()),
            url: None,
            tags: vec!["pixel".into(), "google".into()],
            metadata,
        },
        Enrichment {
            model: "m".into(),
            embedding: vec![id as f32, 0.5, -1.0],
            sentiment: id.is_multiple_of(2).then_some(Sentiment {
                label: SentimentLabel::Positive,
                negative: 0.1,
                neutral: 0.2,
                positive: 0.7,
            }),
            entities: id.is_multiple_of(3).then(|| entities_of(text)),
        },
    )
}

/// Every word of the text that starts with a letter, as a MISC entity at its character offsets.
fn entities_of(text: &str) -> Vec<Entity> {
    let mut out = Vec::new();
    let mut offset = 0;
    for word in text.split(' ') {
        let len = word.chars().count();
        if word.chars().next().is_some_and(char::is_alphabetic) {
            out.push(Entity {
                label: EntityLabel::Misc,
                text: word.into(),
                start: offset,
                end: offset + len,
                score: 0.5,
            });
        }
        offset += len + 1;
    }
    out
}

#[tokio::test]
async fn upsert_is_idempotent_and_updates_changed_rows() {
    let store = fresh_database("upsert").await;
    let batch: Vec<EnrichedComment> = (0..500).map(|i| enriched(i, &format!("comment {i} ☕ café"))).collect();
    store.upsert_batch(&batch).await.expect("first write");
    store.upsert_batch(&batch).await.expect("replay");
    assert_eq!(store.count_comments().await.expect("count"), 500);
    let embeddings: i64 =
        sqlx::query_scalar("SELECT count(*) FROM embeddings").fetch_one(store.pool()).await.expect("n");
    assert_eq!(embeddings, 500);

    let got = store.get_comment("app-store", "42", true).await.expect("read").expect("present");
    assert_eq!(got.text, "comment 42 ☕ café");
    assert_eq!(got.tags, vec!["pixel", "google"]);
    assert_eq!(got.metadata["n"], 42);
    assert_eq!(got.enrichment.embedding, Some(PackedVector(vec![42.0, 0.5, -1.0])), "each row keeps its own vector");
    assert_eq!(got.enrichment.model.as_deref(), Some("m"));
    let sentiment = got.enrichment.sentiment.as_ref().expect("sentiment stored").0.clone();
    assert_eq!((sentiment.label, sentiment.positive), (SentimentLabel::Positive, 0.7));
    let odd = store.get_comment("app-store", "41", false).await.expect("read").expect("present");
    assert!(odd.enrichment.sentiment.is_none(), "absent sentiment stays absent");
    let without = store.get_comment("app-store", "42", false).await.expect("read").expect("present");
    assert!(without.enrichment.embedding.is_none());
    let entities = got.enrichment.entities.as_ref().expect("entities stored").0.clone();
    assert_eq!(entities, entities_of("comment 42 ☕ café"), "entities come back in order, offsets intact");
    assert_eq!(entities[1].text, "café");
    assert_eq!((entities[1].start, entities[1].end), (13, 17));
    assert!(odd.enrichment.entities.is_none(), "no NER run: entities absent, not empty");
    let mentions = |sql: &'static str| {
        let pool = store.pool().clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.expect("count") }
    };
    assert_eq!(mentions("SELECT count(*) FROM entities").await, 167 * 2, "two per third comment, replay added none");
    assert_eq!(mentions("SELECT count(*) FROM entities WHERE name = 'café' AND text = 'café'").await, 167);
    let day = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).single().expect("date");
    let entities = KeyFilter { kind: DimKind::Entity, source: None, label: None };
    let top = store.rollup_top(entities, (day, day + chrono::Duration::days(1)), 2).await.expect("top entities");
    assert_eq!(top.len(), 2);
    assert_eq!((top[0].key.as_str(), top[0].counts.comments), ("MISC:café", 167), "café and comment: 167 each");
    assert_eq!(top[1].key, "MISC:comment", "ties by key");

    // A changed text replaces the old one; replaying an unchanged row does not rewrite it.
    let updated_at = |id: &'static str| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_scalar::<_, chrono::DateTime<Utc>>("SELECT updated_at FROM comments WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .expect("row")
        }
    };
    let before = updated_at("1").await;
    store.upsert_batch(&[enriched(42, "edited"), enriched(1, "comment 1 ☕ café")]).await.expect("update");
    assert_eq!(store.get_comment("app-store", "42", false).await.expect("read").expect("present").text, "edited");
    assert_eq!(before, updated_at("1").await, "unchanged row rewritten");
    let edited = store.get_comment("app-store", "42", false).await.expect("read").expect("present");
    assert_eq!(edited.enrichment.entities.expect("entities").0, entities_of("edited"), "stale mentions removed");
    assert_eq!(mentions("SELECT count(*) FROM entities WHERE id = '42'").await, 1);
    assert_eq!(store.count_comments().await.expect("count"), 500);
    assert!(store.get_comment("app-store", "nope", false).await.expect("read").is_none());
}

/// Migration 0005 packs the real[] vectors written before it, and the store reads them back unchanged.
#[tokio::test]
async fn embeddings_stored_as_arrays_before_0005_read_back_the_same_after_it() {
    let admin_url = std::env::var("MURMUR_TEST_ADMIN_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("postgres reachable (infra/postgres.sh)");
    let db = "murmur_test_migration_0005";
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut admin).await.expect("drop");
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut admin).await.expect("create");
    let url = format!("{}/{db}", admin_url.rsplit_once('/').expect("URL names a database").0);
    let mut before = sqlx::PgConnection::connect(&url).await.expect("connect");
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let apply = |file: &str| std::fs::read_to_string(migrations.join(file)).expect("migration file");
    for file in ["0001_comments.sql", "0002_sentiment.sql", "0003_entities.sql", "0004_rollups.sql"] {
        sqlx::raw_sql(&apply(file)).execute(&mut before).await.expect(file);
    }
    sqlx::raw_sql(
        "INSERT INTO comments (source, id, text, created_at) VALUES ('s', 'wide', 'x', now()), ('s', 'none', 'y', now());
         INSERT INTO enrichments (source, id, model) VALUES ('s', 'wide', 'm'), ('s', 'none', 'm');
         INSERT INTO embeddings (source, id, model, vector)
         VALUES ('s', 'wide', 'm', '{42, 0.5, -1, 1e-30, -0}'), ('s', 'none', 'm', '{}');",
    )
    .execute(&mut before)
    .await
    .expect("rows as 0004 stored them");
    sqlx::raw_sql(&apply("0005_packed_embeddings.sql")).execute(&mut before).await.expect("0005");

    let store = Postgres::connect(&url, 2).await.expect("connect");
    let wide = store.get_comment("s", "wide", true).await.expect("read").expect("present");
    assert_eq!(wide.enrichment.embedding, Some(PackedVector(vec![42.0, 0.5, -1.0, 1e-30, -0.0])));
    let none = store.get_comment("s", "none", true).await.expect("read").expect("present");
    assert_eq!(none.enrichment.embedding, Some(PackedVector(Vec::new())), "an empty vector stays empty");
}
