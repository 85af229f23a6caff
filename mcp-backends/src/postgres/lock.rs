//! PostgreSQL `LockManager`: one row per resource in `mcp_locks` whose `token` column is the
//! resource's fencing counter. Acquiring is one statement that takes over only a released or
//! expired lease, so of two racing acquirers the second finds the first's live lease, and a
//! refused acquire writes nothing; expiry is judged by the server's clock.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use sqlx::Row;

use super::{check_text, connect_pool, map_err, ping};
use crate::lock::{Lease, LockManager};
use crate::{Error, Result};

/// Milliseconds left on a row's lease, by the server's clock.
macro_rules! millis_left {
    () => {
        "(EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::bigint"
    };
}

/// Exclusive leases in PostgreSQL.
#[derive(Clone)]
pub struct PostgresLockManager {
    pool: PgPool,
}

impl PostgresLockManager {
    /// Connects to `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(PostgresLockManager {
            pool: connect_pool(url).await?,
        })
    }
}

fn ttl_millis(ttl: Duration) -> Result<i64> {
    crate::lock::validate_ttl(ttl)?;
    Ok(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1))
}

/// A token as stored: the table's CHECK keeps it positive.
fn stored_token(token: i64) -> u64 {
    token.max(0) as u64
}

#[async_trait]
impl LockManager for PostgresLockManager {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn acquire(&self, resource: &str, owner: &str, ttl: Duration) -> Result<Lease> {
        check_text("resource", resource)?;
        check_text("owner", owner)?;
        let millis = ttl_millis(ttl)?;
        // One statement. Taking over a released or expired lease is an UPDATE whose WHERE
        // skips a live row without locking it, so a failed attempt writes nothing (no row lock,
        // no WAL flush) and many waiting acquirers stay cheap; of two racing updates, the second
        // re-checks the row the first wrote and skips it. A resource never locked before gets
        // its row from the INSERT, where the primary key lets one of two racers in. When
        // neither grants, the last SELECT describes the holder.
        let row = sqlx::query(concat!(
            "WITH taken AS ( \
                 UPDATE mcp_locks SET owner = $2, token = token + 1, \
                     expires_at = now() + $3 * interval '1 millisecond' \
                 WHERE resource = $1 AND (expires_at IS NULL OR expires_at <= now()) \
                 RETURNING token \
             ), fresh AS ( \
                 INSERT INTO mcp_locks (resource, owner, token, expires_at) \
                 SELECT $1, $2, 1, now() + $3 * interval '1 millisecond' \
                 WHERE NOT EXISTS (SELECT 1 FROM mcp_locks WHERE resource = $1) \
                 ON CONFLICT (resource) DO NOTHING \
                 RETURNING token \
             ) \
             SELECT true, token, NULL::text, NULL::bigint FROM taken \
             UNION ALL SELECT true, token, NULL, NULL FROM fresh \
             UNION ALL SELECT false, token, owner, ",
            millis_left!(),
            " FROM mcp_locks WHERE resource = $1 \
                 AND NOT EXISTS (SELECT 1 FROM taken) AND NOT EXISTS (SELECT 1 FROM fresh)"
        ))
        .bind(resource)
        .bind(owner)
        .bind(millis)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        match row {
            Some(row) if row.get::<bool, _>(0) => Ok(Lease::from_millis_left(
                resource,
                owner.to_owned(),
                stored_token(row.get(1)),
                millis,
            )),
            Some(row) => Err(Error::Locked(format!(
                "{resource} is held by {} for another {} ms",
                row.get::<Option<String>, _>(2)
                    .unwrap_or_else(|| "another owner".to_owned()),
                row.get::<Option<i64>, _>(3).unwrap_or(0).max(0)
            ))),
            // The resource was locked for the first time by a concurrent acquirer.
            None => Err(Error::Locked(format!(
                "{resource} is held by another owner"
            ))),
        }
    }

    async fn refresh(&self, resource: &str, token: u64, ttl: Duration) -> Result<Lease> {
        check_text("resource", resource)?;
        let millis = ttl_millis(ttl)?;
        let refreshed = match i64::try_from(token) {
            Ok(token) => sqlx::query(
                "UPDATE mcp_locks SET expires_at = now() + $3 * interval '1 millisecond' \
                 WHERE resource = $1 AND token = $2 AND expires_at > now() RETURNING owner",
            )
            .bind(resource)
            .bind(token)
            .bind(millis)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?,
            Err(_) => None,
        };
        match refreshed {
            Some(row) => Ok(Lease::from_millis_left(resource, row.get(0), token, millis)),
            None => Err(Error::Locked(format!(
                "token {token} does not hold a live lease on {resource}"
            ))),
        }
    }

    async fn release(&self, resource: &str, token: u64) -> Result<bool> {
        check_text("resource", resource)?;
        let Ok(token) = i64::try_from(token) else {
            return Ok(false);
        };
        let done = sqlx::query(
            "UPDATE mcp_locks SET owner = NULL, expires_at = NULL \
             WHERE resource = $1 AND token = $2 AND expires_at > now()",
        )
        .bind(resource)
        .bind(token)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn inspect(&self, resource: &str) -> Result<Option<Lease>> {
        check_text("resource", resource)?;
        let row = sqlx::query(concat!(
            "SELECT owner, token, ",
            millis_left!(),
            " FROM mcp_locks WHERE resource = $1 AND expires_at > now()"
        ))
        .bind(resource)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(row.map(|row| {
            Lease::from_millis_left(
                resource,
                row.get::<Option<String>, _>(0).unwrap_or_default(),
                stored_token(row.get(1)),
                row.get(2),
            )
        }))
    }

    async fn ping(&self) -> Result<()> {
        ping(&self.pool).await
    }
}
