//! PostgreSQL `AuditLog`: one row per record in `mcp_audit`, kept until
//! [`PostgresAuditLog::purge_before`] removes old ones (retention is the caller's policy).
//! Queries are built from the fields an `AuditQuery` sets, so each filter can use its index,
//! and read newest first by `(at_ms, id)`: equal timestamps come back in reverse append order.

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgRow, Postgres};
use sqlx::{QueryBuilder, Row};

use super::{check_text, connect_pool, map_err, ping};
use crate::audit::{AuditLog, AuditQuery};
use crate::{AuditRecord, Error, Result};

/// Access records in PostgreSQL.
#[derive(Clone)]
pub struct PostgresAuditLog {
    pool: PgPool,
}

impl PostgresAuditLog {
    /// Connects to `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(PostgresAuditLog {
            pool: connect_pool(url).await?,
        })
    }

    /// Deletes the records from before `at_ms` (ms since the Unix epoch); returns how many.
    pub async fn purge_before(&self, at_ms: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM mcp_audit WHERE at_ms < $1")
            .bind(at_ms)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}

fn to_bigint(value: u64, field: &str) -> Result<i64> {
    i64::try_from(value)
        .map_err(|_| Error::InvalidArgument(format!("audit {field} {value} is out of range")))
}

fn audit_record(row: &PgRow) -> AuditRecord {
    AuditRecord {
        at_ms: row.get(0),
        principal: row.get(1),
        service: row.get(2),
        action: row.get(3),
        target: row.get(4),
        outcome: row.get(5),
        bytes: row
            .get::<Option<i64>, _>(6)
            .map(|bytes| bytes.max(0) as u64),
        duration_us: row.get::<i64, _>(7).max(0) as u64,
        request_id: row.get(8),
    }
}

#[async_trait]
impl AuditLog for PostgresAuditLog {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn append(&self, record: AuditRecord) -> Result<()> {
        for (field, value) in [
            ("principal", record.principal.as_deref()),
            ("service", Some(record.service.as_str())),
            ("action", Some(record.action.as_str())),
            ("target", record.target.as_deref()),
            ("outcome", Some(record.outcome.as_str())),
            ("request_id", Some(record.request_id.as_str())),
        ] {
            if let Some(value) = value {
                check_text(field, value)?;
            }
        }
        let bytes = record
            .bytes
            .map(|bytes| to_bigint(bytes, "bytes"))
            .transpose()?;
        let duration_us = to_bigint(record.duration_us, "duration_us")?;
        sqlx::query(
            "INSERT INTO mcp_audit (at_ms, principal, service, action, target, outcome, bytes, \
             duration_us, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(record.at_ms)
        .bind(record.principal)
        .bind(record.service)
        .bind(record.action)
        .bind(record.target)
        .bind(record.outcome)
        .bind(bytes)
        .bind(duration_us)
        .bind(record.request_id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        for (field, value) in [
            ("principal", &query.principal),
            ("service", &query.service),
            ("action", &query.action),
            ("target_prefix", &query.target_prefix),
        ] {
            if let Some(value) = value {
                check_text(field, value)?;
            }
        }
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let mut sql = QueryBuilder::<Postgres>::new(
            "SELECT at_ms, principal, service, action, target, outcome, bytes, duration_us, \
             request_id FROM mcp_audit WHERE true",
        );
        if let Some(principal) = &query.principal {
            sql.push(" AND principal = ").push_bind(principal);
        }
        if let Some(service) = &query.service {
            sql.push(" AND service = ").push_bind(service);
        }
        if let Some(action) = &query.action {
            sql.push(" AND action = ").push_bind(action);
        }
        if let Some(prefix) = &query.target_prefix {
            // The range bound lets the target index narrow the scan; starts_with decides.
            sql.push(" AND target >= ")
                .push_bind(prefix)
                .push(" AND starts_with(target, ")
                .push_bind(prefix)
                .push(")");
        }
        if let Some(since_ms) = query.since_ms {
            sql.push(" AND at_ms >= ").push_bind(since_ms);
        }
        sql.push(" ORDER BY at_ms DESC, id DESC LIMIT ")
            .push_bind(i64::try_from(query.limit).unwrap_or(i64::MAX));
        let rows = sql.build().fetch_all(&self.pool).await.map_err(map_err)?;
        Ok(rows.iter().map(audit_record).collect())
    }

    async fn ping(&self) -> Result<()> {
        ping(&self.pool).await
    }
}
