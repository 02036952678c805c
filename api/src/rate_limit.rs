//! Per-client request rate limits: a token bucket per peer address, refilled at `per_second` up to `burst`.
//! A request that finds its bucket empty is answered 429 with `Retry-After`, before any handler runs. Health,
//! readiness and metrics are exempt (probes and scrapers must always get through). The client is the TCP
//! peer's IPv4 address, or its IPv6 /64 (one subscriber's prefix: rotating addresses within it does not get
//! around the limit). Behind a proxy every client shares one bucket, so limit at the proxy there (or turn
//! this off). Memory is bounded: past [`MAX_TRACKED_CLIENTS`], idle buckets are forgotten, then the longest
//! unseen, down to three quarters of the bound, so the sweep runs at most once per quarter-bound of new clients.

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
/// Clients tracked at most.
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

/// Who a bucket belongs to: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4(u32),
    V6Prefix(u64),
}

impl From<IpAddr> for Client {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.into()),
                None => Self::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// The buckets of every client seen lately.
#[derive(Clone)]
pub struct RateLimiter {
    limit: RateLimit,
    capacity: usize,
    buckets: Arc<Mutex<HashMap<Client, Bucket>>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self::with_capacity(limit, MAX_TRACKED_CLIENTS)
    }

    fn with_capacity(limit: RateLimit, capacity: usize) -> Self {
        Self { limit, capacity: capacity.max(4), buckets: Arc::default() }
    }

    /// Takes a token for `ip`'s client at `now`; when none is left, how many seconds until one is.
    fn take(&self, ip: IpAddr, now: Instant) -> Result<(), f64> {
        let RateLimit { per_second, burst } = self.limit;
        let client = Client::from(ip);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= self.capacity && !buckets.contains_key(&client) {
            self.sweep(&mut buckets, now);
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

    /// Forgets the clients whose bucket has refilled (they would start full anyway), then, if that is not
    /// enough, those unseen longest, down to three quarters of the capacity.
    fn sweep(&self, buckets: &mut HashMap<Client, Bucket>, now: Instant) {
        let RateLimit { per_second, burst } = self.limit;
        buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < burst);
        let keep = self.capacity * 3 / 4;
        if buckets.len() > keep {
            let mut seen: Vec<Instant> = buckets.values().map(|b| b.at).collect();
            let cut = seen.len() - keep;
            let (_, &mut oldest_kept, _) = seen.select_nth_unstable(cut);
            buckets.retain(|_, b| b.at >= oldest_kept);
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

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let limiter = RateLimiter::new(RateLimit { per_second: 1.0, burst: 2.0 });
        let t0 = Instant::now();
        let ip = |s: &str| -> IpAddr { s.parse().expect("ip") };
        assert!(limiter.take(ip("2001:db8:1:2::1"), t0).is_ok());
        assert!(limiter.take(ip("2001:db8:1:2:ffff:ffff:ffff:fffe"), t0).is_ok());
        assert!(limiter.take(ip("2001:db8:1:2:abcd::9"), t0).is_err(), "a new address in the same /64");
        assert!(limiter.take(ip("2001:db8:1:3::1"), t0).is_ok(), "the next /64 is another client");
        assert!(limiter.take(ip("10.1.2.3"), t0).is_ok());
        assert!(limiter.take(ip("::ffff:10.1.2.3"), t0).is_ok());
        assert!(limiter.take(ip("10.1.2.3"), t0).is_err(), "IPv4-mapped IPv6 is the IPv4 client");
    }

    #[test]
    fn tracked_clients_stay_bounded_and_recent_ones_are_kept() {
        let limiter = RateLimiter::with_capacity(RateLimit { per_second: 0.001, burst: 1.0 }, 100);
        let t0 = Instant::now();
        let client = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        for i in 0..1000 {
            // Every client spends its only token: no bucket refills, so only the least recent can go.
            assert!(limiter.take(client(i), t0 + Duration::from_millis(u64::from(i))).is_ok());
            assert!(limiter.buckets.lock().expect("lock").len() <= 100);
        }
        let now = t0 + Duration::from_millis(1000);
        assert!(limiter.take(client(999), now).is_err(), "the most recent client is still limited");
        assert!(limiter.take(client(0), now).is_ok(), "the least recent was forgotten");
    }
}
