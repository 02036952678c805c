//! The API over real HTTP, real Postgres and a real index: the OpenAPI document against the routes, API keys
//! on every write and admin route, trend answers against raw counts, metrics, and a scheduled report that
//! fires, is stored, listed, downloaded, rendered by a headless browser and delivered to a webhook that fails
//! once.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, DurationRound, Utc};
use murmur_api::{ApiKeys, AppState, RateLimit, RateLimiter};
use murmur_core::testing::Fixture;
use murmur_core::{EnrichedComment, EntityLabel, SentimentLabel};
use murmur_search::{Access, IndexOptions, SearchIndex};
use murmur_trends::{Alerter, AlerterOptions, Scheduler, SchedulerOptions, WebhookOptions};
use serde_json::{json, Value};

const ADMIN_KEY: &str = "admin-key-0123456789";
const READ_KEY: &str = "read-key-0123456789";
const WRITE_KEY: &str = "write-key-0123456789";

/// 600 comments over the last three days: tags alternate pixel / iphone, every third mentions Google.
fn comments(now: DateTime<Utc>) -> Vec<EnrichedComment> {
    (0..600)
        .map(|i: i64| {
            let tag = if i % 2 == 0 { "pixel" } else { "iphone" };
            let label = [SentimentLabel::Negative, SentimentLabel::Neutral, SentimentLabel::Positive][(i % 3) as usize];
            let mut embedding = vec![0.1_f32; 4];
            embedding[(i % 4) as usize] = 1.0;
            let norm = embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
            let text = format!("comment {i} about the {tag} battery");
            let fixture = Fixture::new("twitter", format!("t{i}"), text, now - Duration::minutes(7 * i + 3))
                .tags([tag])
                .sentiment(label)
                .embedding(embedding.into_iter().map(|x| x / norm).collect());
            if i % 3 == 0 { fixture.mention(EntityLabel::Org, "Google") } else { fixture }.build()
        })
        .collect()
}

const WEBHOOK_SECRET: &str = "webhook-secret";

/// A webhook receiver checking signatures against [`WEBHOOK_SECRET`] (see `murmur_trends::testing`).
async fn webhook_receiver(failures: usize) -> (SocketAddr, Arc<Mutex<Vec<Value>>>) {
    murmur_trends::testing::webhook_receiver(WEBHOOK_SECRET.as_bytes(), failures).await
}

struct Api {
    base: String,
    client: reqwest::Client,
    /// Sent with `get` and `text` (servers with keys need one for reads).
    key: Option<&'static str>,
}

/// Serves `state` on a free local port; `get` and `text` send `key`.
fn serve(state: AppState, key: Option<&'static str>) -> Api {
    let (server, addr) = murmur_api::bind(state, "127.0.0.1:0".parse().expect("addr"), 2).expect("bind");
    tokio::spawn(server);
    Api { base: format!("http://{addr}"), client: reqwest::Client::new(), key }
}

/// A scheduler polling every 200 ms whose webhook bodies are signed with [`WEBHOOK_SECRET`], making
/// `attempts` with waits doubling from `backoff`.
fn signed_scheduler(state: &AppState, attempts: u32, backoff: StdDuration) -> Scheduler {
    let options =
        SchedulerOptions { tick: StdDuration::from_millis(200), webhooks: signed_webhooks(attempts, backoff) };
    Scheduler::new(state.trends.clone(), options).expect("scheduler")
}

/// Webhook calls signed with [`WEBHOOK_SECRET`], `attempts` of them with waits doubling from `backoff`.
fn signed_webhooks(attempts: u32, backoff: StdDuration) -> WebhookOptions {
    WebhookOptions { attempts, backoff, secret: Some(WEBHOOK_SECRET.as_bytes().to_vec()), ..WebhookOptions::default() }
}

impl Api {
    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("get", path, self.key, None).await
    }

    /// A GET whose answer is not JSON: (status, content type, body).
    async fn text(&self, path: &str) -> (u16, String, String) {
        let (status, ctype, body) = self.send("get", path, self.key, None).await;
        (status, ctype, String::from_utf8(body).expect("a UTF-8 body"))
    }

    async fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let (status, _, body) = self.send(method, path, key, body).await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Every request of these tests goes through here, and every answer is checked against the OpenAPI
    /// document ([`conforms`]).
    async fn send(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, String, Vec<u8>) {
        let verb = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let mut request = self.client.request(verb, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let ctype = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = response.bytes().await.expect("body").to_vec();
        conforms(method, path, status, &ctype, &body);
        (status, ctype, body)
    }
}

/// Panics unless the answer is one the OpenAPI document describes: for a documented operation, its status is
/// listed, its media type is one listed for that status, and a JSON body validates against that schema; any
/// other JSON error (an unknown route) is the documented error body.
fn conforms(method: &str, path: &str, status: u16, content_type: &str, body: &[u8]) {
    let document = murmur_api::openapi::document();
    let media = content_type.split(';').next().unwrap_or("").trim();
    let route = path.split('?').next().unwrap_or(path);
    let operation = operation_for(document, method, route);
    let schema = match operation {
        Some((template, operation)) => {
            let response = &operation["responses"][status.to_string()];
            assert!(response.is_object(), "{method} {template}: answered {status}, which the document does not list");
            let Some(content) = response["content"].as_object() else {
                assert!(body.is_empty(), "{method} {template} {status}: a body where the document lists none");
                return;
            };
            let entry = content.get(media).unwrap_or_else(|| {
                panic!("{method} {template} {status}: {media:?} is not among {:?}", content.keys().collect::<Vec<_>>())
            });
            entry["schema"].clone()
        }
        None if media == "application/json" && status >= 400 => json!({ "$ref": "#/components/schemas/ErrorBody" }),
        None => return,
    };
    if media != "application/json" {
        return;
    }
    let instance: Value = serde_json::from_slice(body).expect("a JSON body");
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::validator_for(&root).expect("the document's schemas compile");
    let errors: Vec<String> =
        validator.iter_errors(&instance).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: the body does not match the document: {errors:?}\n{instance}"
    );
}

/// The check can fail: a body off its schema, a status or a media type the document does not list.
#[test]
fn answers_off_the_document_are_caught() {
    let caught = |method: &'static str, path: &'static str, status: u16, ctype: &'static str, body: &'static str| {
        std::panic::catch_unwind(|| conforms(method, path, status, ctype, body.as_bytes())).is_err()
    };
    let error = r#"{"error": {"code": "not_found", "message": "no comment twitter/1"}}"#;
    assert!(!caught("get", "/v1/comments/twitter/1", 404, "application/json", error));
    assert!(caught(
        "get",
        "/v1/comments/twitter/1",
        404,
        "application/json",
        r#"{"error": {"code": "gone", "message": ""}}"#
    ));
    assert!(caught("get", "/v1/comments/twitter/1", 409, "application/json", error));
    assert!(caught("get", "/v1/trends/timeline", 200, "application/json", r#"{"total": "many"}"#));
    assert!(caught("get", "/v1/trends/timeline", 200, "image/svg+xml", "<svg/>"));
    assert!(caught("delete", "/v1/reports/schedules/1", 204, "", "a body"));
    assert!(!caught("get", "/healthz", 200, "application/json", r#"{"status": "ok"}"#));
}

/// The documented operation serving `method route`: an exact path first, else a template whose `{…}`
/// segments match.
fn operation_for<'a>(document: &'a Value, method: &str, route: &str) -> Option<(&'a str, &'a Value)> {
    let paths = document["paths"].as_object()?;
    let segments: Vec<&str> = route.split('/').collect();
    let matches = |template: &str| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(p, s)| p == s || (p.starts_with('{') && !s.is_empty()))
    };
    let mut candidates: Vec<(&String, &Value)> = paths.iter().filter(|(template, _)| matches(template)).collect();
    candidates.sort_by_key(|(template, _)| template.matches('{').count());
    candidates.into_iter().find_map(|(template, item)| item.get(method).map(|op| (template.as_str(), op)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_routes_keys_trends_metrics_and_scheduled_reports() {
    let now = Utc::now().duration_trunc(Duration::minutes(1)).expect("minute");
    let postgres = murmur_store::testing::fresh_database("api_http").await.expect("postgres (infra/postgres.sh)");
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");
    let data = comments(now);
    postgres.upsert_batch(&data).await.expect("store");
    index.write_batch(&data).expect("index");

    let keys = ApiKeys::parse(&format!("admin:{ADMIN_KEY},write:{WRITE_KEY},read:{READ_KEY}")).expect("keys");
    let state = AppState::new(postgres.clone(), index.clone(), None, keys);
    let scheduler = signed_scheduler(&state, 3, StdDuration::from_millis(200));
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(scheduler.run(shutdown.clone()));
    // Reads below go with the read key: once keys are configured, reads need one too.
    let api = serve(state, Some(READ_KEY));

    // Every documented operation is served (the converse is asserted as routes are registered).
    let (status, spec) = api.get("/openapi.json").await;
    assert_eq!(status, 200);
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.len() >= 17, "{} paths", paths.len());
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().expect("operations") {
            let concrete = path.replace("{source}", "twitter").replace("{id}", "1");
            let (status, body) = api.call(method, &concrete, Some(ADMIN_KEY), None).await;
            let message = body["error"]["message"].as_str().unwrap_or("");
            assert!(!message.starts_with("no route"), "{method} {path} is documented but not served");
            assert!(status < 500 || status == 503, "{method} {path}: {status} {body}");
            // Every /v1 operation needs a key (read, write or admin) on a server with keys: it refuses a missing
            // key and an unknown key, a read key where it writes, a write key where it administers.
            let scoped = path.starts_with("/v1/");
            let scope = operation["security"][0]["api_key"][0].as_str();
            assert_eq!(scoped, scope.is_some(), "{method} {path}: a key scope only and always on /v1");
            if let Some(scope) = scope {
                for (key, expected) in [(None, 401), (Some("not-a-key-0123456789"), 401)] {
                    let (status, body) = api.call(method, &concrete, key, Some(json!({}))).await;
                    assert_eq!(status, expected, "{method} {path} with {key:?}: {body}");
                    assert_eq!(body["error"]["code"], "unauthorized");
                }
                let (status, body) = api.call(method, &concrete, Some(READ_KEY), Some(json!({}))).await;
                if scope != "read" {
                    assert_eq!(status, 403, "{method} {path} with a read key: {body}");
                }
                let (status, body) = api.call(method, &concrete, Some(WRITE_KEY), Some(json!({}))).await;
                if scope == "admin" {
                    assert_eq!(status, 403, "{method} {path} with a write key: {body}");
                } else {
                    assert_ne!(status, 401, "{method} {path} accepts a write key");
                    assert_ne!(status, 403, "{method} {path} accepts a write key");
                }
            }
        }
    }
    // Each route takes exactly the query parameters documented for it: another route's parameter is refused
    // by name, not silently ignored.
    let query_names = |operation: &Value| -> Vec<String> {
        let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
        parameters.iter().filter(|p| p["in"] == "query").filter_map(|p| p["name"].as_str().map(str::to_owned)).collect()
    };
    let every_name: std::collections::BTreeSet<String> =
        paths.values().flat_map(|ops| ops.as_object().expect("operations").values().flat_map(query_names)).collect();
    for (path, operations) in paths {
        let Some(operation) = operations.get("get").filter(|op| !query_names(op).is_empty()) else { continue };
        let concrete = path.replace("{source}", "twitter").replace("{id}", "1");
        let own = query_names(operation);
        for name in every_name.iter().filter(|name| !own.contains(name)) {
            let (status, body) = api.get(&format!("{concrete}?{name}=1")).await;
            let message = body["error"]["message"].as_str().unwrap_or("");
            assert_eq!(status, 400, "GET {path} with {name}: {body}");
            assert!(message.starts_with(&format!("unknown parameter `{name}`")), "GET {path} with {name}: {message}");
        }
    }
    // The docs page: Swagger UI from the vendored release under a strict content security policy, drawing
    // every operation of the document it fetched from this server.
    let page = api.client.get(format!("{}/docs", api.base)).send().await.expect("docs");
    assert_eq!(page.status(), 200, "/docs leads to /docs/");
    let policy = page.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(policy.contains("script-src 'self';") && !policy.contains("unsafe"), "{policy}");
    let (status, _, initializer) = api.text("/docs/swagger-initializer.js").await;
    assert!(status == 200 && initializer.contains("\"/openapi.json\""), "{initializer}");
    let url = format!("{}/docs/", api.base);
    let dom = tokio::task::spawn_blocking(move || chromium(&["--virtual-time-budget=15000", "--dump-dom", &url]))
        .await
        .expect("chromium");
    for operation in ["/v1/trends/timeline", "/v1/reports/schedules/{id}", "/v1/enrich"] {
        assert!(dom.contains(&format!("data-path=\"{operation}\"")), "/docs draws {operation}: {dom}");
    }
    let (status, body) = api.get("/v1/nothing-here").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));

    // Trends: the timeline equals a count over the raw rows; bad input is a 400 that says why.
    let from = (now - Duration::days(2)).to_rfc3339();
    let to = now.to_rfc3339();
    let q = |extra: &str| format!("from={}&to={}{extra}", urlencode(&from), urlencode(&to));
    let (status, timeline) = api.get(&format!("/v1/trends/timeline?{}", q("&tag=pixel&bucket=hour"))).await;
    assert_eq!(status, 200, "{timeline}");
    let raw = raw_count(&postgres, "pixel", &timeline, true).await;
    assert_eq!(timeline["total"]["comments"].as_i64(), Some(raw));
    assert!(raw > 100);
    assert_eq!(timeline["served_by"], "rollups");
    let (_, share) = api.get(&format!("/v1/trends/share?{}", q("&slices=tag:pixel,tag:iphone&bucket=day"))).await;
    let shares: Vec<f64> =
        share["slices"].as_array().expect("slices").iter().map(|s| s["share"].as_f64().unwrap_or(0.0)).collect();
    assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9 && shares.len() == 2, "{share}");
    let (_, top) = api.get(&format!("/v1/trends/entities?{}", q(""))).await;
    assert_eq!(top["entities"][0]["name"], "google");
    assert_eq!(top["entities"][0]["label"], "ORG");
    let (status, examples) = api.get(&format!("/v1/trends/examples?{}", q("&tag=iphone&limit=5"))).await;
    assert_eq!(status, 200);
    assert_eq!(examples["examples"].as_array().map(Vec::len), Some(5));
    let (_, tags) = api.get(&format!("/v1/trends/entities?by=tag&limit=100&{}", q(""))).await;
    let pixel = tags["entities"].as_array().and_then(|t| t.iter().find(|t| t["name"] == "pixel")).cloned();
    let raw = raw_count(&postgres, "pixel", &tags, true).await;
    assert_eq!(pixel.map(|p| p["comments"].clone()), Some(json!(raw)), "tags ranked by their comments: {tags}");

    // Charts: the same answers drawn; each bar or point leads to the examples query of its comments.
    let (status, ctype, svg) = api.text(&format!("/v1/trends/spikes?format=svg&{}", q("&tag=pixel&bucket=hour"))).await;
    assert_eq!((status, ctype.as_str()), (200, "image/svg+xml; charset=utf-8"), "{svg}");
    let points = timeline["points"].as_array().expect("points");
    assert_eq!(svg.matches(r#"<g class="bucket""#).count(), points.len(), "a bar per bucket");
    let busiest = points.iter().filter_map(|p| p["comments"].as_i64()).max().unwrap_or(0);
    assert!(svg.contains(&format!(r#"data-comments-count="{busiest}""#)), "the busiest bucket is drawn");
    let first = &points[0];
    let link = format!(
        "data-comments=\"tag=pixel&amp;from={}&amp;to={}\"",
        urlencode(first["start"].as_str().unwrap_or("")),
        urlencode(points[1]["start"].as_str().unwrap_or(""))
    );
    assert!(svg.contains(&link), "{link} in the chart");
    let (status, ctype, svg) = api
        .text(&format!("/v1/trends/share?format=svg&measure=net_sentiment&{}", q("&slices=tag:pixel,tag:iphone")))
        .await;
    assert_eq!((status, ctype.as_str()), (200, "image/svg+xml; charset=utf-8"), "{svg}");
    assert_eq!(svg.matches(r#"<g class="series""#).count(), 2);
    assert!(svg.contains("+1.00") && svg.contains("-1.00"), "net sentiment spans -1 to +1");
    for bad in [
        "/v1/trends/timeline?bucket=fortnight",
        "/v1/trends/timeline?tz=Mars/Olympus",
        "/v1/trends/timeline?bucket=minute&from=2020-01-01T00:00:00Z",
        "/v1/trends/timeline?q=(unclosed",
        "/v1/trends/timeline?from=yesterday",
        "/v1/trends/share?slices=tag:pixel",
        "/v1/trends/share?slices=brands:x,tag:y",
        "/v1/trends/entities?label=FOO",
        "/v1/trends/trending?min_mentions=0",
        "/v1/trends/spikes?threshold=-1",
        "/v1/trends/examples?limit=1000",
        "/v1/trends/spikes?format=png",
        "/v1/trends/share?slices=tag:a,tag:b&format=svg&measure=volume",
        "/v1/trends/entities?by=tag&label=ORG",
        "/v1/trends/entities?source=%00r",
        "/v1/trends/timeline?source=Not%20A%20Slug",
        "/v1/reports/abc",
        "/v1/reports?limit=0",
    ] {
        let (status, body) = api.get(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{bad}: {body}");
    }
    // Refusals name the parameter or field, what was expected and what came.
    for (bad, says) in [
        ("/v1/trends/timeline?format=svg", "unknown parameter `format`, expected one of `from`"),
        ("/v1/trends/timeline?bucket=fortnight", "bucket: unknown variant `fortnight`, expected one of `minute`"),
        (
            "/v1/trends/timeline?from=yesterday",
            r#"from: expected an RFC 3339 timestamp such as 2026-12-03T16:00:00Z, got "yesterday""#,
        ),
        ("/v1/trends/entities?min_mentions=3", "unknown parameter `min_mentions`"),
        ("/v1/trends/share?slices=tag:a,tag:b&measure=volume", "measure: unknown variant `volume`"),
        ("/v1/search?q=pixel&limit=-5", "limit: expected 1-100, got -5"),
        ("/v1/search?q=pixel&limit=ten", r#"limit: expected a whole number in range, got "ten""#),
        ("/v1/search?q=pixel&facets=yes", r#"facets: expected true or false, got "yes""#),
        ("/v1/reports?limit=0", "limit: expected 1-200, got 0"),
        ("/v1/reports/1?format=pdf", "format: unknown variant `pdf`, expected one of `json`, `html`, `csv`"),
    ] {
        let (status, body) = api.get(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(message.starts_with(says), "{bad}: {message:?} does not start with {says:?}");
    }
    for (path, bad, says) in [
        ("/v1/enrich", json!([]), r#"invalid length 0, expected an object like {"texts": ["a comment", …]}"#),
        ("/v1/enrich", json!({"texts": ["ok", 5]}), "texts[1]: invalid type: integer `5`, expected a string"),
        ("/v1/reports/schedules", json!({"name": "x", "cron": "* * * * *", "window": 5}), "window: invalid type"),
        ("/v1/reports/schedules", json!({"name": 5, "cron": "* * * * *"}), "name: expected a string, got 5"),
    ] {
        let (status, body) = api.call("post", path, Some(WRITE_KEY), Some(bad.clone())).await;
        assert_eq!(status, 400, "{path} {bad}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(message.starts_with(says), "{path} {bad}: {message:?} does not start with {says:?}");
    }
    // The ends of time: answered (empty) or refused, never a fault.
    for edge in ["-262143-01-01T00:00:00Z", "%2B262142-12-30T00:00:00Z", "1970-01-01T00:00:00Z"] {
        let window = format!("from={edge}&to=%2B262142-12-31T23:59:59Z");
        let paths = [
            "trends/timeline?bucket=hour&",
            "trends/spikes?bucket=day&",
            "trends/share?slices=tag:a,tag:b&",
            "trends/entities?",
            "trends/trending?",
            "trends/examples?tag=pixel&",
            "search?q=pixel&facets=true&",
        ];
        for path in paths {
            let (status, body) = api.get(&format!("/v1/{path}{window}")).await;
            assert!(status == 200 || status == 400, "{path}{window}: {status} {body}");
        }
    }

    // A report every second, delivered to a webhook that fails its first call.
    let (hook, received) = webhook_receiver(1).await;
    let schedule_body = json!({
        "name": "Phones, last three days", "cron": "* * * * * *", "time_zone": "Europe/Paris",
        "slices": [{"tag": "pixel"}, {"tag": "iphone"}], "window": "3d", "bucket": "hour",
        "formats": ["html", "csv"], "webhook": format!("http://{hook}/hook"),
    });
    for bad in [
        json!({"name": "x", "cron": "61 * * * *"}),
        json!({"name": "x", "cron": "* * * * *", "time_zone": "Nowhere"}),
        json!({"name": "x", "cron": "* * * * *", "window": "3y"}),
        json!({"name": "x", "cron": "* * * * *", "surprise": true}),
        json!({"cron": "* * * * *"}),
        json!({"name": "x", "cron": "* * * * *", "webhook": "ftp://example"}),
        json!({"name": "x", "cron": "* * * * *", "slices": [{"q": "(unclosed"}]}),
        json!({"name": "x", "cron": "* * * * *", "window": "30d", "bucket": "minute"}),
        // Found by the fuzzer (tests/api_fuzz.rs): a window too long for any duration once panicked.
        json!({"name": "x", "cron": "* * * * *", "window": "200000000000d"}),
    ] {
        let (status, body) = api.call("post", "/v1/reports/schedules", Some(WRITE_KEY), Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, schedule) = api.call("post", "/v1/reports/schedules", Some(WRITE_KEY), Some(schedule_body)).await;
    assert_eq!(status, 201, "{schedule}");
    let schedule_id = schedule["id"].as_i64().expect("id");
    // A chat webhook's URL is its secret: only admin keys see it whole.
    let webhook_of = |list: &Value| {
        let listed = list["schedules"].as_array().and_then(|all| all.iter().find(|s| s["id"] == schedule_id).cloned());
        listed.map(|s| s["spec"]["webhook"].clone()).unwrap_or_default()
    };
    let (status, listed) = api.get("/v1/reports/schedules").await;
    assert_eq!((status, webhook_of(&listed)), (200, json!(format!("http://{hook}/…"))), "masked for a read key");
    let (_, listed) = api.call("get", "/v1/reports/schedules", Some(WRITE_KEY), None).await;
    assert_eq!(webhook_of(&listed), json!(format!("http://{hook}/…")), "masked for a write key");
    let (_, listed) = api.call("get", "/v1/reports/schedules", Some(ADMIN_KEY), None).await;
    assert_eq!(webhook_of(&listed), json!(format!("http://{hook}/hook")), "whole for an admin key");
    let report = wait_for(StdDuration::from_secs(20), || async {
        let (_, list) = api.get(&format!("/v1/reports?schedule_id={schedule_id}")).await;
        list["reports"].as_array().and_then(|r| r.last().cloned()).filter(|r| r["webhook_status"] == "delivered")
    })
    .await
    .expect("a report fired, was stored and delivered within 20 s");
    let (status, _) = api.call("delete", &format!("/v1/reports/schedules/{schedule_id}"), Some(ADMIN_KEY), None).await;
    assert_eq!(status, 204);
    let report_id = report["id"].as_i64().expect("id");
    assert_eq!(report["webhook_attempts"], 2, "the first delivery failed and was retried: {report}");
    assert_eq!(report["formats"], json!(["json", "html", "csv"]));

    let (status, full) = api.get(&format!("/v1/reports/{report_id}")).await;
    assert_eq!(status, 200);
    let slices = full["report"]["slices"].as_array().expect("slices");
    let pixel_now: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM comments WHERE 'pixel' = ANY(tags) AND created_at >= $1 AND created_at < $2",
    )
    .bind(full["window_from"].as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok()))
    .bind(full["window_to"].as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok()))
    .fetch_one(postgres.pool())
    .await
    .expect("raw count");
    assert_eq!(slices[0]["comments"].as_i64(), Some(pixel_now), "report volume = raw count");
    assert!(pixel_now > 100);
    assert_eq!(full["report"]["top_entities"][0]["name"], "google");
    let (status, ctype, csv) = api.text(&format!("/v1/reports/{report_id}?format=csv")).await;
    assert_eq!((status, ctype.as_str()), (200, "text/csv; charset=utf-8"));
    assert!(csv.starts_with("slice,bucket_start,comments,negative,neutral,positive,net_sentiment\n"));
    let csv_total: i64 = csv
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("#pixel,"))
        .filter_map(|l| l.split(',').nth(2).and_then(|n| n.parse::<i64>().ok()))
        .sum();
    assert_eq!(csv_total, pixel_now, "the CSV's buckets add up to the slice's volume");
    let (status, ctype, html) = api.text(&format!("/v1/reports/{report_id}?format=html")).await;
    assert_eq!((status, ctype.as_str()), (200, "text/html; charset=utf-8"));
    assert!(html.contains("<svg") && html.contains("Phones, last three days"));
    render_in_browser(&html);

    let hooks = received.lock().expect("lock").clone();
    assert!(!hooks.is_empty(), "the webhook received the report");
    assert_eq!(hooks[0]["event"], "report.created");
    assert!(hooks.iter().any(|h| h["report_id"].as_i64() == Some(report_id)));

    // Metrics: request latency by route, and what the pipeline stored.
    let (status, _, metrics) = api.text("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            r#"murmur_http_request_duration_seconds_count{method="GET",route="/v1/trends/timeline",status="200"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"murmur_postgres_comments 600"#), "{metrics}");
    assert!(metrics.contains(r#"murmur_index_documents 600"#), "{metrics}");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_long_uris_and_clients_over_their_rate_are_refused_clearly() {
    let postgres = murmur_store::testing::fresh_database("api_limits").await.expect("postgres (infra/postgres.sh)");
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");
    let keys = ApiKeys::parse(&format!("admin:{ADMIN_KEY},write:{WRITE_KEY}")).expect("keys");
    let mut state = AppState::new(postgres, index, None, keys);
    state.rate_limiter = Some(RateLimiter::new(RateLimit { per_second: 2.0, burst: 5.0 }));
    let api = serve(state, Some(WRITE_KEY));

    // A body over 8 MB is a 413 with a JSON error, read no further than the limit; one under it gets through
    // to the handler (503 here: this server has no models).
    let big = json!({ "texts": ["x".repeat(9 * 1024 * 1024)] });
    let (status, body) = api.call("post", "/v1/enrich", Some(WRITE_KEY), Some(big)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("payload_too_large")), "{body}");
    let (status, body) = api.call("post", "/v1/enrich", Some(WRITE_KEY), Some(json!({"texts": ["fine"]}))).await;
    assert_eq!(status, 503, "{body}");
    let schedule = json!({ "name": "x".repeat(9 * 1024 * 1024) });
    let (status, _) = api.call("post", "/v1/reports/schedules", Some(WRITE_KEY), Some(schedule)).await;
    assert_eq!(status, 413, "every JSON route has the limit");

    // A path and query over 16 KiB is a 414 with the JSON error, naming its length and the limit.
    let long = format!("/v1/search?q={}", "a".repeat(20_000));
    let (status, body) = api.get(&long).await;
    assert_eq!((status, body["error"]["code"].as_str()), (414, Some("uri_too_long")), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.starts_with("the request URI is 20013 bytes, more than the 16384 accepted"), "{message}");

    // The burst of 5 is spent (4 requests above): one more passes, then 429 with Retry-After, while probes pass.
    assert_eq!(api.get("/v1/reports").await.0, 200);
    let response = api.client.get(format!("{}/v1/reports", api.base)).send().await.expect("request");
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.expect("JSON error");
    assert_eq!(body["error"]["code"], "rate_limited");
    for probe in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(api.text(probe).await.0, 200, "{probe} is never rate limited");
    }
    // The bucket refills at 2 per second.
    tokio::time::sleep(StdDuration::from_millis(600)).await;
    assert_eq!(api.get("/v1/reports").await.0, 200);
    assert_eq!(api.get("/v1/reports").await.0, 429);
}

/// Renders the report in headless Chromium (Debian's package, from infra/system-deps.sh): the DOM it builds
/// holds the charts, and a screenshot goes to target/test-artifacts/ for people to look at.
fn render_in_browser(html: &str) {
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts folder");
    let page = artifacts.join("report.html");
    std::fs::write(&page, html).expect("write report");
    let url = format!("file://{}", page.display());
    let dom = chromium(&["--dump-dom", &url]);
    assert!(dom.contains("<polyline") && dom.contains("id=\"headline\""), "chromium rendered the report: {dom}");
    let shot = artifacts.join("report.png");
    chromium(&[&format!("--screenshot={}", shot.display()), "--window-size=1000,1600", &url]);
    assert!(shot.exists(), "screenshot of the report");
}

/// Runs headless Chromium with `args`; its standard output.
fn chromium(args: &[&str]) -> String {
    let browser = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| std::process::Command::new(b).arg("--version").output().is_ok())
        .expect("chromium is installed (infra/system-deps.sh)");
    let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];
    let output = std::process::Command::new(browser).args(flags).args(args).output().expect("chromium runs");
    assert!(output.status.success(), "chromium {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn wait_for<T, F, Fut>(limit: StdDuration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if let Some(found) = probe().await {
            return Some(found);
        }
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_keep_answering_while_postgres_is_down() {
    let postgres =
        murmur_store::testing::fresh_database("api_metrics_down").await.expect("postgres (infra/postgres.sh)");
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");
    let data = comments(Utc::now());
    postgres.upsert_batch(&data[..50]).await.expect("store");
    index.write_batch(&data[..50]).expect("index");
    let api = serve(AppState::new(postgres.clone(), index, None, ApiKeys::default()), None);

    let (status, _, up) = api.text("/metrics").await;
    assert_eq!(status, 200);
    assert!(up.contains(r#"murmur_postgres_comments 50"#), "{up}");
    assert!(up.contains(r#"murmur_scrape_source_up{source="postgres"} 1"#), "{up}");

    murmur_store::testing::set_reachable("api_metrics_down", false).await.expect("take postgres away");
    assert_eq!(api.get("/readyz").await.0, 503, "not ready without its database");
    let (status, _, down) = api.text("/metrics").await;
    murmur_store::testing::set_reachable("api_metrics_down", true).await.expect("give postgres back");
    assert_eq!(status, 200, "{down}");
    assert!(down.contains(r#"murmur_scrape_source_up{source="postgres"} 0"#), "{down}");
    assert!(!down.contains("murmur_postgres_comments"), "no stale count while Postgres is down: {down}");
    assert!(down.contains(r#"murmur_index_documents 50"#), "the index's figures stay: {down}");
    assert!(
        down.contains(r#"murmur_http_request_duration_seconds_count{method="GET",route="/readyz",status="503"} 1"#),
        "the latency histograms stay, the failed probe among them: {down}"
    );

    // Back: the count returns once the pool reconnects.
    let back = wait_for(StdDuration::from_secs(15), || async {
        let (_, _, body) = api.text("/metrics").await;
        body.contains(r#"murmur_scrape_source_up{source="postgres"} 1"#).then_some(body)
    })
    .await
    .expect("postgres up again in the metrics");
    assert!(back.contains(r#"murmur_postgres_comments 50"#), "{back}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_never_delays_another_report() {
    let postgres = murmur_store::testing::fresh_database("api_webhooks").await.expect("postgres (infra/postgres.sh)");
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");
    let data = comments(Utc::now());
    postgres.upsert_batch(&data[..50]).await.expect("store");
    index.write_batch(&data[..50]).expect("index");
    let state =
        AppState::new(postgres.clone(), index, None, ApiKeys::parse(&format!("write:{WRITE_KEY}")).expect("keys"));
    // Retries about 4, 8 and 16 s apart: a scheduler that retried inline would keep every other report waiting.
    let scheduler = signed_scheduler(&state, 4, StdDuration::from_secs(4));
    let api = serve(state, Some(WRITE_KEY));
    let (failing, _) = webhook_receiver(usize::MAX).await;
    let (healthy, received) = webhook_receiver(0).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(scheduler.run(shutdown.clone()));
    let schedule = |name: &str, hook: SocketAddr| json!({ "name": name, "cron": "* * * * * *", "window": "1d", "webhook": format!("http://{hook}/hook") });
    let (status, body) =
        api.call("post", "/v1/reports/schedules", Some(WRITE_KEY), Some(schedule("failing", failing))).await;
    assert_eq!(status, 201, "{body}");
    let failing_id = body["id"].as_i64().expect("id");
    // Its first report is out and its webhook failing: a scheduler that retried inline would be stuck now.
    wait_for(StdDuration::from_secs(10), || async {
        let (_, list) = api.get(&format!("/v1/reports?schedule_id={failing_id}")).await;
        list["reports"].as_array().is_some_and(|r| r.iter().any(|r| r["webhook_attempts"] == 1)).then_some(())
    })
    .await
    .expect("the failing schedule ran and its webhook failed once");
    let (status, body) =
        api.call("post", "/v1/reports/schedules", Some(WRITE_KEY), Some(schedule("healthy", healthy))).await;
    assert_eq!(status, 201, "{body}");
    let delivered = wait_for(StdDuration::from_secs(4), || async {
        let hooks = received.lock().expect("lock").clone();
        hooks.iter().any(|h| h["report"]["name"] == "healthy").then_some(())
    })
    .await;
    shutdown.cancel();
    assert!(delivered.is_some(), "the healthy webhook waited behind the failing one's retries");
    let failing_reports: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM reports r JOIN report_schedules s ON s.id = r.schedule_id \
         WHERE s.name = 'failing' AND r.webhook_status = 'pending'",
    )
    .fetch_one(postgres.pool())
    .await
    .expect("count");
    assert!(failing_reports >= 1, "the failing webhook is still being retried");
}

/// Comments in `[from, to)` of the answer whose text names `word` as a whole word, from the raw rows.
async fn raw_word_count(postgres: &murmur_store::Postgres, word: &str, answer: &Value) -> i64 {
    let time = |field: &str| answer[field].as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok());
    sqlx::query_scalar(
        "SELECT count(*) FROM comments WHERE text ~* ('\\m' || $1 || '\\M') AND created_at >= $2 AND created_at < $3",
    )
    .bind(word)
    .bind(time("from"))
    .bind(time("to"))
    .fetch_one(postgres.pool())
    .await
    .expect("raw count")
}

/// Waits until the server's background pass has matched every stored comment with the current catalogue.
async fn rematched(api: &Api) {
    let done = wait_for(StdDuration::from_secs(20), || async {
        let (_, list) = api.get("/v1/brands").await;
        let caught_up = list["rematched_version"] == list["version"] && list["rematch"]["running"] == false;
        caught_up.then_some(())
    })
    .await;
    assert!(done.is_some(), "re-matching caught up with the catalogue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brands_are_defined_over_http_and_trends_slice_by_them() {
    let now = Utc::now().duration_trunc(Duration::minutes(1)).expect("minute");
    let postgres = murmur_store::testing::fresh_database("api_brands").await.expect("postgres (infra/postgres.sh)");
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");
    let data = comments(now);
    postgres.upsert_batch(&data).await.expect("store");
    index.write_batch(&data).expect("index");
    let keys = ApiKeys::parse(&format!("admin:{ADMIN_KEY},write:{WRITE_KEY},read:{READ_KEY}")).expect("keys");
    let mut state = AppState::new(postgres.clone(), index, None, keys);
    let (rematcher, rematching) = murmur_store::Rematcher::spawn(postgres.clone());
    state.rematcher = Some(rematcher);
    let api = serve(state, Some(READ_KEY));

    // Defining brands: admin only, checked field by field, one per name.
    let google = json!({ "name": "Google", "aliases": ["alphabet"], "group": "Tech" });
    let (status, body) = api.call("post", "/v1/brands", Some(WRITE_KEY), Some(google.clone())).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = api.call("post", "/v1/brands", Some(ADMIN_KEY), Some(google.clone())).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "Google");
    let (status, body) = api.call("post", "/v1/brands", Some(ADMIN_KEY), Some(google)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("conflict")), "{body}");
    let pixel = json!({ "name": "Pixel", "handles": ["@madebygoogle"], "group": "Phones" });
    assert_eq!(api.call("put", "/v1/brands/pixel", Some(ADMIN_KEY), Some(pixel)).await.0, 201);
    for (bad, says) in [
        (json!({ "name": "a,b" }), "name: expected 1-64 characters"),
        (json!({ "name": "ok", "hashtags": ["two words"] }), "hashtags[0]: expected #name"),
        (json!({ "name": "ok", "alias": ["x"] }), "unknown field `alias`"),
    ] {
        let (status, body) = api.call("post", "/v1/brands", Some(ADMIN_KEY), Some(bad)).await;
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert_eq!(status, 400, "{body}");
        assert!(message.contains(says), "{message:?} does not say {says:?}");
    }
    let renamed = json!({ "name": "Pixel Phone" });
    assert_eq!(api.call("put", "/v1/brands/pixel", Some(ADMIN_KEY), Some(renamed)).await.0, 400);
    let (status, body) = api.get("/v1/brands/GOOGLE").await;
    assert_eq!((status, body["aliases"].clone()), (200, json!(["alphabet"])), "{body}");
    assert_eq!(api.get("/v1/brands/nokia").await.0, 404);

    // The comments stored before the brands existed are re-matched in the background; share of voice by
    // brand then equals the raw rows.
    rematched(&api).await;
    let (status, ready) = api.get("/readyz").await;
    assert_eq!(status, 200);
    assert!(ready["brand_rematch"]["scanned"].as_u64().unwrap_or(0) >= 600, "{ready}");
    let from = (now - Duration::days(5)).to_rfc3339();
    let share = format!("/v1/trends/share?slices=brand:Google,brand:pixel&bucket=day&from={}", urlencode(&from));
    let (status, answer) = api.get(&share).await;
    assert_eq!(status, 200, "{answer}");
    let series = answer["slices"].as_array().expect("slices");
    assert_eq!(series[0]["comments"].as_i64(), Some(raw_word_count(&postgres, "google", &answer).await));
    assert_eq!(series[1]["comments"].as_i64(), Some(raw_word_count(&postgres, "pixel", &answer).await));
    assert_eq!((series[0]["comments"].as_i64(), series[1]["comments"].as_i64()), (Some(200), Some(300)));
    let timeline = format!("/v1/trends/timeline?brand_group=tech&bucket=day&from={}", urlencode(&from));
    let (status, answer) = api.get(&timeline).await;
    assert_eq!((status, answer["total"]["comments"].as_i64()), (200, Some(200)), "{answer}");
    let examples = format!("/v1/trends/examples?brand=Google&from={}&limit=3", urlencode(&from));
    let (status, answer) = api.get(&examples).await;
    assert_eq!(status, 200, "{answer}");
    let hits = answer["examples"].as_array().expect("examples");
    assert!(hits.len() == 3 && hits.iter().all(|h| h["text"].as_str().is_some_and(|t| t.contains("Google"))));
    // Rankings among a brand's comments (co-mentions, from the comment rows), as SQL counts them.
    let ranking = format!("/v1/trends/entities?brand=pixel&by=tag&from={}", urlencode(&from));
    let (status, answer) = api.get(&ranking).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["entities"][0]["name"], "pixel", "{answer}");
    assert_eq!(answer["entities"][0]["comments"].as_i64(), Some(300), "{answer}");
    assert_eq!(answer["entities"].as_array().map(Vec::len), Some(1), "no iphone tag among pixel comments");
    let ranking = format!("/v1/trends/entities?brand_group=Tech&from={}", urlencode(&from));
    let (_, answer) = api.get(&ranking).await;
    let google = answer["entities"].as_array().and_then(|e| e.iter().find(|x| x["name"] == "google")).cloned();
    assert_eq!(google.map(|g| g["comments"].clone()), Some(json!(200)), "{answer}");
    assert_eq!(api.get("/v1/trends/trending?brand=Google&brand_group=Tech").await.0, 400);
    let (status, body) = api.get("/v1/trends/timeline?brand=Google&tag=pixel").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or("").contains("combines with source only"), "{body}");

    // An exclusion covering every mention, then a removal: the counts follow once re-matched.
    let pixel = json!({ "name": "Pixel", "exclusions": ["pixel battery"], "group": "Phones" });
    assert_eq!(api.call("put", "/v1/brands/Pixel", Some(ADMIN_KEY), Some(pixel)).await.0, 200);
    assert_eq!(api.call("delete", "/v1/brands/google", Some(ADMIN_KEY), None).await.0, 204);
    assert_eq!(api.call("delete", "/v1/brands/google", Some(ADMIN_KEY), None).await.0, 404);
    rematched(&api).await;
    let (status, answer) = api.get(&share).await;
    assert_eq!(status, 200, "{answer}");
    let series = answer["slices"].as_array().expect("slices");
    assert_eq!((series[0]["comments"].as_i64(), series[1]["comments"].as_i64()), (Some(0), Some(0)), "{answer}");
    let (_, list) = api.get("/v1/brands").await;
    assert_eq!(list["brands"].as_array().map(Vec::len), Some(1), "{list}");
    rematching.abort();
}

/// Comments mentioning `word` (a catalogue brand), `n` of them spread over `[start, start + length)`, sentiment
/// cycling negative, neutral, positive; ids `prefix-…`.
fn mentions(word: &str, prefix: &str, start: DateTime<Utc>, length: Duration, n: i64) -> Vec<EnrichedComment> {
    (0..n)
        .map(|i| {
            let at = start + length * i as i32 / n.max(1) as i32;
            let label = [SentimentLabel::Negative, SentimentLabel::Neutral, SentimentLabel::Positive][(i % 3) as usize];
            let text = format!("flying {word} again, note {prefix}-{i}");
            Fixture::new("twitter", format!("{prefix}-{i}"), text, at).sentiment(label).embedding(vec![0.5; 4]).build()
        })
        .collect()
}

/// A deterministic noise in `[-1, 1)` (xorshift).
fn noise(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state % 20_000) as f64 / 10_000.0 - 1.0
}

/// What a comment stream of `hour` (0-23, UTC) usually holds: quiet nights, busy evenings.
fn daily_rhythm(hour: u32) -> f64 {
    match hour {
        0..=6 => 12.0,
        7..=17 => 30.0,
        18..=21 => 75.0,
        _ => 35.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_once_for_a_burst_never_on_a_rhythm_and_two_servers_deliver_once() {
    use chrono::Timelike;
    use murmur_trends::{AlertRule, Bucketing, SpikeParams, Unit, Window};
    let postgres = murmur_store::testing::fresh_database("api_alerts").await.expect("postgres (infra/postgres.sh)");
    for brand in [json!({ "name": "Acme" }), json!({ "name": "Flatco" })] {
        let brand: murmur_core::Brand = serde_json::from_value(brand).expect("brand");
        postgres.put_brand(&brand, true).await.expect("brand");
    }
    // Two weeks of hourly Acme comments with a daily rhythm (evenings 6× the night) and Poisson-sized noise,
    // up to the start of this hour; and 90 minutes of Flatco at 6 ± 2 a minute.
    let now = Utc::now();
    let hour = now.duration_trunc(Duration::hours(1)).expect("hour");
    let first_hour = hour - Duration::days(14);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut history = Vec::new();
    for k in 0..14 * 24 {
        let start = first_hour + Duration::hours(k);
        let usual = daily_rhythm(start.hour());
        let n = (usual + usual.sqrt() * noise(&mut state)).round() as i64;
        history.extend(mentions("acme", &format!("h{k}"), start, Duration::hours(1), n));
    }
    let minute = now.duration_trunc(Duration::minutes(1)).expect("minute");
    for m in 0..90 {
        let start = minute - Duration::minutes(90 - m);
        let n = (6.0 + 2.0 * noise(&mut state)).round() as i64;
        history.extend(mentions("flatco", &format!("m{m}"), start, Duration::minutes(1), n));
    }
    for chunk in history.chunks(2_000) {
        postgres.upsert_batch(chunk).await.expect("store");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");
    let keys = ApiKeys::parse(&format!("admin:{ADMIN_KEY},read:{READ_KEY}")).expect("keys");
    let app = AppState::new(postgres.clone(), index.clone(), None, keys);
    let trends = app.trends.clone();
    let api = serve(app, Some(READ_KEY));

    // Rules: admin only, checked field by field.
    let (healthy, received) = webhook_receiver(0).await;
    let (failing, _) = webhook_receiver(usize::MAX).await;
    let rule = |name: &str, hook: Option<SocketAddr>| {
        let mut rule = json!({ "name": name, "slice": { "brand": "Acme" }, "kind": "volume_spike", "bucket": "hour" });
        if let Some(hook) = hook {
            rule["webhook"] = json!(format!("http://{hook}/hook"));
        }
        rule
    };
    let (status, body) = api.call("post", "/v1/alerts/rules", Some(READ_KEY), Some(rule("x", None))).await;
    assert_eq!(status, 403, "{body}");
    let acme = rule("Acme volume", Some(healthy));
    let (status, body) = api.call("post", "/v1/alerts/rules", Some(ADMIN_KEY), Some(acme.clone())).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!((body["cooldown_seconds"].as_i64(), body["definition"]["cooldown"].as_str()), (Some(3600), Some("1h")));
    let acme_id = body["id"].as_i64().expect("id");
    let (status, _) =
        api.call("post", "/v1/alerts/rules", Some(ADMIN_KEY), Some(rule("Acme, failing hook", Some(failing)))).await;
    assert_eq!(status, 201);
    let flat = json!({ "name": "Flatco", "slice": { "brand": "Flatco" }, "kind": "volume_spike", "bucket": "minute" });
    assert_eq!(api.call("post", "/v1/alerts/rules", Some(ADMIN_KEY), Some(flat.clone())).await.0, 201);
    for (bad, says) in [
        (json!({ "name": "x", "kind": "volume_above" }), "threshold: required for volume_above"),
        (json!({ "name": "x", "kind": "volume_spike", "slice": { "brand": "a,b" } }), "brand: expected"),
        (json!({ "name": "x", "kind": "volume_spike", "cooldown": "0m" }), "cooldown \"0m\""),
        (json!({ "name": "x", "kind": "sometimes" }), "unknown variant `sometimes`"),
    ] {
        let (status, body) = api.call("post", "/v1/alerts/rules", Some(ADMIN_KEY), Some(bad)).await;
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert_eq!(status, 400, "{body}");
        assert!(message.contains(says), "{message:?} does not say {says:?}");
    }
    let (status, listed) = api.call("get", "/v1/alerts/rules", Some(ADMIN_KEY), None).await;
    assert_eq!((status, listed["rules"].as_array().map(Vec::len)), (200, Some(3)), "{listed}");
    assert_eq!(api.get("/v1/alerts/rules").await.0, 403, "rules (with their webhooks) are for admin keys");

    // The rhythm never fires: every hour of the second week, judged as it ends, against earlier days. A
    // baseline of the hours just before would flag the evenings: the rhythm is strong enough to fool one.
    let acme: AlertRule = serde_json::from_value(acme).expect("rule");
    let mut fired = Vec::new();
    for k in 7 * 24..14 * 24 {
        let at = first_hour + Duration::hours(k) + Duration::minutes(59);
        if let Some(finding) = trends.evaluate_alert(&acme, at).await.expect("evaluate") {
            fired.push(finding.bucket_start);
        }
    }
    assert!(fired.is_empty(), "an ordinary hour fired: {fired:?}");
    let hours = Bucketing { unit: Unit::Hour, tz: chrono_tz::Tz::UTC };
    let window = Window::new(first_hour, hour).expect("window");
    let slice = murmur_trends::Slice { brand: Some("Acme".into()), ..murmur_trends::Slice::default() };
    let timeline = trends.timeline(&slice, window, hours).await.expect("timeline");
    let counts: Vec<murmur_store::Counts> = timeline.points.iter().map(|p| p.counts).collect();
    let naive = murmur_trends::spikes_from(&counts, 7 * 24, SpikeParams::default(), None);
    assert!(naive.len() >= 3, "a plain baseline flags the evenings: {}", naive.len());
    let flat: AlertRule = serde_json::from_value(flat).expect("rule");
    for m in 0..60 {
        let at = minute - Duration::minutes(m) + Duration::seconds(59);
        assert!(trends.evaluate_alert(&flat, at).await.expect("evaluate").is_none(), "a flat minute fired");
    }

    // A burst of 150 Acme comments in this hour, watched by two servers (each its own pool): each rule fires
    // once, its alert is delivered once, and the healthy webhook does not wait behind the failing one.
    let options = || AlerterOptions {
        tick: StdDuration::from_millis(200),
        webhooks: signed_webhooks(4, StdDuration::from_secs(4)),
    };
    let second = murmur_store::testing::database("api_alerts", false).await.expect("second pool");
    let shutdown = tokio_util::sync::CancellationToken::new();
    for trends in [trends.clone(), murmur_trends::Trends::new(second, index)] {
        tokio::spawn(Alerter::new(trends, options()).expect("alerter").run(shutdown.clone()));
    }
    let burst_at = Utc::now();
    postgres.upsert_batch(&mentions("acme", "burst", burst_at, Duration::seconds(1), 150)).await.expect("burst");
    let delivered = wait_for(StdDuration::from_secs(10), || async {
        received.lock().expect("lock").iter().find(|b| b["rule_id"] == acme_id).cloned()
    })
    .await
    .expect("the burst's alert reached the healthy webhook within 10 s");
    let within = Utc::now() - burst_at;
    assert_eq!(delivered["event"], "alert.fired");
    let text = delivered["text"].as_str().unwrap_or("");
    assert!(text.starts_with("Acme volume: 150 comments about Acme in the hour from"), "{text}");
    assert!(text.contains("\n> flying acme again"), "the text quotes an example: {text}");
    assert_eq!(delivered["alert"]["kind"], "volume_spike");
    assert!(delivered["alert"]["z"].as_f64().is_some_and(|z| z > 3.5), "{delivered}");
    // Several more ticks of both servers: nothing fires twice, Flatco never.
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    shutdown.cancel();
    let (status, listed) = api.get("/v1/alerts").await;
    assert_eq!(status, 200, "{listed}");
    let alerts = listed["alerts"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = alerts.iter().filter_map(|a| a["rule_name"].as_str()).collect();
    assert_eq!(names.len(), 2, "one alert per Acme rule, none for Flatco: {names:?}");
    assert!(names.contains(&"Acme volume") && names.contains(&"Acme, failing hook"), "{names:?}");
    let hooks: Vec<Value> = received.lock().expect("lock").clone();
    assert_eq!(hooks.len(), 1, "delivered once, not once per server");
    let ours = alerts.iter().find(|a| a["rule_name"] == "Acme volume").cloned().unwrap_or_default();
    assert_eq!(ours["webhook_status"], "delivered", "{ours}");
    let examples = ours["body"]["examples"].as_array().cloned().unwrap_or_default();
    assert_eq!(examples.len(), 3, "{ours}");
    assert!(examples.iter().all(|e| e["id"].as_str().is_some_and(|id| id.starts_with("burst-"))), "{examples:?}");
    let theirs = alerts.iter().find(|a| a["rule_name"] == "Acme, failing hook").cloned().unwrap_or_default();
    assert_eq!(theirs["webhook_status"], "pending", "the failing webhook is still being retried: {theirs}");
    assert!(within < Duration::seconds(10), "{within}");
    let (status, one) = api.get(&format!("/v1/alerts?rule_id={acme_id}&limit=5")).await;
    assert_eq!((status, one["alerts"].as_array().map(Vec::len)), (200, Some(1)));
    assert_eq!(api.call("delete", &format!("/v1/alerts/rules/{acme_id}"), Some(ADMIN_KEY), None).await.0, 204);
    assert_eq!(api.call("delete", &format!("/v1/alerts/rules/{acme_id}"), Some(ADMIN_KEY), None).await.0, 404);
    let (_, after) = api.get("/v1/alerts").await;
    assert_eq!(after["alerts"].as_array().map(Vec::len), Some(2), "a deleted rule's alerts stay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_kinds_negative_share_thresholds_and_a_new_trending_name_each_fire_on_their_burst() {
    use murmur_trends::{AlertKind, AlertRule};
    let postgres =
        murmur_store::testing::fresh_database("api_alert_kinds").await.expect("postgres (infra/postgres.sh)");
    let brand: murmur_core::Brand = serde_json::from_value(json!({ "name": "Acme" })).expect("brand");
    postgres.put_brand(&brand, true).await.expect("brand");
    // Two days of 20 Acme comments an hour, a third of them negative, up to this hour.
    let now = Utc::now();
    let hour = now.duration_trunc(Duration::hours(1)).expect("hour");
    let history: Vec<EnrichedComment> = (1..=48)
        .flat_map(|k| mentions("acme", &format!("h{k}"), hour - Duration::hours(k), Duration::hours(1), 20))
        .collect();
    postgres.upsert_batch(&history).await.expect("history");
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");
    let trends = murmur_trends::Trends::new(postgres.clone(), index);
    let rule = |kind: &str, threshold: Option<f64>| -> AlertRule {
        let mut body = json!({ "name": kind, "slice": { "brand": "Acme" }, "kind": kind });
        if let Some(t) = threshold {
            body["threshold"] = json!(t);
        }
        serde_json::from_value(body).expect("rule")
    };
    let rules = [
        rule("negative_share_spike", None),
        rule("net_sentiment_below", Some(-0.5)),
        rule("volume_above", Some(35.0)),
        rule("trending_entity", None),
    ];
    for rule in &rules {
        assert!(
            trends.evaluate_alert(rule, now).await.expect("evaluate").is_none(),
            "{:?} fired on history",
            rule.kind
        );
    }
    // This hour: 40 negative comments naming a product nobody named before.
    let burst: Vec<EnrichedComment> = (0..40)
        .map(|i| {
            let text = format!("acme lost my order again, waited all week for it {i}");
            Fixture::new("twitter", format!("burst-{i}"), text, now - Duration::seconds(i))
                .sentiment(SentimentLabel::Negative)
                .mention(EntityLabel::Misc, "Zorblax")
                .build()
        })
        .collect();
    postgres.upsert_batch(&burst).await.expect("burst");
    let start = Some(hour);
    for rule in &rules {
        let finding = trends.evaluate_alert(rule, now).await.expect("evaluate");
        let finding = finding.unwrap_or_else(|| panic!("{:?} did not fire on the burst", rule.kind));
        assert_eq!((finding.kind, Some(finding.bucket_start)), (rule.kind, start), "{finding:?}");
        match rule.kind {
            AlertKind::NegativeShareSpike => assert!((finding.value - 1.0).abs() < 1e-9, "{finding:?}"),
            AlertKind::NetSentimentBelow => assert!((finding.value + 1.0).abs() < 1e-9, "{finding:?}"),
            AlertKind::VolumeAbove => assert_eq!(finding.value, 40.0),
            AlertKind::TrendingEntity => {
                assert_eq!(finding.entity.as_ref().map(|e| e.name.as_str()), Some("zorblax"), "{finding:?}");
            }
            AlertKind::VolumeSpike => unreachable!("not among the rules"),
        }
    }
    // A higher bar is not met: thresholds are thresholds.
    assert!(trends.evaluate_alert(&rule("volume_above", Some(100.0)), now).await.expect("evaluate").is_none());
}

/// Comments of one tag counted straight from the raw rows in an answer's window, copies left out or not.
async fn raw_count(postgres: &murmur_store::Postgres, tag: &str, answer: &Value, copies: bool) -> i64 {
    let time = |field: &str| answer[field].as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok());
    sqlx::query_scalar(
        "SELECT count(*) FROM comments c WHERE $1 = ANY(c.tags) AND c.created_at >= $2 AND c.created_at < $3 \
         AND ($4 OR NOT EXISTS (SELECT 1 FROM copies k WHERE k.source = c.source AND k.id = c.id))",
    )
    .bind(tag)
    .bind(time("from"))
    .bind(time("to"))
    .bind(copies)
    .fetch_one(postgres.pool())
    .await
    .expect("raw count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_of_copies_counts_once_by_default_and_every_copy_with_duplicates_include() {
    let now = Utc::now().duration_trunc(Duration::minutes(1)).expect("minute");
    let postgres = murmur_store::testing::fresh_database("api_copies").await.expect("postgres (infra/postgres.sh)");
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(dir.path(), Access::ReadWrite, IndexOptions::default()).expect("index");
    // 40 opinions about Acme; a retweet storm of the first (10 retweets) and a template campaign copying the
    // second with another order number (5 copies).
    let opinion = |i: u64| format!("my acme blender {}", murmur_core::testing::unique_words(i, 6));
    let at = |i: i64| now - Duration::minutes(3 * i + 1);
    let mut texts: Vec<(String, String)> = (0..40).map(|i| (format!("o{i}"), opinion(i))).collect();
    texts.extend((0..10).map(|k| (format!("rt{k}"), format!("RT @fan{k}: {}", opinion(0)))));
    texts.extend((0..5).map(|k| (format!("tpl{k}"), format!("{} order 10{k}", opinion(1)))));
    texts[1].1.push_str(" order 99");
    let data: Vec<EnrichedComment> = texts
        .into_iter()
        .enumerate()
        .map(|(n, (id, text))| {
            let label = [SentimentLabel::Negative, SentimentLabel::Positive][n % 2];
            Fixture::new("twitter", id, text, at(n as i64)).tags(["acme"]).sentiment(label).build()
        })
        .collect();
    postgres.upsert_batch(&data).await.expect("store");
    index.write_batch(&data).expect("index");
    let finder_options = murmur_store::CopyFinderOptions { tick: StdDuration::from_millis(50), ..Default::default() };
    let (_, finder) = murmur_store::CopyFinder::spawn(postgres.clone(), finder_options);
    let drained = wait_for(StdDuration::from_secs(30), || async {
        (postgres.copies_queued().await.expect("queue") == 0).then_some(())
    })
    .await;
    assert!(drained.is_some(), "the copy finder compared every comment");
    let keys = ApiKeys::parse(&format!("read:{READ_KEY}")).expect("keys");
    let api = serve(AppState::new(postgres.clone(), index, None, keys), Some(READ_KEY));

    let from = urlencode(&(now - Duration::days(1)).to_rfc3339());
    for (duplicates, expected) in [("", 40), ("&duplicates=once", 40), ("&duplicates=include", 55)] {
        let (status, answer) =
            api.get(&format!("/v1/trends/timeline?tag=acme&bucket=hour&from={from}{duplicates}")).await;
        assert_eq!(status, 200, "{answer}");
        let copies = duplicates.ends_with("include");
        assert_eq!(answer["total"]["comments"].as_i64(), Some(raw_count(&postgres, "acme", &answer, copies).await));
        assert_eq!(answer["total"]["comments"].as_i64(), Some(expected), "{duplicates}: {answer}");
        let (status, answer) = api.get(&format!("/v1/trends/entities?by=tag&from={from}{duplicates}")).await;
        assert_eq!((status, answer["entities"][0]["comments"].as_i64()), (200, Some(expected)), "{answer}");
    }
    // The retweets were negative and positive alike; counted once, the storm's sentiment is its original's.
    let (_, once) = api.get(&format!("/v1/trends/timeline?tag=acme&bucket=day&from={from}")).await;
    assert_eq!((once["total"]["negative"].as_i64(), once["total"]["positive"].as_i64()), (Some(20), Some(20)));
    let (status, body) = api.get(&format!("/v1/trends/timeline?tag=acme&from={from}&duplicates=some")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or("").contains("duplicates: expected once or include"));

    // Examples are distinct opinions: one comment per cluster, unless every copy is asked for.
    for (duplicates, expected) in [("", 40), ("&duplicates=include", 50)] {
        let (status, answer) = api.get(&format!("/v1/trends/examples?tag=acme&from={from}&limit=50{duplicates}")).await;
        assert_eq!(status, 200, "{answer}");
        let ids: Vec<&str> =
            answer["examples"].as_array().expect("examples").iter().filter_map(|e| e["id"].as_str()).collect();
        assert_eq!(ids.len(), expected, "{duplicates}: {ids:?}");
        if duplicates.is_empty() {
            let storm = ids.iter().filter(|id| **id == "o0" || id.starts_with("rt")).count();
            let campaign = ids.iter().filter(|id| **id == "o1" || id.starts_with("tpl")).count();
            assert_eq!((storm, campaign), (1, 1), "one example of each cluster: {ids:?}");
        }
    }

    // A comment says which cluster it is in.
    let (status, copy) = api.get("/v1/comments/twitter/rt3").await;
    assert_eq!(status, 200, "{copy}");
    assert_eq!(copy["duplicate_of"], json!({ "source": "twitter", "id": "o0" }), "{copy}");
    assert_eq!(copy["cluster_size"], 11, "{copy}");
    let (_, original) = api.get("/v1/comments/twitter/o1").await;
    assert_eq!((original["duplicate_of"].clone(), original["cluster_size"].clone()), (Value::Null, json!(6)));
    let (_, alone) = api.get("/v1/comments/twitter/o7").await;
    assert_eq!(alone["cluster_size"], 1, "{alone}");
    let (_, ready) = api.get("/readyz").await;
    assert_eq!(ready["copies"], json!({ "queued": 0 }), "no finder in this server, nothing left to compare");

    // Search shows every copy, or each cluster once (as its original) with its size, page after page.
    let (_, every) = api.get("/v1/search?q=blender&limit=100").await;
    assert_eq!((every["total"].as_u64(), every["hits"].as_array().map(Vec::len)), (Some(55), Some(55)));
    let mut seen = Vec::new();
    let mut path = "/v1/search?q=blender&limit=15&collapse=true".to_owned();
    loop {
        let (status, page) = api.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for hit in page["hits"].as_array().expect("hits") {
            let id = hit["id"].as_str().unwrap_or("").to_owned();
            let size = hit["cluster_size"].as_i64();
            let want = match id.as_str() {
                "o0" => 11,
                "o1" => 6,
                _ => 1,
            };
            assert_eq!(size, Some(want), "{id}: {hit}");
            seen.push(id);
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/search?q=blender&limit=15&collapse=true&cursor={cursor}"),
            None => break,
        }
    }
    let mut originals: Vec<String> = (0..40).map(|i| format!("o{i}")).collect();
    seen.sort();
    originals.sort();
    assert_eq!(seen, originals, "each cluster once, as its original, across pages");
    finder.abort();
}
