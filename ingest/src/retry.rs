use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Runs `attempt` until it succeeds, backing off exponentially (100 ms doubling to 10 s) and logging each
/// failure. Returns `None` when `shutdown` fires first: the caller then stops without committing, and the
/// work is redone after restart (at-least-once).
pub(crate) async fn until_ok<T, E, F, Fut>(what: &str, shutdown: &CancellationToken, mut attempt: F) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = Duration::from_millis(100);
    let mut failures = 0u32;
    loop {
        match attempt().await {
            Ok(value) => {
                if failures > 0 {
                    tracing::info!(what, failures, "recovered");
                }
                return Some(value);
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(what, error = %e, failures, retry_in_ms = delay.as_millis() as u64, "failed, retrying");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}
