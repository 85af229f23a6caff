//! Middleware: cross-cutting layers (authorization, rate limiting, metrics, audit) that wrap
//! every registry call, so no service repeats them.
//!
//! A layer receives the [`Call`] and the [`Next`] step and decides whether, and how, to call
//! `next.run(call)`. Layers run in the order they were added to the
//! [`RegistryBuilder`](crate::RegistryBuilder).

mod audit;
mod authorize;
mod metrics;
mod rate_limit;

use std::sync::Arc;

use async_trait::async_trait;

pub use audit::{unix_millis_now, Audit, AuditRecord, AuditSink};
pub use authorize::Authorize;
pub use metrics::Metrics;
pub use rate_limit::{GcraLimiter, Quota, RateLimit, RateLimiter};

use crate::{ActionOutput, ActionSpec, Params, RequestContext, Result, Service};

/// One call on its way through the middleware.
pub struct Call<'a> {
    /// The service name.
    pub service: &'a str,
    /// The action being called (already known to exist).
    pub action: &'a ActionSpec,
    /// The JSON arguments.
    pub params: Params,
    /// The caller's context.
    pub ctx: &'a RequestContext,
}

/// The rest of the chain after the current layer.
pub struct Next<'a> {
    rest: &'a [Arc<dyn Middleware>],
    service: &'a dyn Service,
}

impl<'a> Next<'a> {
    pub(crate) fn new(rest: &'a [Arc<dyn Middleware>], service: &'a dyn Service) -> Self {
        Next { rest, service }
    }

    /// Passes the call to the next layer, or to the service after the last one.
    pub async fn run(self, call: Call<'a>) -> Result<ActionOutput> {
        match self.rest.split_first() {
            Some((layer, rest)) => {
                let next = Next {
                    rest,
                    service: self.service,
                };
                layer.handle(call, next).await
            }
            None => {
                self.service
                    .call(&call.action.name, call.params, call.ctx)
                    .await
            }
        }
    }
}

/// A layer around registry dispatch.
#[async_trait]
pub trait Middleware: Send + Sync + 'static {
    /// Handles `call`, usually by doing something before and/or after `next.run(call)`.
    async fn handle<'a>(&'a self, call: Call<'a>, next: Next<'a>) -> Result<ActionOutput>;
}
