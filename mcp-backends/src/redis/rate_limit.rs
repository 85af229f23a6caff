//! Redis `RateLimiter`: GCRA in a Lua script on the server's clock (`TIME`), so every instance
//! that points at one Redis shares one budget per key. The arithmetic is the in-process
//! `GcraLimiter`'s, in microseconds: one theoretical arrival time (TAT) per key, stored with a
//! TTL so idle keys disappear once fully refilled. A Redis that cannot be reached refuses the
//! request with `Unavailable` (fail closed).

use std::time::Duration;

use async_trait::async_trait;
use mcp_core::middleware::{Quota, RateLimiter};
use redis::aio::ConnectionManager;
use redis::Script;

use super::{connect_manager, map_err, open_client};
use crate::Result;

/// KEYS: the key's TAT. ARGV: interval µs, tolerance µs.
/// Returns 0 when the request is allowed, else how many µs until it would be.
const GCRA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local ahead = tat - now
if ahead > tolerance then return ahead - tolerance end
local next_tat = tat + interval
local ttl_ms = math.ceil((next_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', string.format('%.0f', ttl_ms))
return 0
";

/// GCRA rate limiter shared through a Redis server.
#[derive(Clone)]
pub struct RedisRateLimiter {
    conn: ConnectionManager,
    prefix: String,
    interval_us: u64,
    tolerance_us: u64,
    script: Script,
}

impl RedisRateLimiter {
    /// Connects to `url` and applies `quota` to every key. Keys live under `rate:` unless
    /// [`RedisRateLimiter::with_prefix`] says otherwise.
    pub async fn connect(url: &str, quota: Quota) -> Result<Self> {
        let conn = connect_manager(open_client(url)?).await?;
        Ok(RedisRateLimiter {
            conn,
            prefix: "rate:".to_owned(),
            interval_us: micros(quota.interval).max(1),
            tolerance_us: micros(quota.tolerance()),
            script: Script::new(GCRA),
        })
    }

    /// Stores every key's state under `prefix` (limiters sharing a prefix share budgets).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn check(&self, key: &str) -> mcp_core::Result<()> {
        let wait_us: u64 = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(self.interval_us)
            .arg(self.tolerance_us)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|err| mcp_core::Error::from(map_err(err)))?;
        if wait_us == 0 {
            Ok(())
        } else {
            Err(mcp_core::Error::RateLimited {
                retry_after: Duration::from_micros(wait_us),
            })
        }
    }
}
