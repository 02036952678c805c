//! The walking skeleton end to end on real components: the tansu broker (infra/kafka.sh), Postgres
//! (infra/postgres.sh), the real all-MiniLM-L6-v2 weights, and the `murmur worker`, `murmur sink` and
//! `murmur serve` processes talking over Kafka and HTTP.
//!
//! 1,000 valid comments and 50 malformed ones go in; Postgres must then hold exactly the 1,000 with
//! embeddings, the index must find them by their words, the API must return them, and the DLQ must hold the
//! 50, unchanged, with reasons. Producing the 1,000 again must change no count.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    consumer, create_topics, fresh_database, get_json, headers_of, keyed, produce, producer, role_env, wait_committed,
    Processes,
};
use murmur_store::PackedVector;
use rdkafka::consumer::Consumer;
use rdkafka::Message;
use serde_json::{json, Value};
use sqlx::PgPool;

const VALID: usize = 1000;
const PARTITIONS: i32 = 4;
/// The serve process's write key (for `POST /v1/enrich`).
const WRITE_KEY: &str = "pipeline-test-write-key";

/// Realistic comments, each with words the searches below count exactly.
fn valid_comment(i: usize) -> Value {
    const TEMPLATES: [&str; 5] = [
        "The battery on my phone dies before lunch, order {i}",
        "Customer service at Samsung never answered my emails about ticket {i}",
        "Love the new camera, photos look amazing (#{i}) 📸",
        "Shipping to Montréal took three weeks for parcel {i}, très décevant",
        "Screen cracked on day one, unit {i}, so disappointed",
    ];
    json!({
        "id": format!("c{i}"),
        "source": if i % 2 == 0 { "twitter" } else { "app-store" },
        "author": format!("user{}", i % 37),
        "text": TEMPLATES[i % TEMPLATES.len()].replace("{i}", &format!("zz{i}marker")),
        "created_at": format!("2026-03-{:02}T{:02}:{:02}:00Z", 1 + i % 28, i % 24, i % 60),
        "lang": "en",
        "tags": ["acme", if i % 3 == 0 { "phone" } else { "laptop" }],
        "metadata": {"n": i},
    })
}

/// 50 malformed messages: broken JSON, missing or empty text, wrong types, invalid UTF-8, bad values.
fn malformed_messages() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..50 {
        let ok = format!(r#""id":"m{i}","source":"twitter","created_at":"2026-03-01T00:00:00Z""#);
        let message: Vec<u8> = match i % 10 {
            0 => format!(r#"{{{ok},"text":"unterminated"#).into_bytes(),
            1 => format!("{{{ok}}}").into_bytes(),
            2 => format!(r#"{{{ok},"text":""}}"#).into_bytes(),
            3 => format!(r#"{{"id":{i},"source":"twitter","text":"numeric id","created_at":"2026-03-01T00:00:00Z"}}"#)
                .into_bytes(),
            4 => format!(r#"{{{ok},"text":"tags as a string","tags":"acme"}}"#).into_bytes(),
            5 => {
                let mut bytes = format!(r#"{{{ok},"text":"bad bytes "#).into_bytes();
                bytes.extend_from_slice(&[0xC3, 0x28, 0xFF]);
                bytes.extend_from_slice(br#""}"#);
                bytes
            }
            6 => format!(r#"{{"id":"m{i}","source":"twitter","text":"no date","created_at":12345}}"#).into_bytes(),
            7 => format!("not json at all {i}").into_bytes(),
            8 => format!(r#"{{{ok},"text":"   "}}"#).into_bytes(),
            _ => format!(
                r#"{{"id":"m{i}","source":"Not A Slug","text":"bad source","created_at":"2026-03-01T00:00:00Z"}}"#
            )
            .into_bytes(),
        };
        out.push(message);
    }
    out
}

/// A message read back from a topic.
struct Consumed {
    payload: Vec<u8>,
    headers: HashMap<String, String>,
    partition: i32,
    offset: i64,
}

/// Reads `count` messages of `topic` from the start, by a group of its own.
async fn read_topic(topic: &str, group: &str, count: usize) -> Vec<Consumed> {
    let reader = consumer(group);
    reader.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while out.len() < count {
        assert!(Instant::now() < deadline, "only {} of {count} messages on {topic}", out.len());
        let Ok(message) = tokio::time::timeout(Duration::from_secs(5), reader.recv()).await else { continue };
        let message = message.expect("receive");
        let headers = headers_of(&message);
        out.push(Consumed {
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
            partition: message.partition(),
            offset: message.offset(),
        });
    }
    // Nothing beyond what was expected.
    if let Ok(Ok(extra)) = tokio::time::timeout(Duration::from_secs(3), reader.recv()).await {
        panic!("unexpected extra message on {topic} at offset {}", extra.offset());
    }
    out
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_flow_from_kafka_to_postgres_index_and_api() {
    let run = format!("it{}x{}", std::process::id(), chrono::Utc::now().timestamp_millis());
    let topics = [format!("{run}.comments"), format!("{run}.enriched"), format!("{run}.dlq")];
    create_topics(&topics, PARTITIONS).await;

    let database_url = fresh_database("it_pipeline").await;
    let work = tempfile::tempdir().expect("tempdir");
    let http_port = TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let env = role_env(&run, &topics, &database_url, &work.path().join("index"), http_port);
    let mut procs = Processes(Vec::new());
    // Each role with an admin port of its own (/metrics, /healthz, /readyz).
    let free_port = || TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let admin = [("worker", free_port()), ("sink", free_port())];
    for (role, port) in admin {
        let mut role_env = env.clone();
        role_env.push(("MURMUR_ADMIN_LISTEN", format!("127.0.0.1:{port}")));
        procs.spawn(role, &[role], &role_env, work.path());
    }

    let producer = producer();
    let valid = keyed(&(0..VALID).map(valid_comment).collect::<Vec<_>>());
    let malformed: Vec<(Option<String>, Vec<u8>)> = malformed_messages().into_iter().map(|m| (None, m)).collect();
    let mut mixed = valid.clone();
    mixed.extend(malformed.iter().cloned());
    let produced = produce(&producer, &topics[0], &mixed).await;

    // The worker has handled everything once its committed offsets pass the last produced ones.
    wait_committed(&format!("{run}-worker"), &topics[0], &produced, "the worker", &mut procs).await;
    let enriched = read_topic(&topics[1], &format!("{run}-check1"), VALID).await;
    let enriched_last = last_offsets(&enriched);
    wait_committed(&format!("{run}-sink"), &topics[1], &enriched_last, "the sink", &mut procs).await;

    // Postgres holds exactly the valid comments, with unit-length 384-d embeddings and pseudonymous authors.
    let pool = PgPool::connect(&database_url).await.expect("connect");
    assert_eq!(count(&pool, "SELECT count(*) FROM comments").await, VALID as i64);
    assert_eq!(count(&pool, "SELECT count(*) FROM comments WHERE model = 'all-MiniLM-L6-v2'").await, VALID as i64);
    let vectors: Vec<PackedVector> =
        sqlx::query_scalar("SELECT embedding FROM comments").fetch_all(&pool).await.expect("embeddings");
    assert_eq!(vectors.len(), VALID);
    for PackedVector(v) in &vectors {
        assert_eq!(v.len(), 384);
        let norm: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        assert!((norm - 1.0).abs() < 1e-3, "embeddings are L2-normalised: |v|² = {norm}");
    }
    assert_eq!(count(&pool, "SELECT count(*) FROM comments WHERE author LIKE 'user%'").await, 0, "raw author stored");
    assert_eq!(count(&pool, "SELECT count(DISTINCT author) FROM comments").await, 2 * 37, "pseudonyms per source");
    assert_eq!(count(&pool, "SELECT count(*) FROM comments WHERE id LIKE 'm%'").await, 0);
    let with_sentiment = "SELECT count(*) FROM comments WHERE sentiment IS NOT NULL \
        AND abs(sentiment_negative + sentiment_neutral + sentiment_positive - 1) < 1e-3";
    assert_eq!(count(&pool, with_sentiment).await, VALID as i64, "every comment has a sentiment");
    assert_eq!(count(&pool, "SELECT count(*) FROM comments WHERE entities IS NOT NULL").await, VALID as i64);
    // Each comment's mentions, as rows: (comment, label, name, text, start, end).
    let mentions = "(SELECT c.id, c.text AS comment, m->>'label' AS label, m->>'name' AS name, m->>'text' AS text, \
        (m->>'start')::int AS start_char, (m->>'end')::int AS end_char \
        FROM comments c, jsonb_array_elements(c.entities) m) e";
    let samsung =
        count(&pool, &format!("SELECT count(DISTINCT id) FROM {mentions} WHERE label = 'ORG' AND name = 'samsung'"))
            .await;
    assert!(samsung >= (VALID / 5) as i64 * 9 / 10, "Samsung is an ORG in the service template: {samsung}");
    let montreal = format!(
        "SELECT count(DISTINCT id) FROM {mentions} \
         WHERE label = 'LOC' AND substr(comment, start_char + 1, end_char - start_char) = 'Montréal'"
    );
    let montreal = count(&pool, &montreal).await;
    assert!(montreal >= (VALID / 5) as i64 * 9 / 10, "Montréal is a LOC at its character offsets: {montreal}");
    let off_span =
        format!("SELECT count(*) FROM {mentions} WHERE substr(comment, start_char + 1, end_char - start_char) <> text");
    assert_eq!(count(&pool, &off_span).await, 0, "every span points at its text (Postgres counts characters too)");

    // The DLQ holds the 50 malformed messages, byte for byte, each with a reason and its origin.
    let dead = read_topic(&topics[2], &format!("{run}-dlq"), malformed.len()).await;
    let expected: HashSet<&[u8]> = malformed.iter().map(|(_, m)| m.as_slice()).collect();
    let got: HashSet<&[u8]> = dead.iter().map(|m| m.payload.as_slice()).collect();
    assert_eq!(got, expected, "DLQ holds exactly the malformed messages, unchanged");
    for m in &dead {
        let reason = m.headers.get("murmur-reason").map(String::as_str).unwrap_or("");
        assert!(!reason.is_empty(), "no reason for {:?}", String::from_utf8_lossy(&m.payload));
        assert!(m.headers.get("murmur-origin").is_some_and(|o| o.starts_with(&topics[0])));
    }
    let reasons: Vec<&str> = dead.iter().filter_map(|m| m.headers.get("murmur-reason").map(String::as_str)).collect();
    for needle in ["UTF-8", "missing field `text`", "text is empty", "invalid type", "source"] {
        assert!(reasons.iter().any(|r| r.contains(needle)), "no DLQ reason mentions {needle:?}: {reasons:?}");
    }

    // The worker's and the sink's admin ports say what each did, as the broker and Postgres do.
    let plain = reqwest::Client::new();
    for (role, port) in admin {
        let base = format!("http://127.0.0.1:{port}");
        for probe in ["healthz", "readyz"] {
            let status = plain.get(format!("{base}/{probe}")).send().await.expect("admin port").status();
            assert_eq!(status.as_u16(), 200, "{role} /{probe}");
        }
        let text = plain.get(format!("{base}/metrics")).send().await.expect("metrics").text().await.expect("text");
        let expected: &[(&str, usize)] = match role {
            "worker" => &[
                ("murmur_consumed_messages_total", mixed.len()),
                ("murmur_enriched_comments_total", VALID),
                ("murmur_dead_lettered_messages_total", malformed.len()),
            ],
            _ => &[("murmur_consumed_messages_total", VALID), ("murmur_stored_comments_total", VALID)],
        };
        for (name, value) in expected {
            let line = format!(r#"{name}{{role="{role}"}} {value}"#);
            assert!(text.lines().any(|l| l == line), "{role}: {line} in\n{text}");
        }
        assert!(text.contains(&format!(r#"murmur_process_resident_memory_bytes{{role="{role}"}} "#)), "{text}");
        // Batch sizes add up to what the stage consumed; each stage's own latency histograms and its lag.
        let (consumed, topic) = if role == "worker" { (mixed.len(), &topics[0]) } else { (VALID, &topics[1]) };
        let sum = format!(r#"murmur_batch_messages_sum{{role="{role}"}} {consumed}"#);
        assert!(text.lines().any(|l| l == sum), "{role}: {sum} in\n{text}");
        let lag = format!(r#"murmur_consumer_lag_messages{{group="{run}-{role}",role="{role}",topic="{topic}"}} "#);
        assert!(text.contains(&lag), "{role}: {lag} in\n{text}");
        let latencies: &[&str] = match role {
            "worker" => &[r#"murmur_enrich_batch_duration_seconds_count{role="worker"}"#],
            _ => &[
                r#"murmur_store_write_duration_seconds_count{role="sink",store="postgres"}"#,
                r#"murmur_store_write_duration_seconds_count{role="sink",store="tantivy"}"#,
            ],
        };
        for series in latencies {
            let count = text
                .lines()
                .find_map(|l| l.strip_prefix(series))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{role}: no {series} in\n{text}"));
            assert!(count >= 1, "{series} counted no batch");
        }
    }

    // The API, a separate process reading the index the sink wrote, finds them by their words.
    // A one-request queue, so that admission control can be seen.
    let mut serve_env = env.clone();
    serve_env.push(("MURMUR_ENRICH_QUEUE", "1".into()));
    serve_env.push(("MURMUR_API_KEYS", format!("write:{WRITE_KEY}")));
    procs.spawn("serve", &["serve"], &serve_env, work.path());
    let api = format!("http://127.0.0.1:{http_port}");
    let client = common::client_with_key(WRITE_KEY);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        procs.assert_running();
        if let Ok(response) = client.get(format!("{api}/readyz")).send().await {
            if response.status().is_success() {
                let body: Value = response.json().await.expect("json");
                if body["indexed"] == VALID {
                    break;
                }
            }
        }
        assert!(Instant::now() < deadline, "API not ready with {VALID} indexed comments");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Both stages have committed everything: /metrics reads their consumer lag from the broker.
    let metrics = client.get(format!("{api}/metrics")).send().await.expect("metrics").text().await.expect("text");
    for (group, topic) in [(format!("{run}-worker"), &topics[0]), (format!("{run}-sink"), &topics[1])] {
        let line = format!(r#"murmur_consumer_lag_messages{{group="{group}",topic="{topic}"}} 0"#);
        assert!(metrics.contains(&line), "{line} in {metrics}");
        let committed = format!(r#"murmur_consumer_committed_messages{{group="{group}",topic="{topic}"}} "#);
        assert!(metrics.contains(&committed), "{committed} in {metrics}");
    }
    assert!(metrics.contains(&format!(r#"murmur_postgres_comments {VALID}"#)), "{metrics}");
    let (status, battery) = get_json(&client, &format!("{api}/v1/search?q=battery&limit=5")).await;
    assert_eq!(status, 200);
    assert_eq!(battery["total"], VALID / 5, "every battery comment, and only those");
    assert!(battery["hits"][0]["text"].as_str().unwrap_or("").contains("battery"));
    assert!(battery["hits"][0]["snippet"].as_str().unwrap_or("").contains("<b>battery</b>"), "{battery}");
    let (_, exact) = get_json(&client, &format!("{api}/v1/search?q=zz777marker")).await;
    assert_eq!(exact["total"], 1);
    assert_eq!(exact["hits"][0]["id"], "c777");
    assert_eq!(exact["hits"][0]["source"], "app-store");
    let (_, filtered) = get_json(&client, &format!("{api}/v1/search?q=service&source=twitter")).await;
    assert_eq!(filtered["total"], VALID / 10, "source filter");
    let window = "from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z";
    let (_, dated) =
        get_json(&client, &format!("{api}/v1/search?q=zz0marker%20zz28marker%20zz29marker&{window}")).await;
    assert_eq!(dated["total"], 2, "time filter keeps day 1 (c0, c28), drops day 2 (c29)");

    // Sentiment is a filter: it partitions the hits, and the obvious templates get the obvious class.
    let share = |q: &'static str, class: &'static str| {
        let (client, api) = (client.clone(), api.clone());
        async move {
            let mut totals = HashMap::new();
            for label in ["negative", "neutral", "positive"] {
                let (status, body) = get_json(&client, &format!("{api}/v1/search?q={q}&sentiment={label}")).await;
                assert_eq!(status, 200);
                totals.insert(label, body["total"].as_u64().unwrap_or(0));
            }
            let all: u64 = totals.values().sum();
            assert_eq!(all, (VALID / 5) as u64, "{q}: sentiment filters partition the hits");
            totals[class] as f64 / all as f64
        }
    };
    assert!(share("amazing", "positive").await >= 0.9, "camera praise is positive");
    assert!(share("cracked", "negative").await >= 0.9, "a cracked screen is negative");
    let (status, _) = get_json(&client, &format!("{api}/v1/search?q=x&sentiment=angry")).await;
    assert_eq!(status, 400, "unknown sentiment is a bad request");

    // Entities are a filter too: by type and name, by name alone, by type alone.
    let samsung_hits = |filter: &'static str| {
        let (client, api) = (client.clone(), api.clone());
        async move {
            let (status, body) = get_json(&client, &format!("{api}/v1/search?q=service&entity={filter}")).await;
            assert_eq!(status, 200, "{body}");
            body["total"].as_u64().unwrap_or(0)
        }
    };
    let by_name = samsung_hits("ORG:samsung").await;
    assert_eq!(by_name as i64, samsung, "the index agrees with Postgres");
    assert_eq!(samsung_hits("Samsung").await, by_name, "a bare name matches any type");
    assert!(samsung_hits("ORG").await >= by_name);
    let (_, counted) = get_json(&client, &format!("{api}/v1/search?q=service&facets=true&limit=1")).await;
    let sentiments: u64 = ["negative", "neutral", "positive"]
        .iter()
        .map(|l| counted["facets"]["sentiment"][l].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(sentiments, (VALID / 5) as u64, "sentiment facets count every match, not the page");
    let top = &counted["facets"]["entities"][0];
    assert_eq!((&top["label"], &top["name"]), (&json!("ORG"), &json!("samsung")), "{counted}");
    assert_eq!(top["comments"].as_i64(), Some(samsung), "entity facets agree with Postgres");
    let (_, none) = get_json(&client, &format!("{api}/v1/search?q=battery&entity=ORG:samsung")).await;
    assert_eq!(none["total"], 0, "battery comments do not mention Samsung");
    let (status, _) = get_json(&client, &format!("{api}/v1/search?q=x&entity=%20")).await;
    assert_eq!(status, 400, "a blank entity filter is a bad request");

    let (status, comment) = get_json(&client, &format!("{api}/v1/comments/app-store/c777?embedding=true")).await;
    assert_eq!(status, 200);
    assert_eq!(comment["text"], valid_comment(777)["text"]);
    assert_eq!(comment["tags"], json!(["acme", "phone"]));
    assert_eq!(comment["enrichment"]["model"], "all-MiniLM-L6-v2");
    assert!(comment["enrichment"]["sentiment"]["label"].is_string());
    let (_, service) = get_json(&client, &format!("{api}/v1/comments/app-store/c1")).await;
    let entities = service["enrichment"]["entities"].as_array().expect("entities listed");
    let text: Vec<char> = service["text"].as_str().unwrap_or("").chars().collect();
    for e in entities {
        let (start, end) = (e["start"].as_u64().unwrap_or(0) as usize, e["end"].as_u64().unwrap_or(0) as usize);
        assert_eq!(text[start..end].iter().collect::<String>(), e["text"].as_str().unwrap_or(""), "{e}");
    }
    assert_eq!(comment["enrichment"]["embedding"].as_array().map(Vec::len), Some(384));
    let (status, missing) = get_json(&client, &format!("{api}/v1/comments/app-store/nope")).await;
    assert_eq!((status, missing["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, bad) = get_json(&client, &format!("{api}/v1/search?q=text:(unclosed")).await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("bad_request")));
    let (status, _) = get_json(&client, &format!("{api}/v1/search?q=x&limit=nope")).await;
    assert_eq!(status, 400);

    // Semantic search embeds the query with the same encoder: a paraphrase finds the shipping complaints.
    let late = "q=my%20package%20arrived%20really%20late";
    let (status, semantic) =
        get_json(&client, &format!("{api}/v1/search?{late}&mode=semantic&limit=5&explain=true")).await;
    assert_eq!(status, 200, "{semantic}");
    assert_eq!(semantic["ann"], "exact", "1,000 comments are searched exactly");
    assert_eq!(semantic["total"], VALID, "every comment has a similarity");
    for hit in semantic["hits"].as_array().expect("hits") {
        assert!(hit["text"].as_str().unwrap_or("").starts_with("Shipping to Montréal"), "{hit}");
        assert!(hit["explain"]["similarity"].as_f64().unwrap_or(0.0) > 0.3, "{hit}");
    }
    let (_, words) = get_json(&client, &format!("{api}/v1/search?{late}&limit=5")).await;
    assert!(
        !words["hits"][0]["text"].as_str().unwrap_or("").starts_with("Shipping"),
        "BM25 matches the words (my), not the meaning: {words}"
    );
    let (status, hybrid) =
        get_json(&client, &format!("{api}/v1/search?{late}&mode=hybrid&limit=5&source=twitter")).await;
    assert_eq!(status, 200, "{hybrid}");
    assert!(hybrid["hits"].as_array().expect("hits").iter().all(|h| h["source"] == "twitter"), "filters apply");
    let (status, bad) = get_json(&client, &format!("{api}/v1/search?q=text:(unclosed&mode=hybrid")).await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("bad_request")), "{bad}");
    let (status, _) = get_json(&client, &format!("{api}/v1/search?q=x&mode=fuzzy")).await;
    assert_eq!(status, 400, "unknown mode");

    // Cursor pagination: two pages of 5 are the first 10, in order; a cursor only pages its own search.
    let (_, ten) = get_json(&client, &format!("{api}/v1/search?{late}&mode=semantic&limit=10")).await;
    let (_, first) = get_json(&client, &format!("{api}/v1/search?{late}&mode=semantic&limit=5")).await;
    let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, second) = get_json(&client, &format!("{api}/v1/search?{late}&mode=semantic&limit=5&cursor={cursor}")).await;
    let page_ids = |page: &Value| -> Vec<String> {
        page["hits"].as_array().into_iter().flatten().map(|h| h["id"].as_str().unwrap_or("").to_owned()).collect()
    };
    assert_eq!([page_ids(&first), page_ids(&second)].concat(), page_ids(&ten));
    let (status, _) = get_json(&client, &format!("{api}/v1/search?q=battery&cursor={cursor}")).await;
    assert_eq!(status, 400, "another query's cursor");
    let (_, last) = get_json(&client, &format!("{api}/v1/search?q=zz777marker")).await;
    assert!(last["next_cursor"].is_null(), "no page after the last");
    let page = client.get(format!("{api}/")).send().await.expect("dashboard");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.headers().contains_key("content-security-policy"));
    assert!(page.text().await.expect("html").contains("/dashboard/app.js"));
    let script = client.get(format!("{api}/dashboard/app.js")).send().await.expect("dashboard script");
    let etag = script.headers().get("etag").cloned().expect("an ETag");
    assert!(script.text().await.expect("js").contains("/v1/search"));
    let again = client.get(format!("{api}/dashboard/app.js")).header("if-none-match", etag).send().await.expect("js");
    assert_eq!(again.status().as_u16(), 304, "an unchanged script is not sent again");
    let (status, _) = get_json(&client, &format!("{api}/dashboard/nothing.js")).await;
    assert_eq!(status, 404);

    // POST /v1/enrich scores text without storing it, through the same models.
    let post = |body: Value, query: &'static str| {
        let (client, api) = (client.clone(), api.clone());
        async move {
            let request = client.post(format!("{api}/v1/enrich{query}")).header("x-api-key", WRITE_KEY);
            let response = request.json(&body).send().await.expect("answers");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON body"))
        }
    };
    let texts = json!({"texts": ["I love my new Pixel, Google nailed it", "Worst purchase ever, it broke in a day"]});
    let (status, scored) = post(texts.clone(), "?embedding=true").await;
    assert_eq!(status, 200, "{scored}");
    assert_eq!(scored["results"][0]["sentiment"]["label"], "positive");
    let found = scored["results"][0]["entities"].as_array().cloned().unwrap_or_default();
    assert!(
        found.iter().any(|e| e["label"] == "ORG" && e["text"] == "Google" && e["start"] == 21 && e["end"] == 27),
        "Google is an ORG at 21..27: {found:?}"
    );
    assert_eq!(scored["results"][1]["sentiment"]["label"], "negative");
    assert_eq!(scored["results"][0]["embedding"].as_array().map(Vec::len), Some(384));
    let (_, judged) = post(json!({"texts": ["the battery dies fast but the screen is gorgeous"]}), "").await;
    let aspects: Vec<(String, String, u64, u64)> = judged["results"][0]["aspects"]
        .as_array()
        .expect("aspects")
        .iter()
        .map(|a| {
            let field = |k: &str| a[k].as_u64().unwrap_or(u64::MAX);
            (
                a["name"].as_str().unwrap_or("").to_owned(),
                a["sentiment"]["label"].as_str().unwrap_or("").to_owned(),
                field("start"),
                field("end"),
            )
        })
        .collect();
    assert_eq!(
        aspects,
        vec![("battery".into(), "negative".into(), 4, 11), ("screen".into(), "positive".into(), 30, 36)],
        "{judged}"
    );
    // explain=true: each word's weight, offsets in characters; the polar words weigh most.
    let (status, why) =
        post(json!({"texts": ["Shipping to Montréal 📦 was a disaster, never again"]}), "?explain=true").await;
    assert_eq!(status, 200, "{why}");
    let sentiment = &why["results"][0]["explanation"]["sentiment"];
    assert_eq!(
        (&why["results"][0]["explanation"]["method"], &sentiment["label"]),
        (&json!("sampled-occlusion"), &json!("negative"))
    );
    let chars: Vec<char> = "Shipping to Montréal 📦 was a disaster, never again".chars().collect();
    let mut weighed: Vec<(String, f64)> = Vec::new();
    for w in sentiment["words"].as_array().expect("words") {
        let (start, end) = (w["start"].as_u64().unwrap_or(0) as usize, w["end"].as_u64().unwrap_or(0) as usize);
        assert_eq!(chars[start..end].iter().collect::<String>(), w["text"].as_str().unwrap_or(""), "{w}");
        weighed.push((w["text"].as_str().unwrap_or("").to_owned(), w["weight"].as_f64().unwrap_or(f64::NAN)));
    }
    assert_eq!(weighed.len(), 10, "every word is weighed: {weighed:?}");
    weighed.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(weighed[0].0, "disaster", "{weighed:?}");
    assert!(why["results"][0]["explanation"]["emotion"]["label"].is_string(), "{why}");
    let (status, body) = post(json!({ "texts": vec!["fine"; 9] }), "?explain=true").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")), "at most 8 explained texts");
    // A stored comment is explained on lookup, by the served model.
    let (status, looked) = get_json(&client, &format!("{api}/v1/comments/app-store/c1?explain=true")).await;
    assert_eq!(status, 200, "{looked}");
    let label = &looked["explanation"]["sentiment"];
    assert_eq!(label["label"], looked["enrichment"]["sentiment"]["label"], "the same model reads it the same way");
    let words: Vec<&str> =
        label["words"].as_array().expect("words").iter().filter_map(|w| w["text"].as_str()).collect();
    assert!(words.contains(&"answered") && words.contains(&"Samsung"), "{words:?}");
    assert_eq!(looked["enrichment"]["language"]["code"], "en", "the detected language is stored: {looked}");
    assert!(looked["enrichment"]["skipped"].is_null());
    // Languages the heads never learned: detected, embedded, and no sentiment, emotion, entities or aspects.
    let foreign = json!({"texts": [
        "Le service client de Samsung ne répond jamais, c'est vraiment décevant",
        "我很喜欢这个手机，但是电池不好。",
        "The Samsung support in Montréal never answered",
    ]});
    let (status, read) = post(foreign, "?embedding=true").await;
    assert_eq!(status, 200, "{read}");
    for (k, code) in [(0, "fr"), (1, "zh")] {
        let result = &read["results"][k];
        assert_eq!((&result["language"]["code"], &result["skipped"]), (&json!(code), &json!("language")), "{result}");
        for field in ["sentiment", "emotion", "entities", "aspects"] {
            assert!(result[field].is_null(), "{code}: {field} is absent, not guessed: {result}");
        }
        assert_eq!(result["embedding"].as_array().map(Vec::len), Some(384), "still embedded");
    }
    let english = &read["results"][2];
    assert_eq!(english["language"]["code"], "en", "{english}");
    assert!(english.get("skipped").is_none() && english["sentiment"]["label"].is_string(), "{english}");
    let (_, plain) = get_json(&client, &format!("{api}/v1/comments/app-store/c1")).await;
    assert!(plain.get("explanation").is_none(), "explanations only when asked for");
    let (_, lean) = post(texts, "").await;
    assert!(lean["results"][0].get("embedding").is_none(), "embedding only when asked for");
    for bad in [json!({"texts": []}), json!({"text": "x"}), json!({"texts": ["  "]}), json!({"texts": vec!["x"; 65]})] {
        let (status, body) = post(bad.clone(), "").await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")), "{bad}");
    }
    let broken = client.post(format!("{api}/v1/enrich")).header("x-api-key", WRITE_KEY);
    let broken = broken.header("content-type", "application/json").body("{oops");
    assert_eq!(broken.send().await.expect("answers").status().as_u16(), 400);
    // More concurrent full requests than the queue holds: the surplus is refused with 429, nothing else fails.
    let long: Vec<String> =
        (0..64).map(|i| format!("{} {i}", "the battery drains overnight and support is slow;".repeat(6))).collect();
    let burst = (0..12).map(|_| post(json!({ "texts": long }), ""));
    let statuses: Vec<u16> = futures::future::join_all(burst).await.into_iter().map(|(s, _)| s).collect();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert!(statuses.contains(&429) && statuses.contains(&200), "admission control: {statuses:?}");

    // Producing the same 1,000 again changes no count anywhere.
    let replayed = produce(&producer, &topics[0], &valid).await;
    wait_committed(&format!("{run}-worker"), &topics[0], &replayed, "the worker (replay)", &mut procs).await;
    let enriched = read_topic(&topics[1], &format!("{run}-check2"), 2 * VALID).await;
    wait_committed(&format!("{run}-sink"), &topics[1], &last_offsets(&enriched), "the sink (replay)", &mut procs).await;
    assert_eq!(count(&pool, "SELECT count(*) FROM comments").await, VALID as i64);
    assert_eq!(count(&pool, "SELECT count(*) FROM comments WHERE embedding IS NOT NULL").await, VALID as i64);
    let rollup_total = "SELECT sum(comments)::int8 FROM rollups WHERE kind = 'all' AND grain = 'day'";
    common::pipeline::fold_rollups(&pool).await;
    assert_eq!(
        count(&pool, rollup_total).await,
        VALID as i64,
        "replayed comments are not counted twice in the rollups"
    );
    read_topic(&topics[2], &format!("{run}-dlq2"), malformed.len()).await;
    tokio::time::sleep(Duration::from_secs(1)).await; // the API's reader reloads on the index commit
    let (_, ready) = get_json(&client, &format!("{api}/readyz")).await;
    assert_eq!(ready["indexed"], VALID);
    let (_, battery_again) = get_json(&client, &format!("{api}/v1/search?q=battery")).await;
    assert_eq!(battery_again["total"], VALID / 5);

    // Reindex: with the sink stopped and the index folder dropped, `murmur reindex` rebuilds it from Postgres;
    // the running API switches to it and answers the same.
    let answers = || {
        let (client, api) = (client.clone(), api.clone());
        async move {
            let mut all = Vec::new();
            for query in
                ["q=battery&limit=100", "q=service&limit=100&facets=true", &format!("{late}&mode=semantic&limit=20")]
            {
                let mut ids = Vec::new();
                let mut cursor = String::new();
                loop {
                    let (status, page) = get_json(&client, &format!("{api}/v1/search?{query}{cursor}")).await;
                    assert_eq!(status, 200, "{page}");
                    ids.extend(
                        page["hits"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|h| h["id"].as_str().unwrap_or("").to_owned()),
                    );
                    match page["next_cursor"].as_str() {
                        Some(next) if !query.contains("semantic") => cursor = format!("&cursor={next}"),
                        _ => {
                            all.push((page["total"].clone(), page["facets"].clone()));
                            break;
                        }
                    }
                }
                // BM25 ties (same template, same length) may come in another order; the set is what must hold.
                if !query.contains("semantic") {
                    ids.sort();
                }
                all.push((json!(ids), Value::Null));
            }
            all
        }
    };
    let before = answers().await;
    procs.stop("sink");
    std::fs::remove_dir_all(work.path().join("index")).expect("drop the index folder");
    let status = Command::new(env!("CARGO_BIN_EXE_murmur"))
        .arg("reindex")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .status()
        .expect("run murmur reindex");
    assert!(status.success(), "murmur reindex failed: {status}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, ready) = get_json(&client, &format!("{api}/readyz")).await;
        if ready["indexed"] == VALID && ready["vectors"]["stored"] == VALID {
            break;
        }
        assert!(Instant::now() < deadline, "the API never switched to the rebuilt index: {ready}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(answers().await, before, "the rebuilt index answers the same");
}

fn last_offsets(messages: &[Consumed]) -> HashMap<i32, i64> {
    let mut last = HashMap::new();
    for m in messages {
        let entry = last.entry(m.partition).or_insert(m.offset);
        *entry = (*entry).max(m.offset);
    }
    last
}
