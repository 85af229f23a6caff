//! Middleware behaviour against a mock inner service, with tokio's clock paused so rate-limit
//! timing is exact.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mcp_core::middleware::{
    Audit, AuditRecord, AuditSink, Authorize, GcraLimiter, Metrics, Quota, RateLimit, RateLimiter,
};
use mcp_core::{
    to_result, ActionOutput, ActionSpec, Error, Params, Registry, RequestContext, Result, Scopes,
    Service,
};
use serde_json::{json, Value};

/// Counts the calls that reach it and answers `{"ok": true}` or fails on action `fail`.
struct Inner {
    actions: Vec<ActionSpec>,
    calls: Mutex<u32>,
}

impl Inner {
    fn new() -> Arc<Self> {
        Arc::new(Inner {
            actions: vec![
                ActionSpec::new::<Value, Value>("read", "reads").read_only(),
                ActionSpec::new::<Value, Value>("write", "writes"),
                ActionSpec::new::<Value, Value>("fail", "always fails"),
            ],
            calls: Mutex::new(0),
        })
    }
    fn calls(&self) -> u32 {
        *self.calls.lock().unwrap()
    }
}

#[async_trait]
impl Service for Inner {
    fn name(&self) -> &str {
        "mock"
    }
    fn actions(&self) -> &[ActionSpec] {
        &self.actions
    }
    async fn call(
        &self,
        action: &str,
        _params: Params,
        _ctx: &RequestContext,
    ) -> Result<ActionOutput> {
        *self.calls.lock().unwrap() += 1;
        match action {
            "fail" => Err(Error::Conflict("always".into())),
            _ => to_result(&json!({"ok": true})),
        }
    }
}

#[tokio::test]
async fn authorize_checks_principal_then_scope() {
    let inner = Inner::new();
    let registry = Registry::builder()
        .layer(Authorize)
        .service(inner.clone())
        .build()
        .unwrap();
    let anonymous = RequestContext::anonymous();
    let err = registry
        .call("mock", "read", json!({}), &anonymous)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthenticated(_)), "{err:?}");

    let reader = RequestContext::anonymous()
        .with_principal("alice")
        .with_scopes(Scopes::new(["mock:read"]));
    registry
        .call("mock", "read", json!({}), &reader)
        .await
        .unwrap();
    let err = registry
        .call("mock", "write", json!({}), &reader)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::PermissionDenied("scope `mock:write` is not granted to this caller".into())
    );
    assert_eq!(inner.calls(), 1, "refused calls never reach the service");
}

#[tokio::test(start_paused = true)]
async fn gcra_allows_the_burst_then_one_per_interval() {
    let limiter = GcraLimiter::new(Quota::per_second(10, 3));
    for _ in 0..3 {
        limiter.check("k").await.unwrap();
    }
    let err = limiter.check("k").await.unwrap_err();
    assert_eq!(
        err,
        Error::RateLimited {
            retry_after: Duration::from_millis(100)
        }
    );
    // Other keys have their own budget.
    limiter.check("other").await.unwrap();

    tokio::time::advance(Duration::from_millis(99)).await;
    assert!(limiter.check("k").await.is_err());
    tokio::time::advance(Duration::from_millis(1)).await;
    limiter.check("k").await.unwrap();
    assert!(limiter.check("k").await.is_err());

    // After a long idle period the full burst is back, and no more.
    tokio::time::advance(Duration::from_secs(60)).await;
    for _ in 0..3 {
        limiter.check("k").await.unwrap();
    }
    assert!(limiter.check("k").await.is_err());
}

#[tokio::test(start_paused = true)]
async fn gcra_sustained_rate_matches_the_quota() {
    let limiter = GcraLimiter::new(Quota::per_second(20, 1));
    let mut allowed = 0;
    // Try every millisecond for 10 seconds: exactly 20/s get through.
    for _ in 0..10_000 {
        if limiter.check("k").await.is_ok() {
            allowed += 1;
        }
        tokio::time::advance(Duration::from_millis(1)).await;
    }
    assert_eq!(allowed, 200);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_layer_limits_per_principal_and_spares_the_service() {
    let inner = Inner::new();
    let registry = Registry::builder()
        .layer(RateLimit::new(Arc::new(GcraLimiter::new(
            Quota::per_second(1, 2),
        ))))
        .service(inner.clone())
        .build()
        .unwrap();
    let alice = RequestContext::local().with_principal("alice");
    let bob = RequestContext::local().with_principal("bob");
    registry
        .call("mock", "read", json!({}), &alice)
        .await
        .unwrap();
    registry
        .call("mock", "read", json!({}), &alice)
        .await
        .unwrap();
    let err = registry
        .call("mock", "read", json!({}), &alice)
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    registry
        .call("mock", "read", json!({}), &bob)
        .await
        .unwrap();
    assert_eq!(inner.calls(), 3);
    tokio::time::advance(Duration::from_secs(1)).await;
    registry
        .call("mock", "read", json!({}), &alice)
        .await
        .unwrap();
}

#[derive(Default)]
struct Collect(Mutex<Vec<AuditRecord>>);

#[async_trait]
impl AuditSink for Collect {
    async fn record(&self, record: AuditRecord) -> Result<()> {
        self.0.lock().unwrap().push(record);
        Ok(())
    }
}

#[tokio::test]
async fn audit_records_successes_and_failures() {
    let sink = Arc::new(Collect::default());
    let registry = Registry::builder()
        .layer(Audit::new(sink.clone()))
        .service(Inner::new())
        .build()
        .unwrap();
    let ctx = RequestContext::local()
        .with_principal("alice")
        .with_request_id("r-1");
    registry
        .call("mock", "read", json!({}), &ctx)
        .await
        .unwrap();
    registry
        .call("mock", "fail", json!({}), &ctx)
        .await
        .unwrap_err();
    let records = sink.0.lock().unwrap().clone();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].outcome, "ok");
    assert_eq!(records[0].principal.as_deref(), Some("alice"));
    assert_eq!(records[0].request_id, "r-1");
    assert_eq!(
        (records[1].action.as_str(), records[1].outcome.as_str()),
        ("fail", "conflict")
    );
}

#[tokio::test]
async fn audit_leaves_the_excepted_services_to_themselves() {
    let sink = Arc::new(Collect::default());
    let inner = Inner::new();
    let registry = Registry::builder()
        .layer(Audit::new(sink.clone()).except(["mock"]))
        .service(inner.clone())
        .build()
        .unwrap();
    registry
        .call("mock", "read", json!({}), &RequestContext::local())
        .await
        .unwrap();
    assert_eq!(inner.calls(), 1, "the call still runs");
    assert!(sink.0.lock().unwrap().is_empty());
}

#[test]
fn metrics_count_calls_and_outcomes() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let registry = Registry::builder()
                .layer(Metrics)
                .service(Inner::new())
                .build()
                .unwrap();
            let ctx = RequestContext::local();
            registry
                .call("mock", "read", json!({}), &ctx)
                .await
                .unwrap();
            registry
                .call("mock", "read", json!({}), &ctx)
                .await
                .unwrap();
            registry
                .call("mock", "fail", json!({}), &ctx)
                .await
                .unwrap_err();
        });
    });
    let mut read_ok = 0;
    let mut fail_conflict = 0;
    let mut latencies = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<(String, String)> = key
            .key()
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        let has = |k: &str, v: &str| labels.iter().any(|(lk, lv)| lk == k && lv == v);
        match (key.key().name(), value) {
            ("mcp_requests_total", DebugValue::Counter(n))
                if has("action", "read") && has("outcome", "ok") =>
            {
                read_ok = n
            }
            ("mcp_requests_total", DebugValue::Counter(n))
                if has("action", "fail") && has("outcome", "conflict") =>
            {
                fail_conflict = n
            }
            ("mcp_request_duration_seconds", DebugValue::Histogram(values)) => {
                latencies += values.len()
            }
            _ => {}
        }
    }
    assert_eq!((read_ok, fail_conflict, latencies), (2, 1, 3));
}
