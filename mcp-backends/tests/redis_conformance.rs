//! The conformance suite against a real Redis (`MCP_TEST_REDIS_URL`), in real time.

use std::time::{Duration, Instant};

use mcp_backends::redis::{RedisEventBus, RedisKvStore, RedisLockManager, RedisRateLimiter};
use mcp_backends::testing::{self, server_url};
use mcp_backends::{LockManager, Quota, RateLimiter};

#[tokio::test(flavor = "multi_thread")]
async fn kv_store() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    testing::kv::run_all(&RedisKvStore::connect(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_store_with_prefix() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let store = RedisKvStore::connect(&url)
        .await
        .unwrap()
        .with_prefix("app*[1]:");
    testing::kv::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn event_bus() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    testing::events::run_all(&RedisEventBus::connect(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_manager() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    testing::lock::run_all(&RedisLockManager::connect(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_manager_with_prefix() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let locks = RedisLockManager::connect(&url)
        .await
        .unwrap()
        .with_prefix(testing::unique_prefix());
    testing::lock::exclusion_and_release(&locks).await;
    testing::lock::tokens_increase(&locks).await;
}

/// Two managers on one server (two instances of the service) exclude each other and share
/// the fencing counter.
#[tokio::test(flavor = "multi_thread")]
async fn lock_managers_share_leases_and_tokens() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let first = RedisLockManager::connect(&url).await.unwrap();
    let second = RedisLockManager::connect(&url).await.unwrap();
    let resource = format!("{}shared", testing::unique_prefix());
    let lease = first
        .acquire(&resource, "a", Duration::from_secs(30))
        .await
        .unwrap();
    assert!(matches!(
        second
            .acquire(&resource, "b", Duration::from_secs(30))
            .await,
        Err(mcp_backends::Error::Locked(_))
    ));
    assert_eq!(
        second.inspect(&resource).await.unwrap().unwrap().token,
        lease.token
    );
    assert!(second.release(&resource, lease.token).await.unwrap());
    let next = second
        .acquire(&resource, "b", Duration::from_secs(30))
        .await
        .unwrap();
    assert!(next.token > lease.token);
    assert!(first.release(&resource, next.token).await.unwrap());
}

/// Lease TTLs Redis cannot represent are refused with `InvalidArgument`; nothing is locked.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_lease_ttl_is_invalid_argument() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let locks = RedisLockManager::connect(&url).await.unwrap();
    let resource = format!("{}huge", testing::unique_prefix());
    for ttl in [Duration::from_secs(1000 * 365 * 24 * 3600), Duration::MAX] {
        assert!(matches!(
            locks.acquire(&resource, "x", ttl).await,
            Err(mcp_backends::Error::InvalidArgument(_))
        ));
    }
    assert_eq!(locks.inspect(&resource).await.unwrap(), None);
    let lease = locks
        .acquire(&resource, "x", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(matches!(
        locks.refresh(&resource, lease.token, Duration::MAX).await,
        Err(mcp_backends::Error::InvalidArgument(_))
    ));
    assert!(locks.release(&resource, lease.token).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limiter() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let limiter = RedisRateLimiter::connect(&url, Quota::per_second(10, 3))
        .await
        .unwrap();
    testing::rate_limit::burst_then_refill(&limiter).await;
}

/// Two limiters on one server (two instances of the service) draw from one budget per key.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limiters_share_one_budget() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let quota = Quota::per_second(1, 4);
    let first = RedisRateLimiter::connect(&url, quota).await.unwrap();
    let second = RedisRateLimiter::connect(&url, quota).await.unwrap();
    let key = format!("{}shared", testing::unique_prefix());
    for limiter in [&first, &second, &first, &second] {
        limiter.check(&key).await.unwrap();
    }
    for limiter in [&first, &second] {
        match limiter.check(&key).await {
            Err(mcp_core::Error::RateLimited { retry_after }) => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1))
            }
            other => panic!("the shared burst of 4 is spent, got {other:?}"),
        }
    }
}

/// The refusal says how long to wait by GCRA's arithmetic, and a key's state expires once its
/// budget has fully refilled, so idle keys do not accumulate.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limiter_retry_after_and_state_expiry() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let prefix = testing::unique_prefix();
    // Two requests a second, burst 2: interval 500 ms, tolerance 500 ms.
    let limiter = RedisRateLimiter::connect(&url, Quota::per_second(2, 2))
        .await
        .unwrap()
        .with_prefix(prefix.clone());
    limiter.check("k").await.unwrap();
    limiter.check("k").await.unwrap();
    match limiter.check("k").await {
        Err(mcp_core::Error::RateLimited { retry_after }) => assert!(
            retry_after > Duration::from_millis(400) && retry_after <= Duration::from_millis(500),
            "{retry_after:?}"
        ),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = format!("{prefix}k");
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl_ms > 0 && ttl_ms <= 1000, "state TTL {ttl_ms} ms");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0, "a fully refilled key's state is gone");
    limiter.check("k").await.unwrap();
    limiter.check("k").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limiter_fails_closed_when_redis_is_unreachable() {
    let started = Instant::now();
    let err = RedisRateLimiter::connect("redis://127.0.0.1:1", Quota::per_second(10, 3))
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(
        matches!(
            err,
            mcp_backends::Error::Unavailable { .. } | mcp_backends::Error::Timeout { .. }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_server_is_unavailable_quickly() {
    let started = std::time::Instant::now();
    let err = RedisKvStore::connect("redis://127.0.0.1:1")
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(
        matches!(
            err,
            mcp_backends::Error::Unavailable { .. } | mcp_backends::Error::Timeout { .. }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
