//! The audit log as seen by the services when it lives on a remote backend (PostgreSQL): records
//! go into a bounded in-process queue and one background task appends them in order, so a call
//! never waits for the audit backend and never fails because of it.
//!
//! The writer appends what has queued up as one batch (at most [`BATCH`] records: one
//! round trip and one commit on PostgreSQL), so it keeps up with load instead of paying a commit
//! per call.
//!
//! Policy while the backend is down: the writer keeps the batch it could not append and retries
//! it with backoff (up to 2 s between attempts), records queue behind it, and once the queue is
//! full ([`QUEUE_CAPACITY`]) new records are dropped and counted in
//! `mcp_audit_dropped_total`. When the backend returns the queue drains in order; nothing queued
//! is lost. A batch the backend refuses for good (not an outage) is appended record by record,
//! and only the records refused on their own are logged and skipped.
//! Records still queued when the process exits are lost. `query` first waits (at most
//! [`FLUSH_WAIT`]) until everything appended before it has reached the backend, so a caller
//! reads its own records.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcp_backends::{AuditLog, AuditQuery, AuditRecord, Error, Result};
use tokio::sync::{mpsc, watch};

/// Records the queue holds before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 10_000;

/// How long `query` waits for earlier records to reach the backend.
pub const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// Longest pause between two attempts to append the same record.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// An [`AuditLog`] that queues appends for a background writer; see the module docs.
pub struct BufferedAuditLog {
    inner: Arc<dyn AuditLog>,
    queue: mpsc::Sender<AuditRecord>,
    /// Records accepted into the queue so far.
    accepted: AtomicU64,
    /// Records the writer has finished with (appended or refused for good).
    settled: watch::Receiver<u64>,
    dropped: AtomicU64,
}

impl BufferedAuditLog {
    /// Starts the writer task on the current runtime; it ends when the log is dropped.
    pub fn new(inner: Arc<dyn AuditLog>) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE_CAPACITY);
        let (settle, settled) = watch::channel(0);
        tokio::spawn(write_queued(inner.clone(), pending, settle));
        BufferedAuditLog {
            inner,
            queue,
            accepted: AtomicU64::new(0),
            settled,
            dropped: AtomicU64::new(0),
        }
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Most records one append to the backend carries.
pub const BATCH: usize = 512;

/// Appends queued records in order, in batches of what has queued up (at most [`BATCH`]), so
/// one round trip and one commit carry many records under load.
async fn write_queued(
    inner: Arc<dyn AuditLog>,
    mut pending: mpsc::Receiver<AuditRecord>,
    settle: watch::Sender<u64>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while pending.recv_many(&mut batch, BATCH).await > 0 {
        let count = batch.len() as u64;
        let records = std::mem::take(&mut batch);
        if let Err(err) = until_up(|| inner.append_batch(records.clone())).await {
            // Something in the batch is unacceptable for good: append record by record, so
            // only the bad ones are skipped.
            tracing::warn!(%err, "audit batch refused; appending its records one by one");
            for record in records {
                let request_id = record.request_id.clone();
                if let Err(err) = until_up(|| inner.append(record.clone())).await {
                    tracing::error!(%err, %request_id, "audit record refused; skipped");
                }
            }
        }
        settle.send_modify(|settled| *settled += count);
    }
}

/// Runs `attempt` until it succeeds or fails with something other than an outage, waiting
/// with backoff (up to [`MAX_BACKOFF`]) while the backend is down.
async fn until_up<F, Fut>(mut attempt: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut backoff = Duration::from_millis(50);
    let mut warned = false;
    loop {
        match attempt().await {
            Err(err @ (Error::Unavailable { .. } | Error::Timeout { .. })) => {
                if !warned {
                    tracing::warn!(%err, "audit backend down; records wait in the queue");
                    warned = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            outcome => {
                if warned {
                    tracing::info!("audit backend back; queued records are being appended");
                }
                return outcome;
            }
        }
    }
}

#[async_trait]
impl AuditLog for BufferedAuditLog {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn append(&self, record: AuditRecord) -> Result<()> {
        match self.queue.try_send(record) {
            Ok(()) => {
                self.accepted.fetch_add(1, Ordering::AcqRel);
            }
            Err(_) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                metrics::counter!("mcp_audit_dropped_total").increment(1);
                if dropped == 1 || dropped.is_multiple_of(1_000) {
                    tracing::warn!(dropped, "audit queue full; records dropped");
                }
            }
        }
        Ok(())
    }

    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let target = self.accepted.load(Ordering::Acquire);
        let mut settled = self.settled.clone();
        // Past the wait the query still runs: it shows what has reached the backend.
        let _ = tokio::time::timeout(FLUSH_WAIT, settled.wait_for(|done| *done >= target)).await;
        self.inner.query(query).await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests {
    use mcp_backends::memory::MemoryAuditLog;

    use super::*;

    fn record(n: u64) -> AuditRecord {
        AuditRecord {
            at_ms: n as i64,
            principal: Some("p".into()),
            service: "files".into(),
            action: "read".into(),
            target: None,
            outcome: "ok".into(),
            bytes: None,
            duration_us: 1,
            request_id: format!("r{n}"),
        }
    }

    #[tokio::test]
    async fn appended_records_are_read_back_in_order() {
        let log = BufferedAuditLog::new(Arc::new(MemoryAuditLog::new()));
        for n in 0..100 {
            log.append(record(n)).await.unwrap();
        }
        let found = log
            .query(&AuditQuery {
                limit: 1_000,
                ..Default::default()
            })
            .await
            .unwrap();
        let ids: Vec<_> = found.iter().map(|r| r.request_id.clone()).collect();
        let expected: Vec<_> = (0..100).rev().map(|n| format!("r{n}")).collect();
        assert_eq!(ids, expected);
        assert_eq!(log.dropped(), 0);
    }

    /// On PostgreSQL, a burst goes out in batches; a record PostgreSQL refuses (a NUL byte)
    /// costs only itself, the rest of its batch is appended in order.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn a_refused_record_skips_only_itself() {
        let Some(url) = mcp_backends::testing::server_url("MCP_TEST_POSTGRES_URL") else {
            return;
        };
        let inner = mcp_backends::postgres::PostgresAuditLog::connect(&url)
            .await
            .unwrap();
        let log = BufferedAuditLog::new(Arc::new(inner));
        let principal = format!("{}burst", mcp_backends::testing::unique_prefix());
        for n in 0..2_000u64 {
            let mut record = record(n);
            record.principal = Some(principal.clone());
            if n == 1_234 {
                record.target = Some("bad\0target".into());
            }
            log.append(record).await.unwrap();
        }
        let query = AuditQuery {
            principal: Some(principal),
            limit: 10_000,
            ..Default::default()
        };
        // The refused batch goes out record by record, which can outlast one FLUSH_WAIT.
        let mut ids = Vec::new();
        for _ in 0..60 {
            let found = log.query(&query).await.unwrap();
            ids = found
                .iter()
                .map(|r| r.request_id.clone())
                .collect::<Vec<_>>();
            if ids.len() >= 1_999 {
                break;
            }
        }
        let expected: Vec<_> = (0..2_000u64)
            .rev()
            .filter(|n| *n != 1_234)
            .map(|n| format!("r{n}"))
            .collect();
        assert!(
            ids == expected,
            "{} records, not the 1,999 expected in order",
            ids.len()
        );
        assert_eq!(log.dropped(), 0);
    }
}
