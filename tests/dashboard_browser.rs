//! The dashboard in a real browser against the real pipeline: comments with known counts go through the
//! broker, `murmur worker` (real models) and `murmur sink` into Postgres and the index; `murmur serve` serves
//! the page; Debian's headless Chromium loads it. The page must load without an error, its charts must show
//! the counts that went in (and the sentiment Postgres holds), a click on the planted spike must list its
//! comments, a search must find the expected comments, and the page must update when more comments arrive.
//! Screenshots land in `target/test-artifacts/`.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, Utc};
use common::browser::Browser;
use common::{create_topics, fresh_database, get_json, keyed, produce, producer, repo_path, wait_committed, Processes};
use murmur_core::testing::unique_words;
use serde_json::{json, Value};
use sqlx::PgPool;

/// Days shown; the spike is on `SPIKE_DAY`.
const DAYS: u64 = 14;
const SPIKE_DAY: u64 = 10;
const SPIKE_COMMENTS: usize = 30;
/// Acme comments on an ordinary day, Globex comments on every day.
const ACME_PER_DAY: usize = 4;
const GLOBEX_PER_DAY: usize = 2;
/// Retweets of the first refund comment (a cluster of near-duplicates).
const RETWEETS: usize = 3;
/// Comments produced while the page is open (on `LATE_DAY`).
const LATE: usize = 5;
const LATE_DAY: u64 = 12;
const ADMIN_KEY: &str = "dashboard-test-admin-key";
/// The dashboard reads with this key (given once as `#key=…`): a server with keys needs one for reads.
const READ_KEY: &str = "dashboard-test-read-key";

/// `(id, text)` of the comments in other languages (French, Chinese).
const FOREIGN: [(&str, &str); 2] = [
    ("intl-fr", "Le service client ne répond jamais, c'est vraiment décevant"),
    ("intl-zh", "我很喜欢这个手机，但是电池不好。"),
];

struct Data {
    first_day: NaiveDate,
}

impl Data {
    fn day(&self, d: u64) -> NaiveDate {
        self.first_day.checked_add_days(Days::new(d)).expect("date")
    }

    /// `from` and `to` of the whole days the test covers, as query parameters.
    fn whole_window(&self) -> String {
        format!("from={}T00:00:00Z&to={}T00:00:00Z", self.day(0), self.day(DAYS))
    }

    fn at(&self, d: u64, k: usize) -> String {
        let t: DateTime<Utc> =
            self.day(d).and_hms_opt(9, 0, 0).expect("time").and_utc() + chrono::Duration::minutes(7 * k as i64);
        t.to_rfc3339()
    }

    /// A comment; `serial`, unique in the test, keeps texts that share a sentence from being near-duplicates
    /// of each other (each is an opinion of its own).
    fn comment(&self, id: String, text: &str, serial: u64, (d, k): (u64, usize), tag: &str) -> Value {
        let text = format!("{text} {}", unique_words(serial, 6));
        json!({ "id": id, "source": "twitter", "author": format!("user{k}"), "text": text, "created_at": self.at(d, k),
                "lang": "en", "tags": [tag] })
    }

    /// Acme: a few comments a day and a burst of battery complaints on the spike day; Globex: two a day,
    /// one about a refund every other day.
    fn comments(&self) -> Vec<Value> {
        const ACME: [&str; 4] = [
            "Acme support replaced my charger within a day, great service",
            "The screen on the Acme X2 is bright and sharp",
            "Ordered an Acme X2 for my dad, it arrived on Tuesday",
            "The Acme app keeps logging me out every morning",
        ];
        const SPIKE: [&str; 5] = [
            "My Acme X2 battery swelled overnight and cracked the case",
            "Acme X2 battery got dangerously hot while charging, scary",
            "The battery in my Acme X2 is bulging, is this a recall?",
            "Acme X2 battery overheated and the phone shut down",
            "Smell of burning from the Acme X2 battery, unplugged it fast",
        ];
        let mut out = Vec::new();
        let mut serial = 0..;
        let mut next = || serial.next().unwrap_or_default();
        for d in 0..DAYS {
            if d == SPIKE_DAY {
                for k in 0..SPIKE_COMMENTS {
                    out.push(self.comment(format!("spike-{k}"), SPIKE[k % 5], next(), (d, k), "acme"));
                }
            } else {
                for (k, text) in ACME.iter().enumerate().take(ACME_PER_DAY) {
                    out.push(self.comment(format!("acme-{d}-{k}"), text, next(), (d, k), "acme"));
                }
            }
            for k in 0..GLOBEX_PER_DAY {
                let text = if k == 0 && d % 2 == 0 {
                    "Globex finally sent my refund after two weeks of emails"
                } else {
                    "Globex delivery was quick and the packaging neat"
                };
                out.push(self.comment(format!("globex-{d}-{k}"), text, next(), (d, k), "globex"));
            }
        }
        // A retweet storm of the first refund comment: copies, counted once and shown once in search.
        let first_refund = out.iter().find(|c| c["id"] == "globex-0-0").and_then(|c| c["text"].as_str());
        let retweeted = first_refund.unwrap_or_default().to_owned();
        for k in 0..RETWEETS {
            let mut retweet = self.comment(format!("globex-rt-{k}"), "", 0, (0, 10 + k), "globex");
            retweet["text"] = json!(format!("RT @globexfan{k}: {retweeted}"));
            out.push(retweet);
        }
        // Comments in languages the models never learned: counted in the language mix, not scored.
        for (k, (id, text)) in FOREIGN.iter().enumerate() {
            let mut foreign = self.comment((*id).to_owned(), "", 0, (1, 20 + k), "intl");
            foreign["text"] = json!(text);
            foreign["lang"] = json!(null);
            foreign["tags"] = json!([]);
            out.push(foreign);
        }
        out
    }

    fn late_comments(&self) -> Vec<Value> {
        (0..LATE)
            .map(|k| {
                let text = "Just got my Acme X2, setup took two minutes";
                self.comment(format!("late-{k}"), text, 100_000 + k as u64, (LATE_DAY, 20 + k), "acme")
            })
            .collect()
    }

    fn acme_per_day(&self, late: bool) -> Vec<i64> {
        (0..DAYS)
            .map(|d| match d {
                SPIKE_DAY => SPIKE_COMMENTS as i64,
                LATE_DAY if late => (ACME_PER_DAY + LATE) as i64,
                _ => ACME_PER_DAY as i64,
            })
            .collect()
    }
}

/// Per day of the window, (negative, neutral, positive) Acme comments as Postgres holds them.
async fn sentiment_per_day(pool: &PgPool, data: &Data) -> Vec<(i64, i64, i64)> {
    let rows: Vec<(NaiveDate, i64, i64, i64)> = sqlx::query_as(
        "SELECT (c.created_at AT TIME ZONE 'UTC')::date AS day, \
                count(*) FILTER (WHERE c.sentiment = 'negative'), count(*) FILTER (WHERE c.sentiment = 'neutral'), \
                count(*) FILTER (WHERE c.sentiment = 'positive') \
         FROM comments c WHERE 'acme' = ANY (c.tags) GROUP BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("sentiment per day");
    (0..DAYS).map(|d| rows.iter().find(|r| r.0 == data.day(d)).map_or((0, 0, 0), |r| (r.1, r.2, r.3))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_pipelines_comments_in_a_browser() {
    let run = format!("dash{}x{}", std::process::id(), Utc::now().timestamp_millis());
    let topics = [format!("{run}.comments"), format!("{run}.enriched"), format!("{run}.dlq")];
    create_topics(&topics, 2).await;
    let database_url = fresh_database("it_dashboard").await;
    let work = tempfile::tempdir().expect("tempdir");
    let port = TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut env = common::role_env(&run, &topics, &database_url, &work.path().join("index"), port);
    env.push(("MURMUR_API_KEYS", format!("write:{ADMIN_KEY}-w,admin:{ADMIN_KEY},read:{READ_KEY}")));
    // The test's hundred comments are enough for a first clustering.
    env.push(("MURMUR_THEME_FIRST_CLUSTERING", "60".into()));
    let mut procs = Processes(Vec::new());
    procs.spawn("worker", &["worker"], &env, work.path());
    procs.spawn("sink", &["sink"], &env, work.path());
    procs.spawn("serve", &["serve"], &env, work.path());

    // The fourteen whole days before today, so that nothing lies in the future.
    let data = Data { first_day: Utc::now().date_naive() - Days::new(DAYS) };
    let comments = data.comments();
    let total = comments.len();
    let producer = producer();
    let produced = produce(&producer, &topics[0], &keyed(&comments)).await;
    wait_committed(&format!("{run}-worker"), &topics[0], &produced, "the worker", &mut procs).await;
    let api = format!("http://127.0.0.1:{port}");
    let client = common::client_with_key(READ_KEY);
    wait_indexed(&client, &api, total, &mut procs).await;
    let pool = PgPool::connect(&database_url).await.expect("connect");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, ready) = get_json(&client, &format!("{api}/readyz")).await;
        let copies = &ready["copies"];
        if copies["queued"] == 0 && copies["finding"] == true && copies["compared"].as_u64() >= Some(total as u64) {
            assert_eq!(copies["found"], json!(RETWEETS), "the retweets are the only copies: {ready}");
            break;
        }
        procs.assert_running();
        assert!(Instant::now() < deadline, "the copy finder did not compare every comment within 60 s: {ready}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = {
        let response = client
            .post(format!("{api}/v1/reports/schedules"))
            .bearer_auth(format!("{ADMIN_KEY}-w"))
            .json(&json!({ "name": "Morning brief", "cron": "0 8 * * *", "time_zone": "UTC",
                           "slices": [{"tag": "acme"}, {"tag": "globex"}], "window": "7d" }))
            .send()
            .await
            .expect("schedule");
        (response.status().as_u16(), ())
    };
    assert_eq!(status, 201, "schedule created");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, ready) = get_json(&client, &format!("{api}/readyz")).await;
        if ready["themes"]["queued"] == 0 && ready["themes"]["reclusterings"].as_u64() >= Some(1) {
            break;
        }
        procs.assert_running();
        assert!(Instant::now() < deadline, "the themer did not cluster the comments within 60 s: {ready}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut browser = Browser::launch(1400, 1000).await;
    let url = format!(
        "{api}/#key={READ_KEY}&range=custom&from={}&to={}&bucket=day&brands=tag:acme,tag:globex&focus=tag:acme",
        data.day(0),
        data.day(DAYS - 1)
    );
    browser.navigate(&url).await;
    browser.wait_for("document.body.dataset.ready === 'true'", Duration::from_secs(60), "the dashboard to load").await;
    let artifacts = repo_path("target/test-artifacts");
    browser.screenshot(&artifacts.join("dashboard.png")).await;
    assert_eq!(browser.errors(), &[] as &[String], "the page loads without errors");
    let address = browser.eval("location.href").await;
    assert!(!address.as_str().unwrap_or("key=").contains("key="), "the key left the address: {address}");

    // The volume chart: one bar per day, as high as the comments that went in, split as Postgres says.
    let buckets = browser
        .eval(
            "[...document.querySelectorAll('#volume-chart .bucket')].map(b => ({ \
               count: Number(b.dataset.commentsCount), \
               title: b.querySelector('.column title').textContent, \
               parts: Object.fromEntries([...b.querySelectorAll('rect:not(.column)')].map(r => [r.getAttribute('class'), r.querySelector('title').textContent])) }))",
        )
        .await;
    let buckets = buckets.as_array().expect("bars");
    let expected = data.acme_per_day(false);
    let counts: Vec<i64> = buckets.iter().map(|b| b["count"].as_i64().unwrap_or(-1)).collect();
    assert_eq!(counts, expected, "one bar per day, as high as the Acme comments that went in");
    let sentiment = sentiment_per_day(&pool, &data).await;
    for (d, (bar, (negative, neutral, positive))) in buckets.iter().zip(&sentiment).enumerate() {
        let title = bar["title"].as_str().unwrap_or("");
        let comments = expected[d];
        let want = format!("{comments} comments, {negative} negative, {neutral} neutral, {positive} positive");
        assert!(title.ends_with(&want), "day {d}: tooltip {title:?}, Postgres says {want:?}");
        if *negative > 0 {
            let part = bar["parts"]["negative"].as_str().unwrap_or("");
            assert!(part.ends_with(&format!("{negative} negative of {comments}")), "day {d}: {part:?}");
        }
    }
    let kpi = browser.eval("document.getElementById('kpi-comments').textContent").await;
    assert_eq!(kpi, json!(expected.iter().sum::<i64>().to_string()), "headline comment count");
    let y_top =
        browser.eval("[...document.querySelectorAll('#volume-chart .y-label')].map(t => t.textContent).pop()").await;
    assert_eq!(y_top, json!("30"), "the y axis tops at the 30-comment peak, in round steps");

    // Share of voice: Acme's share each day, from the counts that went in.
    let shares = browser
        .eval("[...document.querySelectorAll('#share-chart .series[data-series=\"#acme\"] .point')].map(p => Number(p.dataset.value))")
        .await;
    let shares: Vec<f64> = shares.as_array().expect("points").iter().filter_map(Value::as_f64).collect();
    let want: Vec<f64> = expected.iter().map(|&a| a as f64 / (a + GLOBEX_PER_DAY as i64) as f64).collect();
    assert_eq!(shares.len(), want.len(), "one share point per day");
    for (d, (got, want)) in shares.iter().zip(&want).enumerate() {
        assert!((got - want).abs() < 1e-9, "day {d}: Acme's share {got}, expected {want}");
    }
    let sentiment_lines = browser.eval("document.querySelectorAll('#sentiment-chart .series').length").await;
    assert_eq!(sentiment_lines, json!(2), "a sentiment line per brand");

    // The spike: marked on the spike day, listed with examples, and a click on it lists its comments.
    let marked =
        browser.eval("[...document.querySelectorAll('#volume-chart .spike')].map(s => Number(s.dataset.index))").await;
    assert!(
        marked.as_array().is_some_and(|m| !m.is_empty() && m.iter().all(|i| i == &json!(SPIKE_DAY))),
        "spikes marked on day {SPIKE_DAY} only: {marked}"
    );
    let listed = browser.eval("document.querySelectorAll('#spikes .spike-item').length").await;
    assert_eq!(listed, json!(marked.as_array().map_or(0, Vec::len)), "each marked spike is listed");
    browser.click("#volume-chart .spike").await;
    let shown = browser
        .wait_for(
            "(() => { const items = [...document.querySelectorAll('#drawer-list .comment')]; \
               return !document.getElementById('drawer').hidden && items.length ? items.map(c => c.dataset.id) : null; })()",
            Duration::from_secs(20),
            "the spike's comments in the side panel",
        )
        .await;
    let shown: Vec<String> =
        shown.as_array().expect("ids").iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    assert!(shown.iter().all(|id| id.starts_with("twitter/spike-")), "a spike shows its own comments: {shown:?}");
    let (_, spike_api) =
        get_json(&client, &format!("{api}/v1/trends/spikes?tag=acme&bucket=day&tz=UTC&{}", data.whole_window())).await;
    // The mark of a burst leads to all the peak's comments: the volume spike's examples.
    let volume = spike_api["spikes"].as_array().and_then(|s| s.iter().find(|s| s["kind"] == "volume"));
    let examples: Vec<String> = volume
        .and_then(|s| s["examples"].as_array())
        .expect("a volume spike with examples")
        .iter()
        .map(|h| format!("{}/{}", h["source"].as_str().unwrap_or(""), h["id"].as_str().unwrap_or("")))
        .collect();
    assert!(
        !examples.is_empty() && shown.starts_with(&examples),
        "the panel leads with the API's examples {examples:?}: {shown:?}"
    );
    browser.screenshot(&artifacts.join("dashboard-spike.png")).await;
    // The address keeps the open panel: the same link shows the same comments.
    browser.reload().await;
    let again = browser
        .wait_for(
            "(() => { const items = [...document.querySelectorAll('#drawer-list .comment')]; \
               return document.body.dataset.ready && !document.getElementById('drawer').hidden && items.length \
               ? items.map(c => c.dataset.id) : null; })()",
            Duration::from_secs(60),
            "the linked comments after a reload",
        )
        .await;
    assert_eq!(again, json!(shown), "a link to the page reopens the same comments");

    // A bar: the comments of that day.
    browser.click("#drawer-close").await;
    browser.click("#volume-chart .bucket[data-index=\"3\"] .column").await;
    let day3 = browser
        .wait_for(
            "(() => { const items = [...document.querySelectorAll('#drawer-list .comment')]; \
               return !document.getElementById('drawer').hidden && items.length && items.every(c => c.dataset.id.startsWith('twitter/acme-3-')) \
               ? items.map(c => c.dataset.id).sort() : null; })()",
            Duration::from_secs(20),
            "day 3's comments in the side panel",
        )
        .await;
    let want: Vec<String> = (0..ACME_PER_DAY).map(|k| format!("twitter/acme-3-{k}")).collect();
    assert_eq!(day3, json!(want), "a click on a bar lists exactly that day's comments");

    // Why: a comment's words are marked as the API weighs them, with a legend naming the label.
    let first = &want[0];
    browser.click(&format!("#drawer-list .comment[data-id=\"{first}\"] .why-button")).await;
    let marked = browser
        .wait_for(
            &format!(
                "(() => {{ const c = document.querySelector('#drawer-list .comment[data-id=\"{first}\"]'); \
                   const legend = c && c.querySelector('.why-legend'); \
                   return legend ? {{ label: legend.dataset.label ?? null, \
                     words: [...c.querySelectorAll('.text mark.why')].map(m => [m.textContent, Number(m.dataset.strength)]) }} : null; }})()"
            ),
            Duration::from_secs(30),
            "the comment's explanation",
        )
        .await;
    let (_, why) = get_json(&client, &format!("{api}/v1/comments/{first}?explain=true")).await;
    let sentiment = &why["explanation"]["sentiment"];
    assert_eq!(marked["label"], sentiment["label"], "the legend names the label explained: {marked}");
    let weighed: Vec<(String, f64)> = sentiment["words"]
        .as_array()
        .expect("words")
        .iter()
        .map(|w| (w["text"].as_str().unwrap_or("").to_owned(), w["strength"].as_f64().unwrap_or(0.0)))
        .filter(|(_, strength)| *strength >= 0.1)
        .collect();
    let shown: Vec<(String, f64)> = marked["words"]
        .as_array()
        .expect("marked words")
        .iter()
        .map(|w| (w[0].as_str().unwrap_or("").to_owned(), w[1].as_f64().unwrap_or(f64::NAN)))
        .collect();
    assert!(!weighed.is_empty(), "some word carries the sentiment: {why}");
    assert_eq!(shown.len(), weighed.len(), "every word of strength 0.1 or more is marked: {shown:?} vs {weighed:?}");
    for ((text, strength), (want_text, want_strength)) in shown.iter().zip(&weighed) {
        assert_eq!(text, want_text);
        assert!((strength - want_strength).abs() < 0.002, "{text}: shown {strength}, the API says {want_strength}");
    }
    browser.screenshot(&artifacts.join("dashboard-explain.png")).await;
    browser.click("#drawer-close").await;

    // Names: the table shows what the API ranks, each name once whatever types the model gave it.
    let (_, top_api) = get_json(&client, &format!("{api}/v1/trends/entities?limit=10&{}", data.whole_window())).await;
    let want: Vec<String> = top_api["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or("").to_owned())
        .collect();
    let shown = browser
        .eval("[...document.querySelectorAll('#top-entities tr[data-entity]')].map(r => r.dataset.entity)")
        .await;
    assert_eq!(shown, json!(want), "the top-names table lists the API's ranking");
    let distinct: HashSet<&String> = want.iter().collect();
    assert_eq!(distinct.len(), want.len(), "no name is listed twice: {want:?}");
    assert!(!want.is_empty(), "the NER model found entities in the comments");

    // The language mix: the API's ranking by language, every comment under one; the French and Chinese comments
    // are counted but not scored, and a click on a language lists its comments.
    let (_, mix) =
        get_json(&client, &format!("{api}/v1/trends/entities?by=lang&limit=20&{}", data.whole_window())).await;
    let mix: Vec<(String, i64)> = mix["entities"]
        .as_array()
        .expect("languages")
        .iter()
        .map(|e| (e["name"].as_str().unwrap_or("").to_owned(), e["comments"].as_i64().unwrap_or(0)))
        .collect();
    let once = (total - RETWEETS) as i64;
    assert_eq!(mix.iter().map(|(_, n)| n).sum::<i64>(), once, "every comment under one language, copies once: {mix:?}");
    for code in FOREIGN.iter().map(|(id, _)| &id[5..]) {
        assert!(mix.contains(&(code.to_owned(), 1)), "{code}: {mix:?}");
    }
    let shown = browser
        .eval("[...document.querySelectorAll('#languages tr[data-lang]')].map(r => [r.dataset.lang, r.cells[1].textContent, r.cells[3].textContent])")
        .await;
    let shown: Vec<(String, String, String)> = serde_json::from_value(shown).expect("rows");
    assert_eq!(
        shown.iter().map(|(code, n, _)| (code.clone(), n.clone())).collect::<Vec<_>>(),
        mix.iter().map(|(code, n)| (code.clone(), n.to_string())).collect::<Vec<_>>(),
        "the languages table lists the API's mix"
    );
    let french = shown.iter().find(|(code, _, _)| code == "fr").expect("a French row");
    assert_eq!(french.2, "not scored", "{shown:?}");
    browser.click("#languages tr[data-lang=\"zh\"]").await;
    let ids = browser
        .wait_for(
            "!document.getElementById('drawer').hidden && document.querySelectorAll('#drawer-list .comment').length \
             && [...document.querySelectorAll('#drawer-list .comment')].map(c => c.dataset.id)",
            Duration::from_secs(30),
            "the Chinese comments",
        )
        .await;
    assert_eq!(ids, json!(["twitter/intl-zh"]), "the Chinese row lists the Chinese comment");
    browser.click("#drawer-close").await;

    // Themes: the table lists the API's themes, and a click on one lists comments of that theme.
    let (_, themes_api) = get_json(&client, &format!("{api}/v1/themes?limit=12&{}", data.whole_window())).await;
    let want: Vec<String> =
        themes_api["themes"].as_array().expect("themes").iter().map(|t| t["id"].to_string()).collect();
    assert!(!want.is_empty(), "the comments have a theme: {themes_api}");
    let shown =
        browser.eval("[...document.querySelectorAll('#themes tr[data-theme]')].map(r => r.dataset.theme)").await;
    assert_eq!(shown, json!(want), "the themes table lists the API's themes");
    browser.click(&format!("#themes tr[data-theme=\"{}\"]", want[0])).await;
    let ids = browser
        .wait_for(
            "!document.getElementById('drawer').hidden && document.querySelectorAll('#drawer-list .comment').length \
             && [...document.querySelectorAll('#drawer-list .comment')].map(c => c.dataset.id)",
            Duration::from_secs(30),
            "the theme's comments",
        )
        .await;
    let ids: Vec<String> = ids.as_array().expect("ids").iter().filter_map(Value::as_str).map(str::to_owned).collect();
    let in_theme: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM comments WHERE source || '/' || id = ANY($1) AND dims @> ARRAY['theme:' || $2]",
    )
    .bind(&ids)
    .bind(&want[0])
    .fetch_one(&pool)
    .await
    .expect("theme members");
    assert_eq!(in_theme as usize, ids.len(), "every comment listed is of the theme clicked: {ids:?}");
    browser.screenshot(&artifacts.join("dashboard-themes.png")).await;
    browser.click("#drawer-close").await;

    // Aspects: the table lists the API's aspects of the slice in focus, each with its clearest complaint.
    let focus = browser.eval("document.querySelector('#focus-tabs .active')?.dataset.slice ?? 'all'").await;
    let focus = focus.as_str().unwrap_or("all").to_owned();
    let (_, aspects_api) =
        get_json(&client, &format!("{api}/v1/aspects?slice={focus}&limit=12&examples=1&{}", data.whole_window())).await;
    let want: Vec<String> = aspects_api["aspects"]
        .as_array()
        .expect("aspects")
        .iter()
        .map(|a| a["name"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(want.iter().any(|a| a == "battery"), "the battery complaints have an aspect: {aspects_api}");
    let shown = browser
        .wait_for(
            "document.querySelectorAll('#aspects tr[data-aspect]').length \
             && [...document.querySelectorAll('#aspects tr[data-aspect]')].map(r => r.dataset.aspect)",
            Duration::from_secs(30),
            "the aspects table",
        )
        .await;
    assert_eq!(shown, json!(want), "the aspects table lists the API's aspects");
    let battery = aspects_api["aspects"].as_array().and_then(|a| a.iter().find(|a| a["name"] == "battery")).cloned();
    let complaint = battery
        .and_then(|b| b["examples"].as_array().and_then(|e| e.iter().find(|x| x["sentiment"] == "negative").cloned()))
        .and_then(|e| e["text"].as_str().map(str::to_owned))
        .expect("a battery complaint is quoted");
    let quoted = browser
        .eval(
            "document.querySelector('#aspects tr[data-aspect=\"battery\"] .quote[data-sentiment=\"negative\"]')?.title",
        )
        .await;
    assert_eq!(quoted, json!(complaint), "the battery row quotes the API's clearest complaint");
    browser.screenshot(&artifacts.join("dashboard-aspects.png")).await;

    // Search: by words, exactly the refund comments in the range; by meaning, the battery complaints first.
    browser.type_into("#q", "refund").await;
    browser.select("#mode", "bm25").await;
    browser.click("#search-form button[type=submit]").await;
    let found = browser
        .wait_for(
            "(() => { const ids = [...document.querySelectorAll('#search-results .comment')].map(c => c.dataset.id); \
               return ids.length ? ids.sort() : null; })()",
            Duration::from_secs(20),
            "search results",
        )
        .await;
    let refunds: BTreeSet<String> = (0..DAYS).filter(|d| d % 2 == 0).map(|d| format!("twitter/globex-{d}-0")).collect();
    // The storm shows once, as whichever of its comments was stored first (two partitions: not always the
    // original).
    let storm_ids = |id: &str| id == "twitter/globex-0-0" || id.starts_with("twitter/globex-rt-");
    let found: Vec<&str> = found.as_array().expect("ids").iter().filter_map(Value::as_str).collect();
    let shown: BTreeSet<&str> = found.iter().map(|&id| if storm_ids(id) { "twitter/globex-0-0" } else { id }).collect();
    assert_eq!(
        (found.len(), shown),
        (refunds.len(), refunds.iter().map(String::as_str).collect()),
        "a word search finds the refund comments and only those, the retweet storm once"
    );
    let storm = found.iter().find(|id| storm_ids(id)).copied().unwrap_or_default();
    let storm = browser
        .eval(&format!("document.querySelector('#search-results .comment[data-id=\"{storm}\"] .copies')?.textContent"))
        .await;
    assert_eq!(storm, json!(format!("posted {}×", RETWEETS + 1)), "the collapsed result says how often it was posted");
    browser.type_into("#q", "phone battery overheating and swelling").await;
    browser.select("#mode", "semantic").await;
    browser.click("#search-form button[type=submit]").await;
    let top = browser
        .wait_for(
            "(() => { const m = document.getElementById('search-meta').textContent; \
               const ids = [...document.querySelectorAll('#search-results .comment')].map(c => c.dataset.id); \
               return m.includes('by meaning') && ids.length ? ids.slice(0, 5) : null; })()",
            Duration::from_secs(30),
            "semantic results",
        )
        .await;
    assert!(
        top.as_array()
            .is_some_and(|ids| ids.iter().all(|id| id.as_str().is_some_and(|s| s.starts_with("twitter/spike-")))),
        "a search by meaning ranks the battery complaints first: {top}"
    );
    browser.screenshot(&artifacts.join("dashboard-search.png")).await;

    // Reports: the schedule is listed.
    let schedules = browser.eval("document.getElementById('schedules').textContent").await;
    assert!(schedules.as_str().is_some_and(|s| s.contains("Morning brief") && s.contains("0 8 * * *")), "{schedules}");

    // Live: comments that arrive while the page is open show up without a reload.
    let refreshes = browser.eval("Number(document.body.dataset.refreshes)").await;
    let late = produce(&producer, &topics[0], &keyed(&data.late_comments())).await;
    wait_committed(&format!("{run}-worker"), &topics[0], &late, "the worker", &mut procs).await;
    let want = expected.iter().sum::<i64>() + LATE as i64;
    browser
        .wait_for(
            &format!("document.getElementById('kpi-comments').textContent === '{want}' && Number(document.body.dataset.refreshes) > {refreshes}"),
            Duration::from_secs(60),
            "the page to count the late comments",
        )
        .await;
    let counts = browser
        .eval("[...document.querySelectorAll('#volume-chart .bucket')].map(b => Number(b.dataset.commentsCount))")
        .await;
    assert_eq!(counts, json!(data.acme_per_day(true)), "the late comments land in their day's bar");

    // Without brands in the address, the period's most talked-about tags are compared.
    browser.navigate("about:blank").await;
    browser
        .navigate(&format!("{api}/#key={READ_KEY}&range=custom&from={}&to={}", data.day(0), data.day(DAYS - 1)))
        .await;
    let brands = browser
        .wait_for(
            "document.body.dataset.ready && [...document.querySelectorAll('#brand-chips .chip')].map(c => c.dataset.slice)",
            Duration::from_secs(60),
            "the dashboard with its own choice of brands",
        )
        .await;
    assert_eq!(brands, json!(["tag:acme", "tag:globex"]), "tags ranked by comments");

    // With a brand catalogue (defined while the server runs, so the stored comments are re-matched), the
    // dashboard compares the catalogue's brands, and a brand group is compared like a brand.
    let admin = common::client_with_key(ADMIN_KEY);
    for brand in [
        json!({ "name": "Acme", "aliases": ["acme x2"], "group": "Rivals" }),
        json!({ "name": "Globex", "exclusions": ["globex delivery"], "group": "Rivals" }),
    ] {
        let response = admin.post(format!("{api}/v1/brands")).json(&brand).send().await.expect("brand");
        assert_eq!(response.status().as_u16(), 201, "{brand}");
    }
    let caught_up = "(async () => { const r = await fetch('/v1/brands', { headers: { 'x-api-key': '%KEY%' } }); \
                     const b = await r.json(); return b.version === b.rematched_version ? b.version : null; })()";
    browser
        .wait_for(&caught_up.replace("%KEY%", READ_KEY), Duration::from_secs(60), "stored comments re-matched")
        .await;
    browser.navigate("about:blank").await;
    browser
        .navigate(&format!("{api}/#key={READ_KEY}&range=custom&from={}&to={}", data.day(0), data.day(DAYS - 1)))
        .await;
    let brands = browser
        .wait_for(
            "document.body.dataset.ready && [...document.querySelectorAll('#brand-chips .chip')].map(c => c.dataset.slice)",
            Duration::from_secs(60),
            "the dashboard with the catalogue's brands",
        )
        .await;
    assert_eq!(brands, json!(["brand:acme", "brand:globex"]), "the catalogue's brands ranked by comments");
    browser.navigate("about:blank").await;
    browser
        .navigate(&format!(
            "{api}/#key={READ_KEY}&range=custom&from={}&to={}&bucket=day&brands=brand_group:rivals,brand:globex",
            data.day(0),
            data.day(DAYS - 1)
        ))
        .await;
    let shares = browser
        .wait_for(
            "document.body.dataset.ready && [...document.querySelectorAll('#share-chart .series[data-series=\"rivals (group)\"] .point')].map(p => Number(p.dataset.value))",
            Duration::from_secs(60),
            "the group's share of voice",
        )
        .await;
    // Globex's delivery comments are excluded: the brand keeps its refund comment every other day.
    let globex: Vec<i64> = (0..DAYS).map(|d| i64::from(d % 2 == 0)).collect();
    let group: Vec<i64> = data.acme_per_day(true).iter().zip(&globex).map(|(a, g)| a + g).collect();
    let want: Vec<f64> = group.iter().zip(&globex).map(|(r, g)| *r as f64 / (r + g) as f64).collect();
    let shares: Vec<f64> = shares.as_array().expect("points").iter().filter_map(Value::as_f64).collect();
    assert_eq!(shares.len(), want.len(), "one share point per day: {shares:?}");
    for (d, (got, want)) in shares.iter().zip(&want).enumerate() {
        assert!((got - want).abs() < 1e-9, "day {d}: the group's share {got}, expected {want}");
    }
    browser.screenshot(&artifacts.join("dashboard-brands.png")).await;

    // Alerts: a rule that fires on yesterday's Acme comments is listed by the page (evaluated by the server
    // within its tick), and opens the comments behind it.
    let rule = json!({ "name": "Acme daily volume", "slice": { "brand": "Acme" }, "kind": "volume_above",
                       "threshold": ACME_PER_DAY, "min_comments": 1, "bucket": "day" });
    let response = admin.post(format!("{api}/v1/alerts/rules")).json(&rule).send().await.expect("rule");
    assert_eq!(response.status().as_u16(), 201, "alert rule created");
    let listed = "(async () => { const r = await fetch('/v1/alerts', { headers: { 'x-api-key': '%KEY%' } }); \
                  return (await r.json()).alerts.length || null; })()";
    browser.wait_for(&listed.replace("%KEY%", READ_KEY), Duration::from_secs(30), "the rule to fire").await;
    browser.navigate("about:blank").await;
    browser.navigate(&format!("{api}/#key={READ_KEY}")).await;
    let alert = browser
        .wait_for(
            "document.body.dataset.ready && document.querySelector('#alerts [data-alert]')?.textContent",
            Duration::from_secs(60),
            "the alerts list",
        )
        .await;
    let alert = alert.as_str().unwrap_or("").to_owned();
    assert!(alert.contains(&format!("Acme daily volume: {ACME_PER_DAY} comments about Acme in the day")), "{alert}");
    browser.click("#alerts [data-alert]").await;
    let behind = browser
        .wait_for(
            "!document.getElementById('drawer').hidden && document.querySelectorAll('#drawer-list .comment').length \
             && [...document.querySelectorAll('#drawer-list .comment .text')].map(t => t.textContent)",
            Duration::from_secs(30),
            "the comments behind the alert",
        )
        .await;
    let behind: Vec<&str> = behind.as_array().expect("texts").iter().filter_map(Value::as_str).collect();
    assert_eq!(behind.len(), ACME_PER_DAY, "the alert's bucket holds yesterday's Acme comments: {behind:?}");
    assert!(behind.iter().all(|t| t.contains("Acme")), "{behind:?}");
    browser.screenshot(&artifacts.join("dashboard-alerts.png")).await;
    assert_eq!(browser.errors(), &[] as &[String], "no errors while in use");
    procs.assert_running();
}

async fn wait_indexed(client: &reqwest::Client, api: &str, want: usize, procs: &mut Processes) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        procs.assert_running();
        if let Ok(response) = client.get(format!("{api}/readyz")).send().await {
            if let Ok(body) = response.json::<Value>().await {
                if body["indexed"] == want {
                    return;
                }
            }
        }
        assert!(Instant::now() < deadline, "the API never had {want} comments indexed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
