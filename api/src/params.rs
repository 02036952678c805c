//! Typed request input. [`Query`] and [`Body`] replace actix's extractors so that a refusal names the
//! parameter or field at fault, the value sent and what was expected (`limit: expected a whole number,
//! got "-5"` rather than "invalid digit found in string"). Handlers take them like `web::Query`/`web::Json`.

use std::future::{ready, Future, Ready};
use std::pin::Pin;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// Query-string parameters of type `T` (a struct with `deny_unknown_fields`).
pub(crate) struct Query<T>(pub T);

impl<T> std::ops::Deref for Query<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Query<T> {
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_query(request.query_string()).map(Self))
    }
}

/// Parses a query string into `T`, naming the parameter at fault.
pub(crate) fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs = form_urlencoded::parse(query.as_bytes());
    serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs)).map_err(|e| {
        let name = e.path().to_string();
        let message = explain(&e.inner().to_string());
        if message.starts_with("unknown field") {
            // serde names the parameter and lists the ones this route takes.
            return ApiError::BadRequest(message);
        }
        match form_urlencoded::parse(query.as_bytes()).find(|(key, _)| *key == name) {
            // Values that fail a type's own parser: say which, what came and what was expected.
            Some((_, sent)) if !sent.is_empty() && !message.contains(&*sent) => {
                ApiError::BadRequest(format!("{name}: {message}, got {sent:?}"))
            }
            Some(_) => ApiError::BadRequest(format!("{name}: {message}")),
            // Unknown or missing parameters: serde's message names them.
            None => ApiError::BadRequest(message),
        }
    })
}

/// std's number parsers say what went wrong, not what was wanted.
fn explain(message: &str) -> String {
    match message {
        "invalid digit found in string"
        | "cannot parse integer from empty string"
        | "number too large to fit in target type"
        | "number too small to fit in target type" => "expected a whole number in range".into(),
        "invalid float literal" => "expected a number".into(),
        "provided string was not `true` or `false`" => "expected true or false".into(),
        other => other.into(),
    }
}

/// A `limit` parameter within 1..=`max` (`default` when absent), as every listing route reads it.
pub(crate) fn limit(limit: Option<i64>, default: i64, max: i64) -> Result<usize, ApiError> {
    match limit.unwrap_or(default) {
        n if (1..=max).contains(&n) => Ok(n as usize),
        n => Err(ApiError::BadRequest(format!("limit: expected 1-{max}, got {n}"))),
    }
}

/// A JSON body of type `T`, within the size limit of the app's `JsonConfig`.
pub(crate) struct Body<T>(pub T);

impl<T> Body<T> {
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // The size limit, content type and JSON syntax are checked by the app's `JsonConfig` (its errors
        // pass through as they are); the shape here.
        let json = web::Json::<serde_json::Value>::from_request(request, payload);
        Box::pin(async move { Ok(Self(from_json(json.await?.into_inner())?)) })
    }
}

/// A JSON value as `T`, naming the field at fault (`texts[2]: invalid type: integer…`).
pub(crate) fn from_json<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| match e.path().iter().next() {
        None => ApiError::BadRequest(e.inner().to_string()),
        Some(_) => ApiError::BadRequest(format!("{}: {}", e.path(), e.inner())),
    })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params {
        limit: Option<i64>,
        #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
        from: Option<DateTime<Utc>>,
        format: Option<Format>,
        #[serde(default)]
        facets: bool,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Format {
        Json,
        Svg,
    }

    fn refusal(query: &str) -> String {
        match parse_query::<Params>(query) {
            Err(ApiError::BadRequest(message)) => message,
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn refusals_name_the_parameter_the_value_and_what_was_expected() {
        let ok: Params = parse_query("limit=5&from=2026-12-03T16%3A00%3A00Z&format=svg&facets=true").expect("valid");
        assert_eq!((ok.limit, ok.format, ok.facets), (Some(5), Some(Format::Svg), true));
        assert_eq!(ok.from.map(|t| t.to_rfc3339()), Some("2026-12-03T16:00:00+00:00".into()));
        assert_eq!(refusal("limit=abc"), r#"limit: expected a whole number in range, got "abc""#);
        assert_eq!(
            refusal("from=yesterday"),
            r#"from: expected an RFC 3339 timestamp such as 2026-12-03T16:00:00Z, got "yesterday""#
        );
        assert_eq!(refusal("format=png"), "format: unknown variant `png`, expected `json` or `svg`");
        assert_eq!(refusal("facets=yes"), r#"facets: expected true or false, got "yes""#);
        let unknown = refusal("colour=red");
        assert!(unknown.starts_with("unknown field `colour`, expected one of `limit`"), "{unknown}");
    }
}
