//! API keys. Reads are open; writes (`POST /v1/enrich`, report schedules) need a key with the `write` scope,
//! admin routes (deleting schedules) one with `admin` (which includes `write`). Keys are configured as
//! `scope:key` pairs (`MURMUR_API_KEYS=admin:…,write:…`), kept only as SHA-256 digests, compared in constant
//! time, and sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`.

use std::future::{ready, Ready};
use std::marker::PhantomData;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Write,
    Admin,
}

impl Scope {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

/// The configured keys; none configured means every write and admin route answers 401.
#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<(Scope, [u8; 32])>,
}

/// Shortest key accepted: guessing one must be hopeless.
const MIN_KEY_CHARS: usize = 16;

impl ApiKeys {
    /// `scope:key` pairs separated by commas, e.g. `admin:k1…,write:k2…`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (scope, key) = pair.split_once(':').ok_or("API keys are scope:key pairs (scope: write or admin)")?;
            let scope = Scope::parse(scope.trim()).ok_or_else(|| format!("unknown API key scope {scope:?}"))?;
            if key.len() < MIN_KEY_CHARS {
                return Err(format!("API keys must be at least {MIN_KEY_CHARS} characters"));
            }
            keys.push((scope, digest(key)));
        }
        Ok(Self { keys })
    }

    /// Ok when the request carries a key whose scope covers `needed`.
    fn require(&self, request: &HttpRequest, needed: Scope) -> Result<(), ApiError> {
        let headers = request.headers();
        let presented = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .or_else(|| {
                headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
            })
            .map(str::trim);
        let Some(presented) = presented.filter(|k| !k.is_empty()) else {
            return Err(ApiError::Unauthorized(format!(
                "this route needs an API key with the {} scope",
                needed.as_str()
            )));
        };
        let presented = digest(presented);
        // Every configured key is compared, in constant time, whichever matches.
        let mut granted: Option<Scope> = None;
        for (scope, key) in &self.keys {
            let same = key.iter().zip(&presented).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
            if same {
                granted = granted.max(Some(*scope));
            }
        }
        match granted {
            None => Err(ApiError::Unauthorized("unknown API key".into())),
            Some(scope) if scope < needed => {
                Err(ApiError::Forbidden(format!("this route needs the {} scope", needed.as_str())))
            }
            Some(_) => Ok(()),
        }
    }
}

/// The scope a route needs, as a type.
pub(crate) trait Needs {
    const SCOPE: Scope;
}

pub(crate) struct Write;
pub(crate) struct Admin;

impl Needs for Write {
    const SCOPE: Scope = Scope::Write;
}

impl Needs for Admin {
    const SCOPE: Scope = Scope::Admin;
}

/// A handler's first argument on write and admin routes: extracted before the body is read, so a request
/// without a valid key is refused (401/403) before anything else is looked at.
pub(crate) struct Authorized<N: Needs>(PhantomData<N>);

impl<N: Needs> FromRequest for Authorized<N> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match request.app_data::<web::Data<AppState>>() {
            Some(state) => state.keys.require(request, N::SCOPE).map(|()| Self(PhantomData)),
            None => Err(ApiError::Internal),
        })
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn scopes_are_checked_and_keys_must_match() {
        let keys = ApiKeys::parse("admin:aaaaaaaaaaaaaaaa1, write:wwwwwwwwwwwwwwww1").expect("valid");
        let with = |header: (&str, &str)| TestRequest::default().insert_header(header).to_http_request();
        let admin = with(("authorization", "Bearer aaaaaaaaaaaaaaaa1"));
        let write = with(("x-api-key", "wwwwwwwwwwwwwwww1"));
        assert!(keys.require(&admin, Scope::Admin).is_ok());
        assert!(keys.require(&admin, Scope::Write).is_ok());
        assert!(keys.require(&write, Scope::Write).is_ok());
        assert!(matches!(keys.require(&write, Scope::Admin), Err(ApiError::Forbidden(_))));
        let wrong = with(("x-api-key", "wwwwwwwwwwwwwwww2"));
        assert!(matches!(keys.require(&wrong, Scope::Write), Err(ApiError::Unauthorized(_))));
        let none = TestRequest::default().to_http_request();
        assert!(matches!(keys.require(&none, Scope::Write), Err(ApiError::Unauthorized(_))));
        assert!(matches!(ApiKeys::default().require(&admin, Scope::Write), Err(ApiError::Unauthorized(_))));
        assert!(ApiKeys::parse("root:aaaaaaaaaaaaaaaa1").is_err());
        assert!(ApiKeys::parse("write:short").is_err());
    }
}
