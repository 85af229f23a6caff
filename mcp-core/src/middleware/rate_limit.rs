//! Middleware that limits each principal's request rate with GCRA (the generic cell rate
//! algorithm), plus the in-process limiter behind it.
//!
//! GCRA keeps one timestamp per key, the theoretical arrival time (TAT) of the next request.
//! A request at `now` is allowed when `TAT - now <= burst tolerance`, and then moves TAT one
//! emission interval forward. The same arithmetic runs in Redis (a Lua script in
//! `mcp-backends`) so that several server instances share one budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::ActionOutput;
use async_trait::async_trait;
use tokio::time::Instant;

use super::{Call, Middleware, Next};
use crate::{Error, Result};

/// How many requests a key may make: `burst` at once, refilled at one per `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed back to back from an idle start (at least 1).
    pub burst: u32,
    /// Time to earn one more request.
    pub interval: Duration,
}

impl Quota {
    /// `per_second` requests a second on average, with bursts of up to `burst`.
    /// `per_second` must be positive; `burst` is raised to 1 if 0.
    pub fn per_second(per_second: u32, burst: u32) -> Self {
        Quota {
            burst: burst.max(1),
            interval: Duration::from_secs(1) / per_second.max(1),
        }
    }

    /// How far ahead of `now` the TAT may run before requests are refused.
    pub fn tolerance(&self) -> Duration {
        self.interval * (self.burst.max(1) - 1)
    }
}

/// A per-key rate limiter. Implemented in process by [`GcraLimiter`] and over Redis in
/// `mcp-backends` so instances can share budgets.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// The backend name, for health and logs.
    fn backend(&self) -> &'static str;

    /// Takes one request from `key`'s budget, or fails with [`Error::RateLimited`] saying when
    /// the next request would be allowed. A refused request takes nothing.
    async fn check(&self, key: &str) -> Result<()>;
}

/// In-process GCRA limiter. Uses tokio's clock, so tests can pause and advance time.
#[derive(Debug)]
pub struct GcraLimiter {
    quota: Quota,
    arrivals: Mutex<HashMap<String, Instant>>,
}

/// Above this many tracked keys, keys whose TAT has passed (fully refilled) are dropped.
const PRUNE_ABOVE: usize = 10_000;

impl GcraLimiter {
    /// A limiter applying `quota` to every key.
    pub fn new(quota: Quota) -> Self {
        GcraLimiter {
            quota,
            arrivals: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl RateLimiter for GcraLimiter {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn check(&self, key: &str) -> Result<()> {
        let now = Instant::now();
        let mut arrivals = self
            .arrivals
            .lock()
            .map_err(|_| Error::Internal("rate limiter state poisoned".into()))?;
        let tat = arrivals.get(key).copied().unwrap_or(now).max(now);
        let ahead = tat - now;
        let tolerance = self.quota.tolerance();
        if ahead > tolerance {
            return Err(Error::RateLimited {
                retry_after: ahead - tolerance,
            });
        }
        if arrivals.len() >= PRUNE_ABOVE {
            arrivals.retain(|_, tat| *tat > now);
        }
        arrivals.insert(key.to_owned(), tat + self.quota.interval);
        Ok(())
    }
}

/// Applies a [`RateLimiter`] per principal (anonymous callers share the key `anonymous`).
#[derive(Clone)]
pub struct RateLimit {
    limiter: Arc<dyn RateLimiter>,
}

impl RateLimit {
    /// Limits every principal with `limiter`.
    pub fn new(limiter: Arc<dyn RateLimiter>) -> Self {
        RateLimit { limiter }
    }
}

#[async_trait]
impl Middleware for RateLimit {
    async fn handle<'a>(&'a self, call: Call<'a>, next: Next<'a>) -> Result<ActionOutput> {
        let key = call.ctx.principal().unwrap_or("anonymous");
        self.limiter.check(key).await?;
        next.run(call).await
    }
}
