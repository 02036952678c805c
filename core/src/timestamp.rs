//! Timestamps as people send them: RFC 3339 (`2026-12-03T16:00:00Z`, any offset), read into UTC. The
//! serde helpers say what was expected and what came instead (chrono's own error says only "input contains
//! invalid characters"), for wire messages and query parameters alike.

use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};
use serde::de::{self, Deserializer, Visitor};

/// Shown in every error: what a valid timestamp looks like.
pub const EXAMPLE: &str = "2026-12-03T16:00:00Z";

/// Reads an RFC 3339 timestamp (chrono's reading of it, as before: `T` or a space between date and time).
pub fn parse(raw: &str) -> Result<DateTime<Utc>, String> {
    raw.parse::<DateTime<FixedOffset>>()
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("expected an RFC 3339 timestamp such as {EXAMPLE}, got {raw:?}"))
}

struct Rfc3339;

impl Visitor<'_> for Rfc3339 {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an RFC 3339 timestamp such as {EXAMPLE}")
    }

    fn visit_str<E: de::Error>(self, raw: &str) -> Result<Self::Value, E> {
        parse(raw).map_err(E::custom)
    }
}

/// `#[serde(deserialize_with = "murmur_core::timestamp::deserialize")]`
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    deserializer.deserialize_str(Rfc3339)
}

/// `#[serde(default, deserialize_with = "murmur_core::timestamp::optional")]`
pub fn optional<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    struct Optional;

    impl<'de> Visitor<'de> for Optional {
        type Value = Option<DateTime<Utc>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "an RFC 3339 timestamp such as {EXAMPLE}, or nothing")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserialize(deserializer).map(Some)
        }
    }

    deserializer.deserialize_option(Optional)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Event {
        #[serde(deserialize_with = "deserialize")]
        at: DateTime<Utc>,
        #[serde(default, deserialize_with = "optional")]
        until: Option<DateTime<Utc>>,
    }

    #[test]
    fn offsets_are_read_into_utc_and_refusals_show_the_expected_form() {
        let event: Event = serde_json::from_str(r#"{"at": "2026-12-03T17:00:00+01:00"}"#).expect("valid");
        assert_eq!(event.at.to_rfc3339(), "2026-12-03T16:00:00+00:00");
        assert_eq!(event.until, None);
        let event: Event = serde_json::from_str(r#"{"at": "2026-12-03 16:00:00Z", "until": null}"#).expect("space");
        assert_eq!((event.at.to_rfc3339().as_str(), event.until), ("2026-12-03T16:00:00+00:00", None));
        let error = serde_json::from_str::<Event>(r#"{"at": "yesterday"}"#).err().map(|e| e.to_string());
        let error = error.unwrap_or_default();
        assert!(error.starts_with(&format!(r#"expected an RFC 3339 timestamp such as {EXAMPLE}, got "yesterday""#)));
        let error = serde_json::from_str::<Event>(r#"{"at": 1764777600}"#).err().map(|e| e.to_string());
        assert!(error.unwrap_or_default().contains("expected an RFC 3339 timestamp"));
        let error = serde_json::from_str::<Event>(r#"{"at": "2026-12-03T16:00:00Z", "until": "soon"}"#).err();
        assert!(error.map(|e| e.to_string()).unwrap_or_default().contains(r#"got "soon""#));
    }
}
