//! API keys, in three scopes, each including the ones before it: `read` (search, comments, trends, reports),
//! `write` (`POST /v1/enrich`, creating report schedules) and `admin` (deleting schedules, seeing webhook URLs
//! unmasked). With no key configured, reads are open and writes refused; once any key is configured, reads
//! need a key too. Health, readiness, metrics, the OpenAPI document and the dashboard's own files stay open.
//! Keys are configured as `scope:key` pairs (`MURMUR_API_KEYS=admin:…,write:…,read:…`), kept only as SHA-256
//! digests, compared in constant time, and sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`.

use std::future::{ready, Ready};
use std::marker::PhantomData;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

/// The configured keys; none configured means reads are open and every write and admin route answers 401.
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
            let (scope, key) =
                pair.split_once(':').ok_or("API keys are scope:key pairs (scope: read, write or admin)")?;
            let scope = Scope::parse(scope.trim()).ok_or_else(|| format!("unknown API key scope {scope:?}"))?;
            if key.len() < MIN_KEY_CHARS {
                return Err(format!("API keys must be at least {MIN_KEY_CHARS} characters"));
            }
            keys.push((scope, digest(key)));
        }
        Ok(Self { keys })
    }

    /// Whether any configured key may write (`POST /v1/enrich`, schedules).
    pub fn allow_writes(&self) -> bool {
        self.keys.iter().any(|(scope, _)| *scope >= Scope::Write)
    }

    /// The scope the request's key grants when it covers `needed`; `None` for a read on a server without
    /// keys (open to all).
    fn require(&self, request: &HttpRequest, needed: Scope) -> Result<Option<Scope>, ApiError> {
        if needed == Scope::Read && self.keys.is_empty() {
            return Ok(None);
        }
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
            granted => Ok(granted),
        }
    }
}

/// The scope a route needs, as a type.
pub(crate) trait Needs {
    const SCOPE: Scope;
}

pub(crate) struct Read;
pub(crate) struct Write;
pub(crate) struct Admin;

impl Needs for Read {
    const SCOPE: Scope = Scope::Read;
}

impl Needs for Write {
    const SCOPE: Scope = Scope::Write;
}

impl Needs for Admin {
    const SCOPE: Scope = Scope::Admin;
}

/// A handler's first argument on every read, write and admin route: extracted before the body is read, so a
/// request without a valid key is refused (401/403) before anything else is looked at. It holds the scope
/// the key granted (`None`: a read on a server without keys).
pub(crate) struct Authorized<N: Needs> {
    pub granted: Option<Scope>,
    needs: PhantomData<N>,
}

impl<N: Needs> FromRequest for Authorized<N> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match request.app_data::<web::Data<AppState>>() {
            Some(state) => state.keys.require(request, N::SCOPE).map(|granted| Self { granted, needs: PhantomData }),
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
        let keys =
            ApiKeys::parse("admin:aaaaaaaaaaaaaaaa1, write:wwwwwwwwwwwwwwww1, read:rrrrrrrrrrrrrrrr1").expect("valid");
        let with = |header: (&str, &str)| TestRequest::default().insert_header(header).to_http_request();
        let admin = with(("authorization", "Bearer aaaaaaaaaaaaaaaa1"));
        let write = with(("x-api-key", "wwwwwwwwwwwwwwww1"));
        let read = with(("x-api-key", "rrrrrrrrrrrrrrrr1"));
        assert_eq!(keys.require(&admin, Scope::Admin).ok(), Some(Some(Scope::Admin)));
        assert_eq!(keys.require(&admin, Scope::Read).ok(), Some(Some(Scope::Admin)));
        assert_eq!(keys.require(&write, Scope::Write).ok(), Some(Some(Scope::Write)));
        assert_eq!(keys.require(&read, Scope::Read).ok(), Some(Some(Scope::Read)));
        assert!(matches!(keys.require(&read, Scope::Write), Err(ApiError::Forbidden(_))));
        assert!(matches!(keys.require(&write, Scope::Admin), Err(ApiError::Forbidden(_))));
        let wrong = with(("x-api-key", "wwwwwwwwwwwwwwww2"));
        assert!(matches!(keys.require(&wrong, Scope::Write), Err(ApiError::Unauthorized(_))));
        let none = TestRequest::default().to_http_request();
        assert!(matches!(keys.require(&none, Scope::Write), Err(ApiError::Unauthorized(_))));
        // Once keys exist, reads need one; without keys, reads are open and writes refused.
        assert!(matches!(keys.require(&none, Scope::Read), Err(ApiError::Unauthorized(_))));
        assert_eq!(ApiKeys::default().require(&none, Scope::Read).ok(), Some(None));
        assert!(matches!(ApiKeys::default().require(&admin, Scope::Write), Err(ApiError::Unauthorized(_))));
        assert!(keys.allow_writes());
        assert!(!ApiKeys::parse("read:rrrrrrrrrrrrrrrr1").expect("valid").allow_writes());
        assert!(!ApiKeys::default().allow_writes());
        assert!(ApiKeys::parse("root:aaaaaaaaaaaaaaaa1").is_err());
        assert!(ApiKeys::parse("write:short").is_err());
    }
}
