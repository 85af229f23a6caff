//! The conformance suite against a real Redis (`MCP_TEST_REDIS_URL`), in real time.

use mcp_backends::redis::{RedisEventBus, RedisKvStore};
use mcp_backends::testing::{self, server_url};

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
