//! Typed request input. [`Query`] and [`Body`] replace actix's extractors so that a refusal names the
//! parameter or field at fault, the value sent and what was expected (`limit: expected a whole number,
//! got "-5"` rather than "invalid digit found in string"). Handlers take them like `web::Query`/`web::Json`.

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use utoipa::openapi::path::ParameterIn;
use utoipa::IntoParams;

use crate::ApiError;

/// The longest path and query taken, in bytes; a longer one is a 414 with the JSON error before any handler
/// runs. (Past 64 KiB the HTTP layer itself answers an empty 400 before murmur sees the request: the `http`
/// crate's URI limit, which actix offers no hook for.)
pub(crate) const MAX_URI_BYTES: usize = 16 * 1024;

/// Middleware: refuses a request whose path and query are longer than [`MAX_URI_BYTES`].
pub(crate) async fn refuse_long_uri(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let length = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if length > MAX_URI_BYTES {
        let response = actix_web::ResponseError::error_response(&ApiError::UriTooLong(length));
        return Ok(request.into_response(response).map_into_right_body());
    }
    Ok(next.call(request).await?.map_into_left_body())
}

/// A route's query-string parameters: a tuple of the parameter groups it combines (`Query<(SearchParams,)>`,
/// `Query<(WindowParams, SliceParams)>`). A route takes exactly the parameters its groups list in the OpenAPI
/// document (their `IntoParams`): any other is refused by name, with the ones the route takes.
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

impl<T: QueryParams> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(T::from_query(request.query_string()).map(Self))
    }
}

/// Parameter groups a [`Query`] can be made of: tuples of types that deserialize from a query string and
/// document themselves (`IntoParams`).
pub(crate) trait QueryParams: Sized {
    fn from_query(query: &str) -> Result<Self, ApiError>;
}

macro_rules! query_params {
    ($($group:ident),+) => {
        impl<$($group: DeserializeOwned + IntoParams + 'static),+> QueryParams for ($($group,)+) {
            fn from_query(query: &str) -> Result<Self, ApiError> {
                refuse_unknown(query, &[$(names_of::<$group>()),+])?;
                Ok(($(parse_query::<$group>(query)?,)+))
            }
        }
    };
}

query_params!(A);
query_params!(A, B);
query_params!(A, B, C);
query_params!(A, B, C, D);

/// The parameter names group `T` documents, worked out once per type and thread: `into_params` builds the
/// group's whole OpenAPI description, which is not work for every request.
fn names_of<T: IntoParams + 'static>() -> Rc<[String]> {
    thread_local! {
        static NAMES: RefCell<HashMap<TypeId, Rc<[String]>>> = RefCell::new(HashMap::new());
    }
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        let entry = names
            .entry(TypeId::of::<T>())
            .or_insert_with(|| T::into_params(|| Some(ParameterIn::Query)).into_iter().map(|p| p.name).collect());
        Rc::clone(entry)
    })
}

/// The first parameter of `query` not among the `groups`' names, refused by name.
fn refuse_unknown(query: &str, groups: &[Rc<[String]>]) -> Result<(), ApiError> {
    let names = groups.iter().flat_map(|group| group.iter());
    match form_urlencoded::parse(query.as_bytes()).find(|(key, _)| !names.clone().any(|name| name == key)) {
        None => Ok(()),
        Some((key, _)) => {
            let known: Vec<String> = names.map(|name| format!("`{name}`")).collect();
            Err(ApiError::BadRequest(format!("unknown parameter `{key}`, expected one of {}", known.join(", "))))
        }
    }
}

/// Parses a query string into `T` (other parameters ignored: [`refuse_unknown`] is the check), naming the
/// parameter at fault.
fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs = form_urlencoded::parse(query.as_bytes());
    serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs)).map_err(|e| {
        let name = e.path().to_string();
        let message = explain(&e.inner().to_string());
        match form_urlencoded::parse(query.as_bytes()).find(|(key, _)| *key == name) {
            // Values that fail a type's own parser: say which, what came and what was expected.
            Some((_, sent)) if !sent.is_empty() && !message.contains(&*sent) => {
                ApiError::BadRequest(format!("{name}: {message}, got {sent:?}"))
            }
            Some(_) => ApiError::BadRequest(format!("{name}: {message}")),
            // Missing parameters: serde's message names them.
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

    #[derive(Debug, Deserialize, IntoParams)]
    struct Params {
        limit: Option<i64>,
        #[serde(default, deserialize_with = "murmur_core::timestamp::optional")]
        from: Option<DateTime<Utc>>,
        format: Option<Format>,
        #[serde(default)]
        facets: bool,
    }

    #[derive(Debug, Deserialize, PartialEq, utoipa::ToSchema)]
    #[serde(rename_all = "lowercase")]
    enum Format {
        Json,
        Svg,
    }

    #[derive(Debug, Deserialize, IntoParams)]
    struct Paging {
        cursor: Option<String>,
    }

    fn refusal(query: &str) -> String {
        match <(Params, Paging)>::from_query(query) {
            Err(ApiError::BadRequest(message)) => message,
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn refusals_name_the_parameter_the_value_and_what_was_expected() {
        let (ok, paging) =
            <(Params, Paging)>::from_query("limit=5&from=2026-12-03T16%3A00%3A00Z&format=svg&facets=true&cursor=c")
                .expect("valid");
        assert_eq!((ok.limit, ok.format, ok.facets), (Some(5), Some(Format::Svg), true));
        assert_eq!(paging.cursor.as_deref(), Some("c"));
        assert_eq!(ok.from.map(|t| t.to_rfc3339()), Some("2026-12-03T16:00:00+00:00".into()));
        assert_eq!(refusal("limit=abc"), r#"limit: expected a whole number in range, got "abc""#);
        assert_eq!(
            refusal("from=yesterday"),
            r#"from: expected an RFC 3339 timestamp such as 2026-12-03T16:00:00Z, got "yesterday""#
        );
        assert_eq!(refusal("format=png"), "format: unknown variant `png`, expected `json` or `svg`");
        assert_eq!(refusal("facets=yes"), r#"facets: expected true or false, got "yes""#);
        assert_eq!(
            refusal("limit=5&colour=red"),
            "unknown parameter `colour`, expected one of `limit`, `from`, `format`, `facets`, `cursor`"
        );
    }
}
