//! The conformance suite against a real PostgreSQL (`MCP_TEST_POSTGRES_URL`), in real time.

use mcp_backends::postgres::PostgresKvStore;
use mcp_backends::testing::{self, server_url};
use mcp_backends::{KvStore, SetOptions};

#[tokio::test(flavor = "multi_thread")]
async fn kv_store() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    testing::kv::run_all(&PostgresKvStore::connect(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_removes_only_expired_rows() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    let store = PostgresKvStore::connect(&url).await.unwrap();
    let p = testing::unique_prefix();
    let short = SetOptions {
        ttl: Some(std::time::Duration::from_millis(50)),
        if_absent: false,
    };
    store
        .set(&format!("{p}gone"), b"x".to_vec(), short)
        .await
        .unwrap();
    store
        .set(&format!("{p}kept"), b"y".to_vec(), SetOptions::default())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(store.purge_expired().await.unwrap() >= 1);
    assert_eq!(
        store.get(&format!("{p}kept")).await.unwrap(),
        Some(b"y".to_vec())
    );
    store.delete(&format!("{p}kept")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_server_is_unavailable_quickly() {
    let started = std::time::Instant::now();
    let err = PostgresKvStore::connect("postgres://mcp:mcp@127.0.0.1:1/none")
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(
        matches!(err, mcp_backends::Error::Unavailable { .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
