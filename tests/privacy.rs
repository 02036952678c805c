//! Privacy through the real pipeline (tansu, `murmur worker` with the real models, `murmur sink`, Postgres, the
//! index): authors are stored only as keyed pseudonyms (the same author, the same pseudonym; another key,
//! another pseudonym), and with `MURMUR_REDACT_PII=all` e-mail addresses, phone numbers and the names the NER
//! head finds are gone from the stored and indexed text, while brands and places stay as entities at offsets
//! that point at the new text.

mod common;

use std::time::{Duration, Instant};

use common::{create_topics, free_port, fresh_database, keyed, produce, producer, role_env, Processes};
use serde_json::json;
use sqlx::PgPool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authors_are_pseudonymous_and_chosen_pii_is_redacted_from_stored_text() {
    let run = format!("pv{}x{}", std::process::id(), chrono::Utc::now().timestamp_millis());
    let topics = [format!("{run}.comments"), format!("{run}.enriched"), format!("{run}.dlq")];
    create_topics(&topics, 2).await;
    let database_url = fresh_database("it_privacy").await;
    let work = tempfile::tempdir().expect("tempdir");
    let mut env = role_env(&run, &topics, &database_url, &work.path().join("index"), free_port());
    env.push(("MURMUR_REDACT_PII", "all".into()));
    let mut procs = Processes(Vec::new());
    procs.spawn("worker", &["worker"], &env, work.path());
    procs.spawn("sink", &["sink"], &env, work.path());

    let at = "2026-10-02T12:00:00Z";
    let comments = [
        json!({"id": "1", "source": "support", "author": "jane.doe", "created_at": at,
               "text": "Barack Obama said the Google Pixel battery is great, write to press@google.com"}),
        json!({"id": "2", "source": "support", "author": "jane.doe", "created_at": at,
               "text": "Call me on +1 (415) 555-0132 about my broken Samsung phone in Berlin"}),
        json!({"id": "3", "source": "reviews", "author": "jane.doe", "created_at": at,
               "text": "Angela Merkel visited the Tesla factory near Berlin"}),
    ];
    produce(&producer(), &topics[0], &keyed(&comments)).await;

    let pool = PgPool::connect(&database_url).await.expect("connect");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        procs.assert_running();
        // Until the sink has migrated the database, there is no table to count.
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM comments").fetch_one(&pool).await.unwrap_or(0);
        if rows == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{rows} of 3 comments stored");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let texts: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT id, text, author FROM comments ORDER BY id").fetch_all(&pool).await.expect("rows");
    assert_eq!(texts[0].1, "[person] said the Google Pixel battery is great, write to [email]");
    assert_eq!(texts[1].1, "Call me on [phone] about my broken Samsung phone in Berlin");
    assert_eq!(texts[2].1, "[person] visited the Tesla factory near Berlin");

    // One pseudonym per (source, author), never the author's id; the key is the worker's secret.
    let authors: Vec<&str> = texts.iter().filter_map(|(_, _, a)| a.as_deref()).collect();
    assert_eq!(authors.len(), 3);
    assert_eq!(authors[0], authors[1], "the same author in the same source, the same pseudonym");
    assert_ne!(authors[0], authors[2], "another source, another pseudonym");
    assert!(authors.iter().all(|a| !a.contains("jane") && a.len() >= 32), "{authors:?}");

    // No PER entity is kept; brands and places are, at offsets into the redacted text.
    let entities: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT e->>'label', e->>'text', substr(c.text, (e->>'start')::int + 1, (e->>'end')::int - (e->>'start')::int) \
         FROM comments c, jsonb_array_elements(c.entities) e ORDER BY c.source, c.id, (e->>'start')::int",
    )
    .fetch_all(&pool)
    .await
    .expect("entities");
    assert!(entities.iter().all(|(label, _, _)| label != "PER"), "{entities:?}");
    assert!(entities.iter().all(|(_, text, at)| text == at), "offsets point at the stored text: {entities:?}");
    for brand in ["Google", "Samsung", "Tesla", "Berlin"] {
        assert!(entities.iter().any(|(_, text, _)| text.contains(brand)), "{brand} is still an entity: {entities:?}");
    }
    // Nothing redacted is searchable.
    let index = murmur_search::SearchIndex::open(
        &work.path().join("index"),
        murmur_search::Access::Read,
        murmur_search::IndexOptions::default(),
    )
    .expect("index");
    for gone in ["obama", "merkel", "press", "555"] {
        let query = murmur_search::SearchQuery { q: gone.into(), limit: 5, ..murmur_search::SearchQuery::default() };
        let found = index.search(&query).expect("search");
        assert_eq!(found.total, 0, "{gone} is still in the index");
    }
}
