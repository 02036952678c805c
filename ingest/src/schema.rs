//! The `comments` wire format, version 1, and its validation. A producer sends one JSON object per message:
//!
//! | field        | type                 | rule                                                          |
//! |--------------|----------------------|---------------------------------------------------------------|
//! | `schema`     | integer, optional    | `1` (the default)                                             |
//! | `id`         | string               | 1–256 bytes, no control characters; unique per `source`       |
//! | `source`     | string               | 1–64 of `a-z 0-9 . _ -` (e.g. `twitter`, `app-store`)         |
//! | `author`     | string, optional     | ≤ 256 bytes; stored only as a keyed-hash pseudonym            |
//! | `text`       | string               | not blank, ≤ [`Limits::max_text_bytes`]                       |
//! | `created_at` | RFC 3339 timestamp   | not more than a day in the future                             |
//! | `lang`       | string, optional     | ≤ 16 of `A-Z a-z -` (BCP 47 tag such as `en`, `pt-BR`)        |
//! | `url`        | string, optional     | `http(s)://…`, ≤ 2048 bytes                                   |
//! | `tags`       | array of strings     | ≤ 64 tags of 1–64 bytes; trimmed, lower-cased, de-duplicated |
//! | `metadata`   | object, optional     | ≤ [`Limits::max_metadata_bytes`] as JSON                      |
//!
//! Unknown fields are rejected (a typo must not silently drop data), and no string may contain NUL, which
//! Postgres cannot store. Anything that fails goes to the DLQ with the [`Rejection`] reason.

use chrono::{DateTime, Duration, Utc};
use murmur_core::Comment;
use serde::Deserialize;

use crate::Pseudonymizer;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_text_bytes: usize,
    pub max_metadata_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_text_bytes: 100_000, max_metadata_bytes: 16_384 }
    }
}

/// Why a message was refused; the text goes into the DLQ record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(pub String);

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn reject<T>(reason: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection(reason.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a comment object with id, source, text and created_at")]
struct WireComment {
    #[serde(default)]
    schema: Option<u32>,
    id: String,
    source: String,
    #[serde(default)]
    author: Option<String>,
    text: String,
    #[serde(deserialize_with = "murmur_core::timestamp::deserialize")]
    created_at: DateTime<Utc>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Turns raw message bytes into a [`Comment`], or says why not.
#[derive(Debug, Clone)]
pub struct Validator {
    pseudonymizer: Pseudonymizer,
    limits: Limits,
}

impl Validator {
    pub fn new(pseudonymizer: Pseudonymizer, limits: Limits) -> Self {
        Self { pseudonymizer, limits }
    }

    pub fn validate(&self, payload: &[u8]) -> Result<Comment, Rejection> {
        self.validate_at(payload, Utc::now())
    }

    fn validate_at(&self, payload: &[u8], now: DateTime<Utc>) -> Result<Comment, Rejection> {
        let text = match std::str::from_utf8(payload) {
            Ok(text) => text,
            Err(e) => return reject(format!("payload is not valid UTF-8 (at byte {})", e.valid_up_to())),
        };
        // The path names the field at fault (`created_at: expected an RFC 3339 timestamp…`).
        let wire: WireComment = match serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text)) {
            Ok(wire) => wire,
            Err(e) if e.path().iter().next().is_none() => {
                return reject(format!("invalid comment JSON: {}", e.inner()))
            }
            Err(e) => return reject(format!("invalid comment JSON: {}: {}", e.path(), e.inner())),
        };
        if let Some(version) = wire.schema {
            if version != SCHEMA_VERSION {
                return reject(format!("unsupported schema version {version} (this worker reads {SCHEMA_VERSION})"));
            }
        }
        check_no_nul("id", &wire.id)?;
        check_no_nul("source", &wire.source)?;
        check_no_nul("text", &wire.text)?;

        if let Err(why) = murmur_core::check_source(&wire.source) {
            return reject(why);
        }
        if let Err(why) = murmur_core::check_comment_id(&wire.id) {
            return reject(why);
        }
        if wire.text.trim().is_empty() {
            return reject("text is empty");
        }
        if wire.text.len() > self.limits.max_text_bytes {
            return reject(format!(
                "text is {} bytes, over the limit of {}",
                wire.text.len(),
                self.limits.max_text_bytes
            ));
        }
        if wire.created_at > now + Duration::days(1) {
            return reject(format!("created_at {} is in the future", wire.created_at.to_rfc3339()));
        }
        let author = match wire.author {
            Some(author) if author.len() > 256 => return reject("author is over 256 bytes"),
            Some(author) if author.is_empty() => None,
            Some(author) => {
                check_no_nul("author", &author)?;
                Some(self.pseudonymizer.pseudonymize(&wire.source, &author))
            }
            None => None,
        };
        let lang = match wire.lang {
            Some(lang)
                if lang.is_empty()
                    || lang.len() > 16
                    || !lang.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') =>
            {
                return reject(format!("lang {lang:?} is not a language tag"))
            }
            other => other,
        };
        let url = match wire.url {
            Some(url) if url.len() > 2048 || !(url.starts_with("http://") || url.starts_with("https://")) => {
                return reject("url must be an http(s) URL of at most 2048 bytes")
            }
            Some(url) => {
                check_no_nul("url", &url)?;
                Some(url)
            }
            None => None,
        };
        let tags = normalise_tags(wire.tags.unwrap_or_default())?;
        let metadata = wire.metadata.unwrap_or_default();
        let metadata_json = serde_json::Value::Object(metadata);
        if contains_nul(&metadata_json) {
            return reject("metadata contains a NUL character");
        }
        let metadata_bytes = metadata_json.to_string().len();
        if metadata_bytes > self.limits.max_metadata_bytes {
            return reject(format!(
                "metadata is {metadata_bytes} bytes, over the limit of {}",
                self.limits.max_metadata_bytes
            ));
        }
        let serde_json::Value::Object(metadata) = metadata_json else { unreachable!("built as an object") };
        Ok(Comment {
            source: wire.source,
            id: wire.id,
            author,
            text: wire.text,
            created_at: wire.created_at,
            lang,
            url,
            tags,
            metadata,
        })
    }
}

fn check_no_nul(field: &str, value: &str) -> Result<(), Rejection> {
    if value.contains('\0') {
        return reject(format!("{field} contains a NUL character"));
    }
    Ok(())
}

fn contains_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(contains_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

fn normalise_tags(raw: Vec<String>) -> Result<Vec<String>, Rejection> {
    if raw.len() > 64 {
        return reject(format!("{} tags, over the limit of 64", raw.len()));
    }
    let mut tags: Vec<String> = Vec::with_capacity(raw.len());
    for tag in raw {
        let tag = tag.trim().to_lowercase();
        if tag.is_empty() || tag.len() > 64 || tag.contains('\0') {
            return reject("tags must be 1-64 bytes each, without NUL");
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator() -> Validator {
        Validator::new(Pseudonymizer::new(b"test-key"), Limits::default())
    }

    const GOOD: &str = r#"{"id":"1","source":"twitter","author":"@alice","text":"Battery dies fast",
        "created_at":"2026-01-02T03:04:05Z","lang":"en","tags":[" Pixel ","pixel","Google"],"metadata":{"likes":3}}"#;

    #[test]
    fn accepts_and_normalises_a_good_comment() {
        let c = validator().validate(GOOD.as_bytes()).expect("valid");
        assert_eq!((c.source.as_str(), c.id.as_str()), ("twitter", "1"));
        assert_eq!(c.tags, vec!["pixel", "google"]);
        let author = c.author.expect("author kept as pseudonym");
        assert!(author.starts_with("a_") && !author.contains("alice"));
        assert_eq!(c.metadata["likes"], 3);
    }

    #[test]
    fn rejects_with_reasons() {
        let v = validator();
        let cases: &[(&[u8], &str)] = &[
            (b"\xff\xfe{}", "not valid UTF-8"),
            (b"{not json", "invalid comment JSON"),
            (br#"{"id":"1","source":"x","created_at":"2026-01-01T00:00:00Z"}"#, "missing field `text`"),
            (br#"{"id":1,"source":"x","text":"t","created_at":"2026-01-01T00:00:00Z"}"#, "id: invalid type: integer"),
            (br#"{"id":"1","source":"x","text":"  ","created_at":"2026-01-01T00:00:00Z"}"#, "text is empty"),
            (br#"{"id":"1","source":"X Y","text":"t","created_at":"2026-01-01T00:00:00Z"}"#, "source"),
            (
                br#"{"id":"1","source":"x","text":"t","created_at":"yesterday"}"#,
                r#"created_at: expected an RFC 3339 timestamp such as 2026-12-03T16:00:00Z, got "yesterday""#,
            ),
            (br#"{"id":"1","source":"x","text":"t","created_at":"2026-01-01T00:00:00Z","tags":[1]}"#, "tags[0]: "),
            (br#"{"id":"1","source":"x","text":"t","created_at":"2999-01-01T00:00:00Z"}"#, "in the future"),
            (br#"{"id":"1","source":"x","text":"a\u0000b","created_at":"2026-01-01T00:00:00Z"}"#, "NUL"),
            (br#"{"id":"1","source":"x","text":"t","created_at":"2026-01-01T00:00:00Z","colour":1}"#, "unknown field"),
            (br#"{"schema":2,"id":"1","source":"x","text":"t","created_at":"2026-01-01T00:00:00Z"}"#, "schema version"),
            (br#"{"id":"1","source":"x","text":"t","created_at":"2026-01-01T00:00:00Z","url":"ftp://a"}"#, "url"),
            (br#"[]"#, "expected a comment object with id, source, text and created_at"),
        ];
        for (payload, expected) in cases {
            let err = v.validate(payload).expect_err(&String::from_utf8_lossy(payload));
            assert!(
                err.0.contains(expected),
                "{:?}: reason {:?} lacks {expected:?}",
                String::from_utf8_lossy(payload),
                err.0
            );
        }
    }

    #[test]
    fn enforces_size_limits() {
        let v = Validator::new(Pseudonymizer::new(b"k"), Limits { max_text_bytes: 10, max_metadata_bytes: 20 });
        let long = br#"{"id":"1","source":"x","text":"0123456789a","created_at":"2026-01-01T00:00:00Z"}"#;
        assert!(v.validate(long).expect_err("too long").0.contains("over the limit"));
        let meta = br#"{"id":"1","source":"x","text":"t","created_at":"2026-01-01T00:00:00Z","metadata":{"k":"0123456789012345"}}"#;
        assert!(v.validate(meta).expect_err("too big").0.contains("metadata"));
    }
}
