//! Debian's headless Chromium driven over the DevTools protocol: load a page, evaluate script in it, click
//! and type as a user does (real input events at an element's position), collect what the page reports as
//! errors (console errors, uncaught exceptions, failed loads, content-security-policy violations) and take
//! screenshots.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The flags the project runs Chromium with everywhere.
pub const FLAGS: [&str; 4] = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// What the page has reported as errors, in order.
    errors: Vec<String>,
    /// Whether the page fired its load event since the last navigation.
    loaded: bool,
}

impl Browser {
    /// Starts Chromium with a fresh profile and a `width` × `height` window, attached to its one page, in
    /// the UTC time zone.
    pub async fn launch(width: u32, height: u32) -> Self {
        let profile = tempfile::tempdir().expect("profile folder");
        let binary = std::env::var("MURMUR_CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let mut child = Command::new(&binary)
            .args(FLAGS)
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .arg("--hide-scrollbars")
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{binary} starts (infra/system-deps.sh installs it): {e}"));
        // Chromium says where its DevTools endpoint listens on stderr; the rest of stderr is drained so that
        // it never blocks on a full pipe.
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let endpoint = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(at) = line.find("ws://") {
                    return line[at..].trim().to_owned();
                }
            }
            panic!("chromium exited before its DevTools endpoint was up");
        })
        .await
        .expect("chromium's DevTools endpoint within 30 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let port = endpoint
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .and_then(|host| host.rsplit(':').next())
            .expect("endpoint has a port")
            .to_owned();
        let targets: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .expect("DevTools target list")
            .json()
            .await
            .expect("target list is JSON");
        let page = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let (socket, _) = tokio_tungstenite::connect_async(&page).await.expect("DevTools websocket");
        let mut browser = Self { child, _profile: profile, socket, next_id: 1, errors: Vec::new(), loaded: false };
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            browser.call(domain, json!({})).await;
        }
        browser.call("Emulation.setTimezoneOverride", json!({ "timezoneId": "UTC" })).await;
        browser
    }

    /// Sends a DevTools command and returns its result; events that arrive meanwhile are recorded.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket.send(Message::text(request)).await.expect("DevTools socket open");
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let message = self.next_message(deadline, method).await;
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method}: {}", message["error"]);
                return message["result"].clone();
            }
            self.record(&message);
        }
    }

    fn record(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Page.loadEventFired") => self.loaded = true,
            Some("Runtime.consoleAPICalled") if matches!(params["type"].as_str(), Some("error" | "assert")) => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a["value"].as_str().map_or_else(|| a["description"].to_string(), str::to_owned))
                    .collect();
                self.errors.push(format!("console.error: {}", args.join(" ")));
            }
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                let what = details["exception"]["description"].as_str().or(details["text"].as_str()).unwrap_or("?");
                self.errors.push(format!("uncaught: {what}"));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                let entry = &params["entry"];
                self.errors.push(format!("{}: {} {}", entry["source"], entry["text"], entry["url"]));
            }
            _ => {}
        }
    }

    /// Errors the page has reported so far.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Loads `url` and waits for its load event (the document and what it links to are in).
    pub async fn navigate(&mut self, url: &str) {
        self.loaded = false;
        let result = self.call("Page.navigate", json!({ "url": url })).await;
        assert!(result.get("errorText").is_none(), "navigating to {url}: {result}");
        self.wait_loaded(url).await;
    }

    /// Loads the page again, as the reload button does, and waits for its load event.
    pub async fn reload(&mut self) {
        self.loaded = false;
        self.call("Page.reload", json!({})).await;
        self.wait_loaded("the page").await;
    }

    async fn wait_loaded(&mut self, url: &str) {
        let deadline = Instant::now() + CALL_TIMEOUT;
        while !self.loaded {
            let event = self.next_message(deadline, &format!("loading {url}")).await;
            self.record(&event);
        }
    }

    /// The next message from DevTools (a command's answer or an event), waiting at most until `deadline`.
    async fn next_message(&mut self, deadline: Instant, waiting_for: &str) -> Value {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = tokio::time::timeout(left, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("{waiting_for}: nothing within {CALL_TIMEOUT:?}"))
                .expect("DevTools socket open")
                .expect("DevTools message");
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).expect("DevTools sends JSON");
            }
        }
    }

    /// Evaluates an expression in the page (awaiting a promise) and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call("Runtime.evaluate", json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }))
            .await;
        if let Some(details) = result.get("exceptionDetails") {
            panic!("{expression}: {}", details["exception"]["description"].as_str().unwrap_or(&details.to_string()));
        }
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is truthy and returns that value.
    pub async fn wait_for(&mut self, expression: &str, limit: Duration, what: &str) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.eval(expression).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what} ({expression})");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Clicks the middle of the first element `selector` matches, as a mouse does (the page's own
    /// hit-testing decides what receives it).
    pub async fn click(&mut self, selector: &str) {
        let at = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({s}); if (!e) return null; \
                 e.scrollIntoView({{ block: 'center' }}); const r = e.getBoundingClientRect(); \
                 return {{ x: r.x + r.width / 2, y: r.y + r.height / 2 }}; }})()",
                s = json!(selector)
            ))
            .await;
        let (Some(x), Some(y)) = (at["x"].as_f64(), at["y"].as_f64()) else {
            panic!("nothing on the page matches {selector}");
        };
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1 }),
            )
            .await;
        }
    }

    /// Replaces the text of the input `selector` matches by typing `text` into it.
    pub async fn type_into(&mut self, selector: &str, text: &str) {
        let found = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({s}); if (!e) return false; e.focus(); e.select(); return true; }})()",
                s = json!(selector)
            ))
            .await;
        assert_eq!(found, Value::Bool(true), "nothing on the page matches {selector}");
        self.call("Input.insertText", json!({ "text": text })).await;
    }

    /// Picks an option of the `<select>` `selector` matches, as choosing it does (a change event).
    pub async fn select(&mut self, selector: &str, value: &str) {
        let done = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({s}); if (!e) return false; e.value = {v}; \
                 e.dispatchEvent(new Event('change', {{ bubbles: true }})); return e.value === {v}; }})()",
                s = json!(selector),
                v = json!(value)
            ))
            .await;
        assert_eq!(done, Value::Bool(true), "{selector} has no option {value:?}");
    }

    /// Saves a PNG of the whole page, beyond the window where it is longer.
    pub async fn screenshot(&mut self, path: &Path) {
        let metrics = self.call("Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        let (width, height) = (size["width"].as_f64().unwrap_or(1280.0), size["height"].as_f64().unwrap_or(800.0));
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": width, "height": height, "scale": 1 },
                }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
