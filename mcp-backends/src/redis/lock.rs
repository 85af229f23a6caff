//! Redis `LockManager`: one lease key per resource (`SET NX PX`, value `token:owner`) and one
//! fencing counter per resource (`INCR`, never expires). Acquire, refresh and release are Lua
//! scripts, so checking the holder and changing the lease happen atomically on the server.
//!
//! A counter starts at the server's time in microseconds rather than at 0: a Redis run without
//! persistence forgets its counters when it restarts, and a counter re-seeded from the clock
//! still exceeds every token granted before (that would take a million grants a second).

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::Script;

use super::{connect_manager, map_err, open_client};
use crate::lock::{Lease, LockManager};
use crate::{Error, Result};

/// KEYS: lease, fence. ARGV: owner, ttl ms.
/// Returns `{1, token, owner, ttl}` when granted, `{0, token, owner, pttl}` of the holder when not.
/// A missing fence is seeded with the server time in microseconds, so tokens keep increasing
/// even after a Redis without persistence lost its counters in a restart.
const ACQUIRE: &str = r"
local held = redis.call('GET', KEYS[1])
if held then
  local token, owner = string.match(held, '^(%d+):(.*)$')
  return {0, token, owner, redis.call('PTTL', KEYS[1])}
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local time = redis.call('TIME')
  redis.call('SET', KEYS[2], time[1] .. string.format('%06d', tonumber(time[2])))
end
local token = string.format('%.0f', redis.call('INCR', KEYS[2]))
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'NX', 'PX', ARGV[2])
return {1, token, ARGV[1], tonumber(ARGV[2])}
";

/// KEYS: lease. ARGV: token, ttl ms. Returns `{owner, ttl}`, or nil when `token` is not the
/// live lease's.
const REFRESH: &str = r"
local held = redis.call('GET', KEYS[1])
if not held then return false end
local token, owner = string.match(held, '^(%d+):(.*)$')
if token ~= ARGV[1] then return false end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {owner, tonumber(ARGV[2])}
";

/// KEYS: lease. ARGV: token. Returns 1 when released.
const RELEASE: &str = r"
local held = redis.call('GET', KEYS[1])
if not held then return 0 end
local token = string.match(held, '^(%d+):')
if token ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
";

/// Exclusive leases on a Redis server, optionally under a key prefix.
///
/// Keys: `{prefix}lock:{resource}` holds the live lease and expires with it;
/// `{prefix}lock-fence:{resource}` is the fencing counter and is never deleted, so tokens keep
/// increasing across release and expiry.
#[derive(Clone)]
pub struct RedisLockManager {
    conn: ConnectionManager,
    prefix: String,
    acquire: Script,
    refresh: Script,
    release: Script,
}

impl RedisLockManager {
    /// Connects to `url` (`redis://host:port/db`).
    pub async fn connect(url: &str) -> Result<Self> {
        let conn = connect_manager(open_client(url)?).await?;
        Ok(RedisLockManager {
            conn,
            prefix: String::new(),
            acquire: Script::new(ACQUIRE),
            refresh: Script::new(REFRESH),
            release: Script::new(RELEASE),
        })
    }

    /// Puts every key under `prefix`, so several applications can share one database.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn lease_key(&self, resource: &str) -> String {
        format!("{}lock:{resource}", self.prefix)
    }

    fn fence_key(&self, resource: &str) -> String {
        format!("{}lock-fence:{resource}", self.prefix)
    }
}

fn ttl_millis(ttl: Duration) -> Result<u64> {
    crate::lock::validate_ttl(ttl)?;
    Ok(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
}

fn parse_token(text: &str) -> Result<u64> {
    text.parse().map_err(|_| Error::Backend {
        backend: "redis",
        message: format!("malformed lease token {text:?}"),
    })
}

#[async_trait]
impl LockManager for RedisLockManager {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn acquire(&self, resource: &str, owner: &str, ttl: Duration) -> Result<Lease> {
        let millis = ttl_millis(ttl)?;
        let (granted, token, holder, left): (i64, String, String, i64) = self
            .acquire
            .key(self.lease_key(resource))
            .key(self.fence_key(resource))
            .arg(owner)
            .arg(millis)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        if granted != 1 {
            return Err(Error::Locked(format!(
                "{resource} is held by {holder} for another {} ms",
                left.max(0)
            )));
        }
        Ok(Lease::from_millis_left(
            resource,
            holder,
            parse_token(&token)?,
            left,
        ))
    }

    async fn refresh(&self, resource: &str, token: u64, ttl: Duration) -> Result<Lease> {
        let millis = ttl_millis(ttl)?;
        let reply: Option<(String, i64)> = self
            .refresh
            .key(self.lease_key(resource))
            .arg(token.to_string())
            .arg(millis)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        match reply {
            Some((owner, left)) => Ok(Lease::from_millis_left(resource, owner, token, left)),
            None => Err(Error::Locked(format!(
                "token {token} does not hold a live lease on {resource}"
            ))),
        }
    }

    async fn release(&self, resource: &str, token: u64) -> Result<bool> {
        let released: i64 = self
            .release
            .key(self.lease_key(resource))
            .arg(token.to_string())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        Ok(released == 1)
    }

    async fn inspect(&self, resource: &str) -> Result<Option<Lease>> {
        let key = self.lease_key(resource);
        let (held, left): (Option<String>, i64) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(&key)
            .cmd("PTTL")
            .arg(&key)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        let Some(held) = held else {
            return Ok(None);
        };
        let (token, owner) = held.split_once(':').ok_or_else(|| Error::Backend {
            backend: "redis",
            message: format!("malformed lease value {held:?}"),
        })?;
        Ok(Some(Lease::from_millis_left(
            resource,
            owner.to_owned(),
            parse_token(token)?,
            left,
        )))
    }

    async fn ping(&self) -> Result<()> {
        super::ping(&self.conn).await
    }
}
