//! In-memory `AuditLog`: a bounded ring that drops its oldest records when full.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

use super::kv::poisoned;
use crate::audit::{AuditLog, AuditQuery};
use crate::{AuditRecord, Result};

/// Default number of records kept.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Access records in process memory; keeps the newest `capacity` records.
#[derive(Debug)]
pub struct MemoryAuditLog {
    capacity: usize,
    records: Mutex<VecDeque<AuditRecord>>,
}

impl Default for MemoryAuditLog {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl MemoryAuditLog {
    /// A log keeping [`DEFAULT_CAPACITY`] records.
    pub fn new() -> Self {
        Self::default()
    }

    /// A log keeping the newest `capacity` records.
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryAuditLog {
            capacity: capacity.max(1),
            records: Mutex::new(VecDeque::new()),
        }
    }
}

#[async_trait]
impl AuditLog for MemoryAuditLog {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn append(&self, record: AuditRecord) -> Result<()> {
        let mut records = self.records.lock().map_err(|_| poisoned())?;
        if records.len() == self.capacity {
            records.pop_front();
        }
        records.push_back(record);
        Ok(())
    }

    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let records = self.records.lock().map_err(|_| poisoned())?;
        Ok(records
            .iter()
            .rev()
            .filter(|record| query.matches(record))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn ping(&self) -> Result<()> {
        self.records.lock().map(|_| ()).map_err(|_| poisoned())
    }
}
