//! PostgreSQL `VersionStore`: blobs in `mcp_blobs` keyed by their BLAKE3 hash (inserted once),
//! version rows in `mcp_versions` keyed by `(path, version)`. A record reads the latest
//! version, checks the precondition and inserts latest + 1; the primary key lets exactly one
//! of several concurrent records of the same version win, so there are never gaps, and a
//! loser sees `Precondition` (or, with `Expect::Any`, simply tries again on the new latest).

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::Row;

use super::{check_text, connect_pool, map_err, ping};
use crate::version::{content_hash, Expect, VersionInfo, VersionStore};
use crate::{Error, Result};

/// How many times an `Expect::Any` record retries after losing a race to other records.
const MAX_ANY_ATTEMPTS: usize = 1000;

/// The columns [`version_info`] reads, in order.
macro_rules! version_columns {
    () => {
        "path, version, hash, size, created_at_ms"
    };
}

/// Blobs and version histories in PostgreSQL; both survive restarts of the process.
#[derive(Clone)]
pub struct PostgresVersionStore {
    pool: PgPool,
}

impl PostgresVersionStore {
    /// Connects to `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(PostgresVersionStore {
            pool: connect_pool(url).await?,
        })
    }
}

fn version_info(row: &PgRow) -> VersionInfo {
    VersionInfo {
        path: row.get(0),
        version: row.get::<i64, _>(1).max(0) as u64,
        hash: row.get(2),
        size: row.get::<i64, _>(3).max(0) as u64,
        created_at_ms: row.get(4),
    }
}

/// A version number as stored, or `None` when it cannot exist (above `i64::MAX`).
fn stored_version(version: u64) -> Option<i64> {
    i64::try_from(version).ok()
}

#[async_trait]
impl VersionStore for PostgresVersionStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn put_blob(&self, content: &[u8]) -> Result<String> {
        let hash = content_hash(content);
        let size = i64::try_from(content.len())
            .map_err(|_| Error::InvalidArgument("blob too large".into()))?;
        sqlx::query(
            "INSERT INTO mcp_blobs (hash, size, content) VALUES ($1, $2, $3) \
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(&hash)
        .bind(size)
        .bind(content)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(hash)
    }

    async fn get_blob(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        check_text("hash", hash)?;
        let row = sqlx::query("SELECT content FROM mcp_blobs WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(row.map(|row| row.get(0)))
    }

    async fn record(&self, path: &str, hash: Option<&str>, expect: Expect) -> Result<VersionInfo> {
        check_text("path", path)?;
        if let Some(hash) = hash {
            check_text("hash", hash)?;
        }
        // Blobs are never deleted, so a blob seen here is still there at the insert.
        let size: i64 = match hash {
            Some(hash) => sqlx::query("SELECT size FROM mcp_blobs WHERE hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?
                .map(|row| row.get(0))
                .ok_or_else(|| Error::NotFound(format!("blob {hash}")))?,
            None => 0,
        };
        for _ in 0..MAX_ANY_ATTEMPTS {
            let latest = self.latest(path).await?;
            let ok = match expect {
                Expect::Any => true,
                Expect::Absent => latest.as_ref().is_none_or(VersionInfo::is_tombstone),
                Expect::Version(version) => {
                    latest.as_ref().is_some_and(|info| info.version == version)
                }
            };
            if !ok {
                let current = latest.map_or("none".to_owned(), |info| info.version.to_string());
                return Err(Error::Precondition(format!(
                    "{path}: expected {expect:?}, current version is {current}"
                )));
            }
            let next = latest.map_or(1, |info| info.version + 1);
            let next = stored_version(next)
                .ok_or_else(|| Error::InvalidArgument(format!("{path}: too many versions")))?;
            let inserted = sqlx::query(concat!(
                "INSERT INTO mcp_versions (path, version, hash, size, created_at_ms) \
                 VALUES ($1, $2, $3, $4, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint) \
                 ON CONFLICT (path, version) DO NOTHING RETURNING ",
                version_columns!()
            ))
            .bind(path)
            .bind(next)
            .bind(hash)
            .bind(size)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
            match inserted {
                Some(row) => return Ok(version_info(&row)),
                // Another record took `next` first; only `Any` may go on from the new latest.
                None if expect == Expect::Any => continue,
                None => {
                    return Err(Error::Precondition(format!(
                        "{path}: expected {expect:?}, but version {next} was recorded concurrently"
                    )))
                }
            }
        }
        Err(Error::Backend {
            backend: "postgres",
            message: format!("{path}: gave up after {MAX_ANY_ATTEMPTS} concurrent records"),
        })
    }

    async fn latest(&self, path: &str) -> Result<Option<VersionInfo>> {
        check_text("path", path)?;
        let row = sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            " FROM mcp_versions WHERE path = $1 ORDER BY version DESC LIMIT 1"
        ))
        .bind(path)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(row.as_ref().map(version_info))
    }

    async fn get(&self, path: &str, version: u64) -> Result<Option<VersionInfo>> {
        check_text("path", path)?;
        let Some(version) = stored_version(version) else {
            return Ok(None);
        };
        let row = sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            " FROM mcp_versions WHERE path = $1 AND version = $2"
        ))
        .bind(path)
        .bind(version)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(row.as_ref().map(version_info))
    }

    async fn history(
        &self,
        path: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<VersionInfo>> {
        check_text("path", path)?;
        let before = before.map_or(i64::MAX, |before| {
            stored_version(before).unwrap_or(i64::MAX)
        });
        let rows = sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            " FROM mcp_versions WHERE path = $1 AND version < $2 \
             ORDER BY version DESC LIMIT $3"
        ))
        .bind(path)
        .bind(before)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(rows.iter().map(version_info).collect())
    }

    async fn ping(&self) -> Result<()> {
        ping(&self.pool).await
    }
}
