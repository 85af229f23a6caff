//! Conformance suite for [`RateLimiter`] (the trait lives in `mcp-core`).

use std::time::Duration;

use mcp_core::middleware::RateLimiter;
use mcp_core::Error;
use tokio::time::sleep;

use super::unique_prefix;

/// Checks a limiter configured with `Quota::per_second(10, 3)`: the burst passes, the next
/// request is refused with a positive `retry_after`, other keys are independent, and waiting
/// refills the budget.
pub async fn burst_then_refill(limiter: &dyn RateLimiter) {
    let p = unique_prefix();
    let key = format!("{p}k");
    for _ in 0..3 {
        limiter.check(&key).await.unwrap();
    }
    match limiter.check(&key).await {
        Err(Error::RateLimited { retry_after }) => {
            assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_millis(100))
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    limiter.check(&format!("{p}other")).await.unwrap();
    sleep(Duration::from_millis(250)).await;
    limiter.check(&key).await.unwrap();
    limiter.check(&key).await.unwrap();
}
