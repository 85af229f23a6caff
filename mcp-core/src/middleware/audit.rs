//! Middleware that hands a record of every finished call (who, what, outcome, how long) to an
//! audit sink, such as the `AuditLog` backends in `mcp-backends`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ActionOutput;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{Call, Middleware, Next};
use crate::Result;

/// One access record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the call finished, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The caller, if authenticated.
    pub principal: Option<String>,
    /// Service name.
    pub service: String,
    /// Action name.
    pub action: String,
    /// What the call was about (a path, key or id), when the service reports it.
    pub target: Option<String>,
    /// `ok` or the error code.
    pub outcome: String,
    /// Bytes read or written, when the service reports it.
    pub bytes: Option<u64>,
    /// How long the call took.
    pub duration_us: u64,
    /// The request id.
    pub request_id: String,
}

/// Milliseconds since the Unix epoch, as stored in [`AuditRecord::at_ms`].
pub fn unix_millis_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// Where audit records go.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Stores one record.
    async fn record(&self, record: AuditRecord) -> Result<()>;
}

/// Sends an [`AuditRecord`] for every call that reached this layer. A failing sink is logged
/// and does not fail the call, whose effect has already happened.
#[derive(Clone)]
pub struct Audit {
    sink: Arc<dyn AuditSink>,
    /// Services whose calls this layer does not record.
    except: Vec<String>,
}

impl Audit {
    /// Audits into `sink`.
    pub fn new(sink: Arc<dyn AuditSink>) -> Self {
        Audit {
            sink,
            except: Vec::new(),
        }
    }

    /// Leaves the calls of `services` unrecorded: those that write a record of their own
    /// into the same log (the files service's access log, with path and bytes), which would
    /// otherwise hold every such call twice.
    pub fn except<S: Into<String>>(mut self, services: impl IntoIterator<Item = S>) -> Self {
        self.except.extend(services.into_iter().map(Into::into));
        self
    }
}

#[async_trait]
impl Middleware for Audit {
    async fn handle<'a>(&'a self, call: Call<'a>, next: Next<'a>) -> Result<ActionOutput> {
        if self.except.iter().any(|service| service == call.service) {
            return next.run(call).await;
        }
        let ctx = call.ctx;
        let service = call.service.to_owned();
        let action = call.action.name.clone();
        let started = Instant::now();
        let result = next.run(call).await;
        let record = AuditRecord {
            at_ms: unix_millis_now(),
            principal: ctx.principal().map(str::to_owned),
            service,
            action,
            target: None,
            outcome: match &result {
                Ok(_) => "ok".to_owned(),
                Err(err) => err.code().to_owned(),
            },
            bytes: None,
            duration_us: started.elapsed().as_micros() as u64,
            request_id: ctx.request_id().to_owned(),
        };
        if let Err(err) = self.sink.record(record).await {
            tracing::warn!(error = %err, "audit sink failed; the call itself completed");
        }
        result
    }
}
