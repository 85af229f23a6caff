//! The conformance suite against a real PostgreSQL (`MCP_TEST_POSTGRES_URL`), in real time.

use std::time::Duration;

use mcp_backends::postgres::{
    PostgresAuditLog, PostgresKvStore, PostgresLockManager, PostgresVersionStore,
};
use mcp_backends::testing::{self, server_url};
use mcp_backends::{Expect, KvStore, LockManager, SetOptions, VersionStore};

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
async fn lock_manager() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    testing::lock::run_all(&PostgresLockManager::connect(&url).await.unwrap()).await;
}

/// Two managers (two instances of the service) exclude each other, and the fencing counter
/// outlives the manager that granted the tokens.
#[tokio::test(flavor = "multi_thread")]
async fn lock_managers_share_leases_and_tokens() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    let resource = format!("{}shared", testing::unique_prefix());
    let first = PostgresLockManager::connect(&url).await.unwrap();
    let lease = first
        .acquire(&resource, "a", Duration::from_secs(30))
        .await
        .unwrap();
    let second = PostgresLockManager::connect(&url).await.unwrap();
    assert!(matches!(
        second
            .acquire(&resource, "b", Duration::from_secs(30))
            .await,
        Err(mcp_backends::Error::Locked(_))
    ));
    assert!(second.release(&resource, lease.token).await.unwrap());
    drop(first);
    let next = second
        .acquire(&resource, "b", Duration::from_secs(30))
        .await
        .unwrap();
    assert!(next.token > lease.token);
    assert!(second.release(&resource, next.token).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn version_store() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    testing::version::run_all(&PostgresVersionStore::connect(&url).await.unwrap()).await;
}

/// History and blobs are in the database, not the process: a store connected afresh (as
/// after a restart) sees them and continues the numbering.
#[tokio::test(flavor = "multi_thread")]
async fn version_history_survives_a_restart() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    let path = format!("{}restart.txt", testing::unique_prefix());
    let store = PostgresVersionStore::connect(&url).await.unwrap();
    let mut recorded = Vec::new();
    for i in 0..3 {
        let hash = store
            .put_blob(format!("{path} v{i}").as_bytes())
            .await
            .unwrap();
        recorded.push(store.record(&path, Some(&hash), Expect::Any).await.unwrap());
    }
    drop(store);

    let store = PostgresVersionStore::connect(&url).await.unwrap();
    let history = store.history(&path, None, 10).await.unwrap();
    recorded.reverse();
    assert_eq!(history, recorded);
    let oldest = recorded[2].hash.as_deref().unwrap();
    assert_eq!(
        store.get_blob(oldest).await.unwrap(),
        Some(format!("{path} v0").into_bytes())
    );
    let next = store.record(&path, None, Expect::Version(3)).await.unwrap();
    assert_eq!((next.version, next.is_tombstone()), (4, true));
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_log() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    testing::audit::run_all(&PostgresAuditLog::connect(&url).await.unwrap()).await;
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
