//! Per-client request rate limits: a token bucket per peer address, refilled at `per_second` up to `burst`.
//! A request that finds its bucket empty is answered 429 with `Retry-After`, before any handler runs. Health,
//! readiness and metrics are exempt (probes and scrapers must always get through). The peer is the TCP peer:
//! behind a proxy every client shares one bucket, so limit at the proxy there (or turn this off).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::{ApiError, AppState};

/// Paths no limit applies to.
const EXEMPT: [&str; 3] = ["/healthz", "/readyz", "/metrics"];
/// Past this many tracked clients, full (idle) buckets are forgotten, so memory stays bounded.
const MAX_TRACKED_CLIENTS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second per client.
    pub per_second: f64,
    /// Requests a client may make at once after being idle.
    pub burst: f64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every client seen lately.
#[derive(Clone)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Arc<Mutex<HashMap<IpAddr, Bucket>>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self { limit, buckets: Arc::default() }
    }

    /// Takes a token for `client` at `now`; when none is left, how many seconds until one is.
    fn take(&self, client: IpAddr, now: Instant) -> Result<(), f64> {
        let RateLimit { per_second, burst } = self.limit;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(&client) {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < burst);
        }
        let bucket = buckets.entry(client).or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - bucket.tokens) / per_second)
        }
    }
}

/// The middleware: a 429 for a client over its limit, the route otherwise.
pub(crate) async fn enforce(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limiter = request.app_data::<web::Data<AppState>>().and_then(|s| s.rate_limiter.clone());
    let client = request.peer_addr().map(|a| a.ip());
    if let (Some(limiter), Some(client)) = (limiter, client) {
        if !EXEMPT.contains(&request.path()) {
            if let Err(wait) = limiter.take(client, Instant::now()) {
                let seconds = wait.ceil().max(1.0) as u64;
                let mut response = actix_web::ResponseError::error_response(&ApiError::RateLimited(seconds));
                response
                    .headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from(seconds));
                return Ok(request.into_response(response).map_into_right_body());
            }
        }
    }
    Ok(next.call(request).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate_per_client() {
        let limiter = RateLimiter::new(RateLimit { per_second: 2.0, burst: 3.0 });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().expect("ip"), "10.0.0.2".parse().expect("ip"));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(a, t0).is_ok());
        }
        let wait = limiter.take(a, t0).expect_err("burst spent");
        assert!((wait - 0.5).abs() < 1e-9, "{wait}");
        assert!(limiter.take(b, t0).is_ok(), "another client has its own bucket");
        assert!(limiter.take(a, t0 + Duration::from_millis(500)).is_ok(), "one token back after 1/rate");
        assert!(limiter.take(a, t0 + Duration::from_millis(500)).is_err());
        for _ in 0..3 {
            assert!(limiter.take(a, t0 + Duration::from_secs(60)).is_ok(), "refilled to the burst, not beyond");
        }
        assert!(limiter.take(a, t0 + Duration::from_secs(60)).is_err());
    }
}
