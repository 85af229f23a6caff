//! Redis `KvStore`: `SET .. PX .. NX`, `MGET`, `PEXPIRE`, `PTTL`, and `SCAN MATCH` with the
//! server's cursor (never `KEYS`). Expiry is Redis's own, so an expired key is never listed.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::{connect_manager, map_err, open_client};
use crate::kv::{KeyTtl, KvStore, ScanPage, SetOptions, MAX_KEY_BYTES};
use crate::{glob, Error, Result};

/// Key/value store on a Redis server, optionally under a key prefix shared by all its keys.
#[derive(Clone)]
pub struct RedisKvStore {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisKvStore {
    /// Connects to `url` (`redis://host:port/db`).
    pub async fn connect(url: &str) -> Result<Self> {
        let conn = connect_manager(open_client(url)?).await?;
        Ok(RedisKvStore {
            conn,
            prefix: String::new(),
        })
    }

    /// Stores every key under `prefix`, so several applications can share one database.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn millis(ttl: Duration) -> u64 {
        u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
    }
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidArgument(format!(
            "key must be 1 to {MAX_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}

#[async_trait]
impl KvStore for RedisKvStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        redis::cmd("GET")
            .arg(self.full(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.full(key));
        }
        cmd.query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)
    }

    async fn set(&self, key: &str, value: Vec<u8>, options: SetOptions) -> Result<bool> {
        check_key(key)?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.full(key)).arg(value);
        match options.ttl {
            Some(ttl) if ttl.is_zero() => {
                return Err(Error::InvalidArgument("ttl must be positive".into()))
            }
            Some(ttl) => {
                cmd.arg("PX").arg(Self::millis(ttl));
            }
            None => {}
        }
        if options.if_absent {
            cmd.arg("NX");
        }
        let reply: Option<String> = cmd
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        Ok(reply.is_some())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let removed: u64 = redis::cmd("DEL")
            .arg(self.full(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        Ok(removed > 0)
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        if ttl.is_zero() {
            return self.delete(key).await;
        }
        let set: u64 = redis::cmd("PEXPIRE")
            .arg(self.full(key))
            .arg(Self::millis(ttl))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        Ok(set == 1)
    }

    async fn persist(&self, key: &str) -> Result<bool> {
        // PERSIST answers 0 both for a missing key and for one without a TTL.
        let full = self.full(key);
        let (exists, _): (u64, u64) = redis::pipe()
            .atomic()
            .cmd("EXISTS")
            .arg(&full)
            .cmd("PERSIST")
            .arg(&full)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        Ok(exists == 1)
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        let ms: i64 = redis::cmd("PTTL")
            .arg(self.full(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        Ok(match ms {
            -2 => KeyTtl::Missing,
            -1 => KeyTtl::Persistent,
            ms => KeyTtl::Expires(Duration::from_millis(ms.max(0) as u64)),
        })
    }

    async fn scan(&self, pattern: &str, cursor: Option<&str>, limit: usize) -> Result<ScanPage> {
        let mut position: u64 = match cursor {
            None => 0,
            Some(text) => text
                .parse()
                .map_err(|_| Error::InvalidArgument(format!("malformed scan cursor {text:?}")))?,
        };
        let full_pattern = format!("{}{pattern}", glob::escape(&self.prefix));
        let mut conn = self.conn.clone();
        // COUNT is only a hint: keep scanning until a page has keys or the scan ends, so that
        // callers never see endless empty pages over sparse matches.
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(position)
                .arg("MATCH")
                .arg(&full_pattern)
                .arg("COUNT")
                .arg(limit.clamp(10, 10_000))
                .query_async(&mut conn)
                .await
                .map_err(map_err)?;
            position = next;
            if !keys.is_empty() || position == 0 {
                let keys = keys
                    .into_iter()
                    .filter_map(|key| key.strip_prefix(&self.prefix).map(str::to_owned))
                    .collect();
                return Ok(ScanPage {
                    keys,
                    next_cursor: (position != 0).then(|| position.to_string()),
                });
            }
        }
    }

    async fn ping(&self) -> Result<()> {
        super::ping(&self.conn).await
    }
}
