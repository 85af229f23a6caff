//! PostgreSQL `KvStore`: rows of `(key, value, expires_at)`; every read filters out expired
//! rows, and a background task purges them periodically.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use sqlx::Row;

use super::{connect_pool, map_err};
use crate::kv::{KeyTtl, KvStore, ScanPage, SetOptions, MAX_KEY_BYTES};
use crate::{glob, Error, Result};

/// How often expired rows are deleted.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// The filter every read applies: the row has not expired.
macro_rules! live {
    () => {
        "(expires_at IS NULL OR expires_at > now())"
    };
}

/// Key/value store in PostgreSQL. Dropping it stops its purge task.
pub struct PostgresKvStore {
    pool: PgPool,
    purge: tokio::task::JoinHandle<()>,
}

impl PostgresKvStore {
    /// Connects to `url`, applies migrations and starts the purge task.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = connect_pool(url).await?;
        let purge_pool = pool.clone();
        let purge = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PURGE_INTERVAL);
            loop {
                ticks.tick().await;
                if let Err(err) = purge_expired(&purge_pool).await {
                    tracing::warn!(error = %err, "purging expired keys failed; will retry");
                }
            }
        });
        Ok(PostgresKvStore { pool, purge })
    }

    /// Deletes expired rows now; returns how many.
    pub async fn purge_expired(&self) -> Result<u64> {
        purge_expired(&self.pool).await
    }
}

impl Drop for PostgresKvStore {
    fn drop(&mut self) {
        self.purge.abort();
    }
}

async fn purge_expired(pool: &PgPool) -> Result<u64> {
    let done = sqlx::query("DELETE FROM mcp_kv WHERE expires_at <= now()")
        .execute(pool)
        .await
        .map_err(map_err)?;
    Ok(done.rows_affected())
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
fn like_prefix(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

#[async_trait]
impl KvStore for PostgresKvStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query(concat!(
            "SELECT value FROM mcp_kv WHERE key = $1 AND ",
            live!()
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(row.map(|row| row.get::<Vec<u8>, _>(0)))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(concat!(
            "SELECT key, value FROM mcp_kv WHERE key = ANY($1) AND ",
            live!()
        ))
        .bind(keys)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut found: HashMap<String, Vec<u8>> = rows
            .into_iter()
            .map(|row| (row.get::<String, _>(0), row.get::<Vec<u8>, _>(1)))
            .collect();
        Ok(keys.iter().map(|key| found.remove(key)).collect())
    }

    async fn set(&self, key: &str, value: Vec<u8>, options: SetOptions) -> Result<bool> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(Error::InvalidArgument(format!(
                "key must be 1 to {MAX_KEY_BYTES} bytes, got {}",
                key.len()
            )));
        }
        if options.ttl == Some(Duration::ZERO) {
            return Err(Error::InvalidArgument("ttl must be positive".into()));
        }
        // With if_absent, the upsert only replaces a row that has expired.
        const UPSERT: &str = "INSERT INTO mcp_kv (key, value, expires_at) \
             VALUES ($1, $2, now() + $3 * interval '1 millisecond') \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at";
        const UPSERT_IF_ABSENT: &str = "INSERT INTO mcp_kv (key, value, expires_at) \
             VALUES ($1, $2, now() + $3 * interval '1 millisecond') \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at \
             WHERE mcp_kv.expires_at IS NOT NULL AND mcp_kv.expires_at <= now()";
        let done = sqlx::query(if options.if_absent {
            UPSERT_IF_ABSENT
        } else {
            UPSERT
        })
        .bind(key)
        .bind(value)
        .bind(options.ttl.map(millis))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let row = sqlx::query(concat!(
            "DELETE FROM mcp_kv WHERE key = $1 RETURNING ",
            live!(),
            " AS live"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(row.is_some_and(|row| row.get::<bool, _>(0)))
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        if ttl.is_zero() {
            return self.delete(key).await;
        }
        let done = sqlx::query(concat!("UPDATE mcp_kv SET expires_at = now() + $2 * interval '1 millisecond' WHERE key = $1 AND ", live!()))
        .bind(key)
        .bind(millis(ttl))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn persist(&self, key: &str) -> Result<bool> {
        let done = sqlx::query(concat!(
            "UPDATE mcp_kv SET expires_at = NULL WHERE key = $1 AND ",
            live!()
        ))
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        let row = sqlx::query(concat!(
            "SELECT (EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::bigint FROM mcp_kv \
             WHERE key = $1 AND ",
            live!()
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(match row {
            None => KeyTtl::Missing,
            Some(row) => match row.get::<Option<i64>, _>(0) {
                None => KeyTtl::Persistent,
                Some(ms) => KeyTtl::Expires(Duration::from_millis(ms.max(0) as u64)),
            },
        })
    }

    async fn scan(&self, pattern: &str, cursor: Option<&str>, limit: usize) -> Result<ScanPage> {
        let limit = limit.clamp(1, 10_000);
        let prefix = glob::literal_prefix(pattern);
        // Rows are read in key order from the cursor within the pattern's literal prefix, then
        // matched in Rust for exact Redis glob semantics; the cursor is the last key read.
        let rows = sqlx::query(concat!(
            "SELECT key FROM mcp_kv WHERE key > $1 AND key LIKE $2 ESCAPE '\\' AND ",
            live!(),
            " \
             ORDER BY key LIMIT $3"
        ))
        .bind(cursor.unwrap_or(""))
        .bind(like_prefix(&prefix))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let read: Vec<String> = rows
            .into_iter()
            .map(|row| row.get::<String, _>(0))
            .collect();
        let next_cursor = if read.len() == limit {
            read.last().cloned()
        } else {
            None
        };
        Ok(ScanPage {
            keys: read
                .into_iter()
                .filter(|key| glob::matches(pattern, key))
                .collect(),
            next_cursor,
        })
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
}
