//! Upserts against the real Postgres (a throwaway database per test).

use chrono::{TimeZone, Utc};
use murmur_core::{
    Comment, DetectedLanguage, Emotion, EmotionLabel, EnrichedComment, Enrichment, Entity, EntityLabel,
    MultilingualEmbedding, Sentiment, SentimentLabel, Skipped,
};
use murmur_store::{DimKind, Duplicates, KeyFilter, PackedVector, Postgres};
use sqlx::Connection;

/// A fresh database, migrated, then migrated again: migrations are idempotent.
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
            emotion: id
                .is_multiple_of(5)
                .then(|| Emotion::new(vec![EmotionLabel::Joy], [0.0, 0.0, 0.0, 0.9, 0.0, 0.1, 0.0])),
            aspects: None,
            language: None,
            skipped: None,
            multilingual: None,
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
    let embeddings: i64 = sqlx::query_scalar("SELECT count(*) FROM comments WHERE length(embedding) = 12")
        .fetch_one(store.pool())
        .await
        .expect("n");
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
    let all = "SELECT count(*) FROM comments, jsonb_array_elements(entities) m";
    assert_eq!(mentions(all).await, 167 * 2, "two per third comment, replay added none");
    let cafe = "SELECT count(*) FROM comments, jsonb_array_elements(entities) m \
                WHERE m->>'name' = 'cafe' AND m->>'text' = 'café'";
    assert_eq!(mentions(cafe).await, 167);
    let day = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).single().expect("date");
    let entities = KeyFilter { kind: DimKind::Entity, source: None, label: None, duplicates: Duplicates::Include };
    let top = store.rollup_top(entities, (day, day + chrono::Duration::days(1)), 2).await.expect("top entities");
    assert_eq!(top.len(), 2);
    assert_eq!((top[0].key.as_str(), top[0].counts.comments), ("MISC:cafe", 167), "café and comment: 167 each");
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
    let of_42 = "SELECT count(*) FROM comments, jsonb_array_elements(entities) m WHERE id = '42'";
    assert_eq!(mentions(of_42).await, 1);
    assert_eq!(store.count_comments().await.expect("count"), 500);
    assert!(store.get_comment("app-store", "nope", false).await.expect("read").is_none());
}

/// Comments stored before 0005 and 0006 (vectors as real[], one table per part of a comment) read back the
/// same after them; the move leaves the rollups as the old triggers kept them, and the new triggers go on from
/// there. Entities named by earlier rules are re-derived by today's, and their counts move with them.
#[tokio::test]
async fn comments_stored_before_0005_and_0006_read_back_the_same_and_keep_their_rollups() {
    let url =
        murmur_store::testing::empty_database("migration_0006").await.expect("postgres reachable (infra/postgres.sh)");
    let mut before = sqlx::PgConnection::connect(&url).await.expect("connect");
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let apply = |file: &str| std::fs::read_to_string(migrations.join(file)).expect("migration file");
    for file in ["0001_comments.sql", "0002_sentiment.sql", "0003_entities.sql", "0004_rollups.sql"] {
        sqlx::raw_sql(&apply(file)).execute(&mut before).await.expect(file);
    }
    sqlx::raw_sql(
        "INSERT INTO comments (source, id, text, created_at, tags) VALUES
             ('s', 'wide', 'Apple rocks Montréal', '2026-03-01T12:00:00Z', '{pixel}'),
             ('s', 'none', 'y', '2026-03-01T12:00:00Z', '{}'),
             ('s', 'bare', 'never enriched', '2026-03-01T12:00:00Z', '{pixel}');
         INSERT INTO enrichments (source, id, model, sentiment, sentiment_negative, sentiment_neutral,
                                  sentiment_positive, entity_count)
         VALUES ('s', 'wide', 'm', 'positive', 0.1, 0.2, 0.7, 2), ('s', 'none', 'm', NULL, NULL, NULL, NULL, NULL);
         INSERT INTO entities (source, id, ordinal, label, text, name, start_char, end_char, score)
         VALUES ('s', 'wide', 0, 'ORG', 'Apple', 'apple', 0, 5, 0.5),
                ('s', 'wide', 1, 'LOC', 'Montréal', 'montréal', 12, 20, 0.5);
         INSERT INTO embeddings (source, id, model, vector)
         VALUES ('s', 'wide', 'm', '{42, 0.5, -1, 1e-30, -0}'), ('s', 'none', 'm', '{}');
         INSERT INTO comment_facts (source, id, minute, sentiment, dims) VALUES
             ('s', 'wide', '2026-03-01T12:00:00Z', 'positive',
              '{entity:LOC:montréal,entity:ORG:apple,name:apple,name:montréal,tag:pixel}'),
             ('s', 'none', '2026-03-01T12:00:00Z', NULL, '{}');",
    )
    .execute(&mut before)
    .await
    .expect("rows as 0004 stored them");
    let rollups = "SELECT kind, key, grain, comments, positive FROM rollups ORDER BY 1, 2, 3";
    let rolled: Vec<(String, String, String, i32, i32)> =
        sqlx::query_as(rollups).fetch_all(&mut before).await.expect("rollups");
    assert_eq!(rolled.len(), 14, "all and tag:pixel at 3 grains, the entities and names at 2, per the old triggers");
    for file in [
        "0005_packed_embeddings.sql",
        "0006_one_row_per_comment.sql",
        "0007_emotions_and_mentions.sql",
        "0008_brands.sql",
        "0009_alerts.sql",
        "0010_copies.sql",
        "0011_rollup_log.sql",
    ] {
        sqlx::raw_sql(&apply(file)).execute(&mut before).await.expect(file);
    }
    let moved: Vec<(String, String, String, i32, i32)> =
        sqlx::query_as(rollups).fetch_all(&mut before).await.expect("rollups");
    assert_eq!(moved, rolled, "moving rows moves no count");
    sqlx::raw_sql(&apply("0012_entity_rollups.sql")).execute(&mut before).await.expect("0012");
    let relabelled: Vec<(String, String, String, String, i32, i32)> =
        sqlx::query_as("SELECT kind, key, label, grain, comments, positive FROM rollups ORDER BY 1, 2, 3, 4")
            .fetch_all(&mut before)
            .await
            .expect("rollups");
    let mut expected: Vec<(String, String, String, String, i32, i32)> = rolled
        .iter()
        .filter(|r| r.0 != "name")
        .map(|(kind, key, grain, comments, positive)| {
            let (label, key) = match kind.as_str() {
                "entity" => key.split_once(':').map(|(l, k)| (l.to_owned(), k.to_owned())).expect("LABEL:name"),
                _ => (String::new(), key.clone()),
            };
            (kind.clone(), key, label, grain.clone(), *comments, *positive)
        })
        .collect();
    expected.sort();
    assert_eq!(relabelled, expected, "0012 moves the entity type to its own column and drops the name rows");
    // 0013 (themes) queues every stored comment with an embedding for the themer.
    sqlx::raw_sql(&apply("0013_themes.sql")).execute(&mut before).await.expect("0013");
    let queued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM theme_queue").fetch_one(&mut before).await.expect("queue");
    let embedded: i64 = sqlx::query_scalar("SELECT count(*) FROM comments WHERE embedding IS NOT NULL")
        .fetch_one(&mut before)
        .await
        .expect("count");
    assert_eq!(queued, embedded, "0013 queues the stored comments for the themer");
    sqlx::raw_sql(&apply("0014_aspects.sql")).execute(&mut before).await.expect("0014");
    sqlx::raw_sql(&apply("0015_languages.sql")).execute(&mut before).await.expect("0015");
    // 0016 gives each stored comment its language dimension: the producer's primary subtag where nothing was
    // detected, 'und' where neither said.
    sqlx::raw_sql("UPDATE comments SET lang = 'pt-BR' WHERE id = 'wide'").execute(&mut before).await.expect("lang");
    sqlx::raw_sql(&apply("0016_language_rollups.sql")).execute(&mut before).await.expect("0016");
    sqlx::raw_sql(&apply("0017_multilingual_embeddings.sql")).execute(&mut before).await.expect("0017");
    sqlx::raw_sql(&apply("0018_deletions.sql")).execute(&mut before).await.expect("0018");
    let languages: Vec<(String, Vec<String>)> =
        sqlx::query_as("SELECT id, dims FROM comments WHERE dims IS NOT NULL ORDER BY id")
            .fetch_all(&mut before)
            .await
            .expect("dims");
    let languages: Vec<(String, Vec<String>)> = languages
        .into_iter()
        .map(|(id, dims)| (id, dims.into_iter().filter(|d| d.starts_with("lang:")).collect()))
        .collect();
    assert_eq!(
        languages,
        vec![("none".into(), vec!["lang:und".to_owned()]), ("wide".into(), vec!["lang:pt".to_owned()])]
    );

    let store = Postgres::connect(&url, 2).await.expect("connect");
    // Names stored by earlier rules are re-derived by today's (accents fold), once; the rollups follow.
    let changed = store.rederive_entities("test-rules", |_, stored| stored).await.expect("re-derives");
    assert_eq!(changed, Some(1), "the row naming Montréal changes, the others do not");
    assert_eq!(store.rederive_entities("test-rules", |_, _| Vec::new()).await.expect("runs"), None, "only once");
    let names = "SELECT key, sum(comments)::int4 FROM rollups WHERE kind = 'entity' AND grain = 'day' \
                 GROUP BY key HAVING sum(comments) > 0 ORDER BY key";
    store.fold_rollups().await.expect("fold");
    let names: Vec<(String, i32)> = sqlx::query_as(names).fetch_all(store.pool()).await.expect("names");
    assert_eq!(names, vec![("apple".into(), 1), ("montreal".into(), 1)], "the rollups moved to the new name");
    let languages = "SELECT key, comments FROM rollups WHERE kind = 'lang' AND grain = 'day' ORDER BY key";
    let languages: Vec<(String, i32)> = sqlx::query_as(languages).fetch_all(store.pool()).await.expect("languages");
    assert_eq!(languages, vec![("pt".into(), 1), ("und".into(), 1)], "0016's dims are counted");
    let wide = store.get_comment("s", "wide", true).await.expect("read").expect("present");
    assert_eq!(wide.enrichment.embedding, Some(PackedVector(vec![42.0, 0.5, -1.0, 1e-30, -0.0])));
    let sentiment = wide.enrichment.sentiment.clone().expect("sentiment moved").0;
    assert_eq!((sentiment.label, sentiment.positive), (SentimentLabel::Positive, 0.7));
    let apple = Entity { label: EntityLabel::Org, text: "Apple".into(), start: 0, end: 5, score: 0.5 };
    let montreal = Entity { label: EntityLabel::Loc, text: "Montréal".into(), start: 12, end: 20, score: 0.5 };
    assert_eq!(wide.enrichment.entities.clone().expect("entities moved").0, vec![apple, montreal]);
    let none = store.get_comment("s", "none", true).await.expect("read").expect("present");
    assert_eq!(none.enrichment.embedding, Some(PackedVector(Vec::new())), "an empty vector stays empty");
    assert!(none.enrichment.sentiment.is_none() && none.enrichment.entities.is_none(), "absent stays absent");
    let bare = store.get_comment("s", "bare", true).await.expect("read").expect("present");
    assert_eq!(bare.enrichment.model, None, "a comment never enriched stays so");

    // The new triggers count from the moved dims: an edit moves the tag, a delete takes the comment away.
    let mut edit = wide.into_enriched().expect("enriched");
    edit.comment.tags = vec!["galaxy".into()];
    store.upsert_batch(&[edit]).await.expect("edit");
    let count = |sql: &'static str| {
        let store = store.clone();
        async move {
            store.fold_rollups().await.expect("fold");
            sqlx::query_scalar::<_, i32>(sql).fetch_one(store.pool()).await.expect(sql)
        }
    };
    assert_eq!(count("SELECT comments FROM rollups WHERE kind = 'tag' AND key = 'pixel' AND grain = 'day'").await, 0);
    assert_eq!(count("SELECT comments FROM rollups WHERE kind = 'tag' AND key = 'galaxy' AND grain = 'day'").await, 1);
    assert_eq!(
        count(
            "SELECT comments FROM rollups WHERE kind = 'entity' AND key = 'apple' AND label = 'ORG' AND grain = 'day'"
        )
        .await,
        1
    );
    sqlx::query("DELETE FROM comments WHERE id IN ('wide', 'bare')").execute(store.pool()).await.expect("delete");
    assert_eq!(count("SELECT comments FROM rollups WHERE kind = 'all' AND grain = 'day'").await, 1, "only 'none' left");
    assert_eq!(
        count(
            "SELECT comments FROM rollups WHERE kind = 'entity' AND key = 'apple' AND label = 'ORG' AND grain = 'day'"
        )
        .await,
        0
    );
}

/// Tags are stored exactly as sent, whatever they hold.
#[tokio::test]
async fn tags_with_quotes_braces_and_backslashes_are_stored_as_sent() {
    let store = fresh_database("odd_tags").await;
    let odd = ["a,b", "{x}", "\"quoted\"", "back\\slash", "NULL", "", " spaced "];
    let mut comment = enriched(7, "odd tags");
    comment.comment.tags = odd.iter().map(|t| t.to_string()).collect();
    store.upsert_batch(&[comment]).await.expect("write");
    let got = store.get_comment("app-store", "7", false).await.expect("read").expect("present");
    assert_eq!(got.tags, odd);
    let dims: Vec<String> =
        sqlx::query_scalar("SELECT unnest(dims) FROM comments").fetch_all(store.pool()).await.expect("dims");
    assert_eq!(dims.len(), odd.len() + 1, "one rollup dimension per tag, and the language: {dims:?}");
    assert!(dims.contains(&"lang:en".to_owned()), "{dims:?}");
}

#[tokio::test]
async fn a_missing_database_says_how_to_create_it() {
    let admin = murmur_store::testing::admin_url();
    let (base, _) = admin.rsplit_once('/').expect("the admin URL names a database");
    let error =
        Postgres::connect(&format!("{base}/murmur_test_never_created"), 1).await.err().expect("no such database");
    let message = error.to_string();
    assert!(matches!(error, murmur_store::StoreError::MissingDatabase { .. }), "{message}");
    assert!(message.contains("createdb murmur_test_never_created"), "{message}");
}

#[tokio::test]
async fn detected_languages_skipped_heads_and_multilingual_vectors_round_trip() {
    let store = fresh_database("languages").await;
    let mut french = enriched(1, "le service client ne répond jamais");
    french.enrichment.language = Some(DetectedLanguage { code: "fr".into(), confidence: 0.97 });
    french.enrichment.skipped = Some(Skipped::Language);
    french.enrichment.multilingual =
        Some(MultilingualEmbedding { model: "e5".into(), vector: vec![0.6, -0.8, 1e-30, -0.0] });
    let mut english = enriched(2, "the battery is awful");
    english.enrichment.language = Some(DetectedLanguage { code: "en".into(), confidence: 0.88 });
    store.upsert_batch(&[french.clone(), english.clone(), enriched(3, "older")]).await.expect("write");
    for (id, want) in [("1", &french), ("2", &english)] {
        let got = store.get_comment("app-store", id, true).await.expect("read").expect("present");
        assert_eq!(got.lang.as_deref(), Some("en"), "the producer's lang is kept as sent");
        let back = got.into_enriched().expect("enriched");
        assert_eq!(back.enrichment.language, want.enrichment.language);
        assert_eq!(back.enrichment.skipped, want.enrichment.skipped);
        assert_eq!(back.enrichment.multilingual, want.enrichment.multilingual, "bit for bit");
    }
    let unread = store.get_comment("app-store", "1", false).await.expect("read").expect("present");
    assert!(unread.enrichment.multilingual.is_none(), "vectors only when asked for");
    let older = store.get_comment("app-store", "3", false).await.expect("read").expect("present");
    assert!(older.enrichment.language.is_none() && older.enrichment.skipped.is_none());
    let bad = sqlx::query("UPDATE comments SET skipped = 'mood' WHERE id = '3'").execute(store.pool()).await;
    assert!(bad.is_err(), "skipped holds known reasons only");
}
