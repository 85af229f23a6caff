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

/// A batch of records as one array per column, for `UNNEST`.
struct AuditColumns {
    at_ms: Vec<i64>,
    principal: Vec<Option<String>>,
    service: Vec<String>,
    action: Vec<String>,
    target: Vec<Option<String>>,
    outcome: Vec<String>,
    bytes: Vec<Option<i64>>,
    duration_us: Vec<i64>,
    request_id: Vec<String>,
}

impl AuditColumns {
    fn with_capacity(n: usize) -> Self {
        AuditColumns {
            at_ms: Vec::with_capacity(n),
            principal: Vec::with_capacity(n),
            service: Vec::with_capacity(n),
            action: Vec::with_capacity(n),
            target: Vec::with_capacity(n),
            outcome: Vec::with_capacity(n),
            bytes: Vec::with_capacity(n),
            duration_us: Vec::with_capacity(n),
            request_id: Vec::with_capacity(n),
        }
    }

    /// Checks `record` (text PostgreSQL can store, numbers in range) and adds it.
    fn push(&mut self, record: AuditRecord) -> Result<()> {
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
        self.duration_us
            .push(to_bigint(record.duration_us, "duration_us")?);
        self.bytes.push(bytes);
        self.at_ms.push(record.at_ms);
        self.principal.push(record.principal);
        self.service.push(record.service);
        self.action.push(record.action);
        self.target.push(record.target);
        self.outcome.push(record.outcome);
        self.request_id.push(record.request_id);
        Ok(())
    }
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
        self.append_batch(vec![record]).await
    }

    /// One `INSERT … SELECT FROM UNNEST(…) WITH ORDINALITY`, so the batch is appended whole or
    /// not at all, in order (ids follow the ordinality), in one round trip and one commit.
    async fn append_batch(&self, records: Vec<AuditRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut columns = AuditColumns::with_capacity(records.len());
        for record in records {
            columns.push(record)?;
        }
        sqlx::query(
            "INSERT INTO mcp_audit (at_ms, principal, service, action, target, outcome, bytes, \
             duration_us, request_id) \
             SELECT at_ms, principal, service, action, target, outcome, bytes, duration_us, \
             request_id FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], \
             $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::text[]) WITH ORDINALITY \
             AS batch(at_ms, principal, service, action, target, outcome, bytes, duration_us, \
             request_id, ord) ORDER BY ord",
        )
        .bind(columns.at_ms)
        .bind(columns.principal)
        .bind(columns.service)
        .bind(columns.action)
        .bind(columns.target)
        .bind(columns.outcome)
        .bind(columns.bytes)
        .bind(columns.duration_us)
        .bind(columns.request_id)
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
