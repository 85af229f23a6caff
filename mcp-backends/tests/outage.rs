//! Outages of the real servers: with Redis or PostgreSQL stopped (through
//! `scripts/services.sh down`), calls fail with `Unavailable` (or `Timeout`) within a bounded
//! time instead of hanging, and the same store instance works again once the server is back.
//!
//! These tests stop shared servers, so they are ignored by default and run alone, last:
//! `cargo test -p mcp-backends --all-features --test outage -- --ignored --test-threads=1`
//! (`./test` does this).

use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use mcp_backends::testing::{server_url, unique_prefix};
use mcp_backends::{
    AuditLog, AuditQuery, AuditRecord, Error, Expect, KvStore, LockManager, Quota, RateLimiter,
    SetOptions, VersionStore,
};

fn services(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/services.sh");
    let status = Command::new("bash")
        .arg(script)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("scripts/services.sh runs");
    assert!(status.success(), "services.sh {args:?} failed");
}

/// Stops `service`, checks that `store` fails fast, restarts it and checks recovery.
async fn survives_outage(service: &str, store: &dyn KvStore) {
    let key = format!("{}outage", unique_prefix());
    store
        .set(&key, b"before".to_vec(), SetOptions::default())
        .await
        .unwrap();

    services(&["down", service]);
    let started = Instant::now();
    let err = store.get(&key).await.expect_err("the server is down");
    let took = started.elapsed();
    assert!(
        matches!(err, Error::Unavailable { .. } | Error::Timeout { .. }),
        "{service} down gave {err:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "{service} outage took {took:?} to report"
    );
    let err = store
        .set(&key, b"during".to_vec(), SetOptions::default())
        .await
        .expect_err("down");
    assert!(
        matches!(err, Error::Unavailable { .. } | Error::Timeout { .. }),
        "{err:?}"
    );
    eprintln!("{service}: outage reported as `{err}` after {took:?}");

    services(&["up", service]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match store
            .set(&key, b"after".to_vec(), SetOptions::default())
            .await
        {
            Ok(_) => break,
            Err(err) if Instant::now() < deadline => {
                eprintln!("{service}: not back yet ({err})");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(err) => panic!("{service} did not recover: {err:?}"),
        }
    }
    assert_eq!(store.get(&key).await.unwrap(), Some(b"after".to_vec()));
    store.delete(&key).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "stops the shared Redis; run alone: cargo test --test outage -- --ignored --test-threads=1"]
async fn redis_outage_is_unavailable_then_recovers() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let store = mcp_backends::redis::RedisKvStore::connect(&url)
        .await
        .unwrap();
    survives_outage("redis", &store).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "stops the shared PostgreSQL; run alone: cargo test --test outage -- --ignored --test-threads=1"]
async fn postgres_outage_is_unavailable_then_recovers() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    let store = mcp_backends::postgres::PostgresKvStore::connect(&url)
        .await
        .unwrap();
    survives_outage("postgres", &store).await;
}

/// How long a call to a stopped server may take to report it.
const REPORT_WITHIN: Duration = Duration::from_secs(5);

/// Awaits `call` against a stopped server: it must fail with `Unavailable` or `Timeout`
/// within [`REPORT_WITHIN`].
async fn fails_fast<T: Debug>(what: &str, call: impl Future<Output = Result<T, Error>>) {
    let started = Instant::now();
    let result = call.await;
    let took = started.elapsed();
    match result {
        Err(Error::Unavailable { .. } | Error::Timeout { .. }) if took < REPORT_WITHIN => {
            eprintln!("{what}: down reported after {took:?}");
        }
        other => panic!("{what} with the server down gave {other:?} after {took:?}"),
    }
}

/// Retries `call` until it succeeds (the server is back), for at most 15 s.
async fn once_back<T, E: Debug, Fut: Future<Output = Result<T, E>>>(
    what: &str,
    mut call: impl FnMut() -> Fut,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match call().await {
            Ok(value) => return value,
            Err(err) if Instant::now() < deadline => {
                eprintln!("{what}: not back yet ({err:?})");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(err) => panic!("{what} did not recover: {err:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "stops the shared Redis; run alone: cargo test --test outage -- --ignored --test-threads=1"]
async fn redis_locks_and_rate_limits_fail_fast_then_recover() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let locks = mcp_backends::redis::RedisLockManager::connect(&url)
        .await
        .unwrap();
    let limiter = mcp_backends::redis::RedisRateLimiter::connect(&url, Quota::per_second(100, 100))
        .await
        .unwrap();
    let resource = format!("{}outage", unique_prefix());
    let lease = locks
        .acquire(&resource, "before", Duration::from_secs(60))
        .await
        .unwrap();
    limiter.check(&resource).await.unwrap();

    services(&["down", "redis"]);
    fails_fast(
        "acquire",
        locks.acquire(&resource, "during", Duration::from_secs(60)),
    )
    .await;
    fails_fast(
        "refresh",
        locks.refresh(&resource, lease.token, Duration::from_secs(60)),
    )
    .await;
    fails_fast("release", locks.release(&resource, lease.token)).await;
    fails_fast("inspect", locks.inspect(&resource)).await;
    // The limiter fails closed: a request it cannot account for is refused.
    let started = Instant::now();
    let refused = limiter.check(&resource).await;
    assert!(
        matches!(
            refused,
            Err(mcp_core::Error::Unavailable(_) | mcp_core::Error::Timeout(_))
        ) && started.elapsed() < REPORT_WITHIN,
        "rate limit check with Redis down gave {refused:?} after {:?}",
        started.elapsed()
    );

    services(&["up", "redis"]);
    // This Redis keeps no data across restarts: the lease is gone, yet the re-seeded fencing
    // counter still grants a token above the one granted before the outage.
    let after = once_back("acquire", || {
        locks.acquire(&resource, "after", Duration::from_secs(60))
    })
    .await;
    assert!(
        after.token > lease.token,
        "token {} after the restart, {} before",
        after.token,
        lease.token
    );
    assert!(locks.release(&resource, after.token).await.unwrap());
    once_back("rate limit", || limiter.check(&resource)).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "stops the shared PostgreSQL; run alone: cargo test --test outage -- --ignored --test-threads=1"]
async fn postgres_locks_versions_and_audit_fail_fast_then_recover() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    let locks = mcp_backends::postgres::PostgresLockManager::connect(&url)
        .await
        .unwrap();
    let versions = mcp_backends::postgres::PostgresVersionStore::connect(&url)
        .await
        .unwrap();
    let audit = mcp_backends::postgres::PostgresAuditLog::connect(&url)
        .await
        .unwrap();
    let p = unique_prefix();
    let path = format!("{p}outage.txt");
    let entry = AuditRecord {
        at_ms: mcp_core::unix_millis_now(),
        principal: Some(format!("{p}who")),
        service: "files".into(),
        action: "write".into(),
        target: Some(path.clone()),
        outcome: "ok".into(),
        bytes: Some(6),
        duration_us: 1,
        request_id: format!("{p}before"),
    };
    let by_me = AuditQuery {
        principal: Some(format!("{p}who")),
        limit: 10,
        ..Default::default()
    };
    let lease = locks
        .acquire(&path, "before", Duration::from_secs(60))
        .await
        .unwrap();
    let hash = versions.put_blob(b"before").await.unwrap();
    let first = versions
        .record(&path, Some(&hash), Expect::Absent)
        .await
        .unwrap();
    audit.append(entry.clone()).await.unwrap();

    services(&["down", "postgres"]);
    // Concurrently, so the server is down only for as long as one call takes to report it.
    let other = format!("{p}other");
    tokio::join!(
        fails_fast(
            "acquire",
            locks.acquire(&other, "during", Duration::from_secs(60))
        ),
        fails_fast("inspect", locks.inspect(&path)),
        fails_fast("release", locks.release(&path, lease.token)),
        fails_fast("put_blob", versions.put_blob(b"during")),
        fails_fast(
            "record",
            versions.record(&path, Some(&hash), Expect::Version(1))
        ),
        fails_fast("history", versions.history(&path, None, 10)),
        fails_fast("append", audit.append(entry.clone())),
        fails_fast("query", audit.query(&by_me)),
    );

    services(&["up", "postgres"]);
    // PostgreSQL keeps its data: the lease, the history and the records are all still there,
    // and nothing was half-written during the outage.
    let held = once_back("inspect", || locks.inspect(&path)).await;
    assert_eq!(held.map(|l| l.token), Some(lease.token));
    assert!(locks.release(&path, lease.token).await.unwrap());
    let history = once_back("history", || versions.history(&path, None, 10)).await;
    assert_eq!(history, [first]);
    let second = versions
        .record(&path, Some(&hash), Expect::Version(1))
        .await
        .unwrap();
    assert_eq!(second.version, 2);
    let records = once_back("query", || audit.query(&by_me)).await;
    assert_eq!(records, [entry]);
}
