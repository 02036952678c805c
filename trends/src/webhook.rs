//! Webhook deliveries of reports and alerts: signed JSON POSTs, retried with jittered exponential backoff,
//! each in a task of its own so a failing or slow receiver never delays another delivery; the outcome is
//! stored on what was delivered. A delivery still retrying when the server stops stays `pending` with its
//! attempts so far.

use std::hash::BuildHasher;
use std::time::Duration as StdDuration;

use hmac::{Hmac, Mac};
use murmur_store::{Postgres, WebhookStatus, WebhookTarget};
use sha2::Sha256;

use crate::TrendsError;

/// How webhooks are called.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each one after, each wait drawn between half and one
    /// and a half times that (so receivers that failed together are not retried together).
    pub backoff: StdDuration,
    pub timeout: StdDuration,
    /// Signs every body: `X-Murmur-Signature: sha256=<hex HMAC-SHA256 of the body>`, so a receiver knows it
    /// came from this murmur and was not altered.
    pub secret: Option<Vec<u8>>,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self { attempts: 5, backoff: StdDuration::from_secs(2), timeout: StdDuration::from_secs(10), secret: None }
    }
}

/// The `X-Murmur-Signature` value of a webhook body.
pub fn webhook_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("hmac takes any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Calls webhooks; cheap to clone into each delivery's task.
#[derive(Clone)]
pub(crate) struct Webhooks {
    postgres: Postgres,
    client: reqwest::Client,
    options: WebhookOptions,
}

impl Webhooks {
    pub(crate) fn new(postgres: Postgres, options: WebhookOptions) -> Result<Self, TrendsError> {
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(|e| TrendsError::Invalid(format!("webhook client: {e}")))?;
        Ok(Self { postgres, client, options: WebhookOptions { attempts: options.attempts.max(1), ..options } })
    }

    pub(crate) fn signed(&self) -> bool {
        self.options.secret.is_some()
    }

    /// Delivers `body` to `url` in a task of its own.
    pub(crate) fn spawn(&self, target: WebhookTarget, url: String, body: Vec<u8>) {
        let webhooks = self.clone();
        tokio::spawn(async move {
            if let Err(error) = webhooks.deliver(target, &url, body).await {
                tracing::error!(?target, %error, "webhook delivery could not record its outcome");
            }
        });
    }

    /// POSTs the body until the receiver answers 2xx or the attempts run out; the outcome is stored.
    async fn deliver(&self, target: WebhookTarget, url: &str, body: Vec<u8>) -> Result<(), TrendsError> {
        let signature = self.options.secret.as_deref().map(|secret| webhook_signature(secret, &body));
        let mut wait = self.options.backoff;
        let attempts = self.options.attempts;
        for attempt in 1..=attempts {
            let mut request = self.client.post(url).header("content-type", "application/json").body(body.clone());
            if let Some(signature) = &signature {
                request = request.header("x-murmur-signature", signature);
            }
            let last_error = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    self.postgres.set_webhook_status(target, WebhookStatus::Delivered, attempt as i32, None).await?;
                    tracing::info!(?target, attempt, "delivered to its webhook");
                    return Ok(());
                }
                Ok(response) => format!("HTTP {}", response.status()),
                // Without the URL: chat webhooks carry their secret in it, and the error is served to readers.
                Err(e) => e.without_url().to_string(),
            };
            tracing::warn!(?target, attempt, error = %last_error, "webhook attempt failed");
            let failed = attempt == attempts;
            let status = if failed { WebhookStatus::Failed } else { WebhookStatus::Pending };
            self.postgres.set_webhook_status(target, status, attempt as i32, Some(&last_error)).await?;
            if !failed {
                tokio::time::sleep(jittered(wait)).await;
                wait *= 2;
            }
        }
        Ok(())
    }
}

/// Checks a webhook URL as a rule or schedule names it.
pub(crate) fn check_url(url: &str) -> Result<(), TrendsError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || reqwest::Url::parse(url).is_err() {
        return Err(TrendsError::Invalid(format!("webhook {url:?} is not an http(s) URL")));
    }
    Ok(())
}

/// `wait` scaled by a random factor in [0.5, 1.5).
fn jittered(wait: StdDuration) -> StdDuration {
    let random = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    wait.mul_f64(0.5 + (random % 1_000_000) as f64 / 1_000_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_waits_are_jittered_around_the_backoff() {
        let waits: Vec<StdDuration> = (0..50).map(|_| jittered(StdDuration::from_secs(2))).collect();
        assert!(waits.iter().all(|w| *w >= StdDuration::from_secs(1) && *w < StdDuration::from_secs(3)), "{waits:?}");
        assert!(waits.iter().any(|w| *w != waits[0]), "the waits vary");
    }
}
