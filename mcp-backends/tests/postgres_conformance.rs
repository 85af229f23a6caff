//! The conformance suite against a real PostgreSQL (`MCP_TEST_POSTGRES_URL`), in real time.

use std::time::Duration;

use mcp_backends::postgres::{
    PostgresAuditLog, PostgresKvStore, PostgresLockManager, PostgresVersionStore,
};
use mcp_backends::testing::{self, server_url};
use mcp_backends::{AuditLog, Expect, KvStore, LockManager, SetOptions, VersionStore};

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
async fn audit_purge_removes_only_older_records() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    let audit = PostgresAuditLog::connect(&url).await.unwrap();
    let who = format!("{}who", testing::unique_prefix());
    let now = mcp_core::unix_millis_now();
    for at_ms in [1, 2, 3, now] {
        audit
            .append(mcp_backends::AuditRecord {
                at_ms,
                principal: Some(who.clone()),
                service: "files".into(),
                action: "read".into(),
                target: None,
                outcome: "ok".into(),
                bytes: None,
                duration_us: 1,
                request_id: format!("{who}{at_ms}"),
            })
            .await
            .unwrap();
    }
    assert!(audit.purge_before(10).await.unwrap() >= 3);
    let left = audit
        .query(&mcp_backends::AuditQuery {
            principal: Some(who),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let times: Vec<i64> = left.iter().map(|r| r.at_ms).collect();
    assert_eq!(times, [now]);
}

/// Input PostgreSQL cannot store (NUL characters, leases past the calendar) is refused with
/// `InvalidArgument` before anything is written.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_invalid_argument_and_writes_nothing() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    let invalid = |result: Result<_, mcp_backends::Error>| {
        matches!(result, Err(mcp_backends::Error::InvalidArgument(_)))
    };
    let p = testing::unique_prefix();
    let locks = PostgresLockManager::connect(&url).await.unwrap();
    assert!(invalid(
        locks
            .acquire(&format!("{p}a\0b"), "x", Duration::from_secs(1))
            .await
            .map(|_| ())
    ));
    assert!(invalid(
        locks
            .acquire(&format!("{p}r"), "x\0", Duration::from_secs(1))
            .await
            .map(|_| ())
    ));
    assert!(invalid(
        locks
            .acquire(
                &format!("{p}r"),
                "x",
                Duration::from_secs(1000 * 365 * 24 * 3600)
            )
            .await
            .map(|_| ())
    ));
    assert!(invalid(
        locks
            .acquire(&format!("{p}r"), "x", Duration::MAX)
            .await
            .map(|_| ())
    ));
    assert_eq!(locks.inspect(&format!("{p}r")).await.unwrap(), None);

    let versions = PostgresVersionStore::connect(&url).await.unwrap();
    let hash = versions.put_blob(b"content").await.unwrap();
    assert!(invalid(
        versions
            .record(&format!("{p}a\0b"), Some(&hash), Expect::Any)
            .await
            .map(|_| ())
    ));
    assert!(invalid(
        versions
            .history(&format!("{p}a\0b"), None, 10)
            .await
            .map(|_| ())
    ));
    assert!(invalid(versions.get_blob("a\0b").await.map(|_| ())));

    let audit = PostgresAuditLog::connect(&url).await.unwrap();
    let record = mcp_backends::AuditRecord {
        at_ms: 1,
        principal: Some(format!("{p}who")),
        service: "files".into(),
        action: "read".into(),
        target: Some("a\0b".into()),
        outcome: "ok".into(),
        bytes: None,
        duration_us: 1,
        request_id: format!("{p}req"),
    };
    assert!(invalid(audit.append(record).await));
    let by_me = mcp_backends::AuditQuery {
        principal: Some(format!("{p}who")),
        limit: 10,
        ..Default::default()
    };
    assert!(audit.query(&by_me).await.unwrap().is_empty());
    let nul_prefix = mcp_backends::AuditQuery {
        target_prefix: Some("\0".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(invalid(audit.query(&nul_prefix).await.map(|_| ())));
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
