//! `AuditLog`: append-only access records with filtered, newest-first queries.

use std::sync::Arc;

use async_trait::async_trait;
use mcp_core::middleware::{AuditRecord, AuditSink};

use crate::Result;

/// Which records [`AuditLog::query`] returns; every set field must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this principal.
    pub principal: Option<String>,
    /// Only this service.
    pub service: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only targets starting with this prefix.
    pub target_prefix: Option<String>,
    /// Only records at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// At most this many records (newest first).
    pub limit: usize,
}

impl AuditQuery {
    /// Whether `record` matches every set field (the in-memory filter, and a reference for
    /// backends that filter server-side).
    pub fn matches(&self, record: &AuditRecord) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        self.principal
            .as_deref()
            .is_none_or(|p| record.principal.as_deref() == Some(p))
            && eq(&self.service, &record.service)
            && eq(&self.action, &record.action)
            && self.target_prefix.as_deref().is_none_or(|prefix| {
                record
                    .target
                    .as_deref()
                    .is_some_and(|t| t.starts_with(prefix))
            })
            && self.since_ms.is_none_or(|since| record.at_ms >= since)
    }
}

/// Append-only store of access records.
///
/// Semantics every backend must share: `query` returns matching records newest first (by
/// append order for equal timestamps), at most `limit`. A bounded backend may drop its oldest
/// records and says so in its docs.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Backend name.
    fn backend(&self) -> &'static str;

    /// Appends one record.
    async fn append(&self, record: AuditRecord) -> Result<()>;

    /// Appends `records` in order. The default appends them one by one (a failure leaves the
    /// ones before it appended); a backend that can do better writes them at once, all or none
    /// (PostgreSQL: one statement).
    async fn append_batch(&self, records: Vec<AuditRecord>) -> Result<()> {
        for record in records {
            self.append(record).await?;
        }
        Ok(())
    }

    /// Matching records, newest first.
    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>>;

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<()>;
}

/// Adapts an [`AuditLog`] into the registry's audit middleware sink.
pub struct AuditLogSink(pub Arc<dyn AuditLog>);

#[async_trait]
impl AuditSink for AuditLogSink {
    async fn record(&self, record: AuditRecord) -> mcp_core::Result<()> {
        Ok(self.0.append(record).await?)
    }
}
