//! Middleware that records a request counter and a latency histogram per service and action
//! through the `metrics` facade (whatever recorder the application installs).

use crate::ActionOutput;
use async_trait::async_trait;
use tokio::time::Instant;

use super::{Call, Middleware, Next};
use crate::Result;

/// Counter of finished calls, labelled `service`, `action`, `outcome` (`ok` or error code).
pub const REQUESTS_TOTAL: &str = "mcp_requests_total";
/// Histogram of call latency in seconds, labelled `service`, `action`.
pub const REQUEST_DURATION_SECONDS: &str = "mcp_request_duration_seconds";

/// Records [`REQUESTS_TOTAL`] and [`REQUEST_DURATION_SECONDS`] for every call.
#[derive(Clone, Copy, Debug, Default)]
pub struct Metrics;

#[async_trait]
impl Middleware for Metrics {
    async fn handle<'a>(&'a self, call: Call<'a>, next: Next<'a>) -> Result<ActionOutput> {
        let service = call.service.to_owned();
        let action = call.action.name.clone();
        let started = Instant::now();
        let result = next.run(call).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(err) => err.code(),
        };
        metrics::counter!(REQUESTS_TOTAL, "service" => service.clone(), "action" => action.clone(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!(REQUEST_DURATION_SECONDS, "service" => service, "action" => action)
            .record(started.elapsed().as_secs_f64());
        result
    }
}
