//! The rate limiter the server puts in front of every call when the budget is shared through
//! Redis: while Redis cannot be reached the per-key limit is enforced by an in-process GCRA
//! limiter with the same quota instead, so calls that need no Redis keep working and are still
//! limited (per instance rather than across instances). Each fallback is counted in
//! `mcp_rate_limit_fallback_total`; after a failure Redis is not asked again for
//! [`RETRY_SHARED_AFTER`], so an outage does not cost every call a failed round trip.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mcp_core::middleware::{GcraLimiter, Quota, RateLimiter};
use mcp_core::{Error, Result};
use tokio::time::Instant;

/// How long after a failed shared check the local limiter is used without asking Redis.
pub const RETRY_SHARED_AFTER: Duration = Duration::from_secs(1);

/// A shared limiter backed by a local one during outages; see the module docs.
pub struct FallbackLimiter {
    shared: Arc<dyn RateLimiter>,
    local: GcraLimiter,
    /// Until when the shared limiter is skipped.
    skip_until: Mutex<Option<Instant>>,
}

impl FallbackLimiter {
    /// Uses `shared`, falling back to a local limiter with `quota`.
    pub fn new(shared: Arc<dyn RateLimiter>, quota: Quota) -> Self {
        FallbackLimiter {
            shared,
            local: GcraLimiter::new(quota),
            skip_until: Mutex::new(None),
        }
    }

    fn skipping(&self) -> bool {
        self.skip_until
            .lock()
            .map(|until| until.is_some_and(|until| Instant::now() < until))
            .unwrap_or(false)
    }

    fn skip_for_a_while(&self) {
        if let Ok(mut until) = self.skip_until.lock() {
            *until = Some(Instant::now() + RETRY_SHARED_AFTER);
        }
    }
}

#[async_trait]
impl RateLimiter for FallbackLimiter {
    fn backend(&self) -> &'static str {
        self.shared.backend()
    }

    async fn check(&self, key: &str) -> Result<()> {
        if !self.skipping() {
            match self.shared.check(key).await {
                Err(err @ (Error::Unavailable(_) | Error::Timeout(_))) => {
                    tracing::warn!(%err, "shared rate limiter down; limiting per instance");
                    self.skip_for_a_while();
                }
                decided => return decided,
            }
        }
        metrics::counter!("mcp_rate_limit_fallback_total").increment(1);
        self.local.check(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shared limiter that is always down.
    struct Down;

    #[async_trait]
    impl RateLimiter for Down {
        fn backend(&self) -> &'static str {
            "redis"
        }
        async fn check(&self, _key: &str) -> Result<()> {
            Err(Error::Unavailable("redis is unavailable".into()))
        }
    }

    #[tokio::test]
    async fn an_unreachable_shared_limiter_falls_back_to_the_local_quota() {
        let limiter = FallbackLimiter::new(Arc::new(Down), Quota::per_second(1, 2));
        assert!(limiter.check("k").await.is_ok());
        assert!(limiter.check("k").await.is_ok());
        assert!(matches!(
            limiter.check("k").await,
            Err(Error::RateLimited { .. })
        ));
        assert!(limiter.check("other").await.is_ok());
    }

    #[tokio::test]
    async fn a_shared_refusal_is_kept() {
        let shared = Arc::new(GcraLimiter::new(Quota::per_second(1, 1)));
        let limiter = FallbackLimiter::new(shared, Quota::per_second(1_000, 1_000));
        assert!(limiter.check("k").await.is_ok());
        assert!(matches!(
            limiter.check("k").await,
            Err(Error::RateLimited { .. })
        ));
    }
}
