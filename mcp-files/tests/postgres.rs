//! The service over PostgreSQL versions, locks and access log (needs `MCP_TEST_POSTGRES_URL`).

mod common;

use std::sync::Arc;

use common::Fixture;
use mcp_backends::postgres::{PostgresAuditLog, PostgresLockManager, PostgresVersionStore};
use mcp_backends::testing::server_url;
use mcp_backends::{AuditLog, AuditQuery};
use mcp_core::{RequestContext, Service};
use mcp_files::{FilesConfig, FilesService, ReadRange};
use serde_json::json;

async fn service(url: &str, config: FilesConfig) -> FilesService {
    FilesService::builder(config)
        .versions(Arc::new(PostgresVersionStore::connect(url).await.unwrap()))
        .locks(Arc::new(PostgresLockManager::connect(url).await.unwrap()))
        .audit(Arc::new(PostgresAuditLog::connect(url).await.unwrap()))
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_access_log_survive_recreating_the_service() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    let fx = Fixture::new();
    let ctx = RequestContext::local().with_principal("pg-tester");
    {
        let files = service(&url, fx.config()).await;
        for body in ["one\n", "one\ntwo\n", "one\ntwo\nthree\n"] {
            files
                .call("write", json!({"path": "kept.txt", "content": body}), &ctx)
                .await
                .unwrap();
        }
        files
            .call("delete", json!({"path": "kept.txt"}), &ctx)
            .await
            .unwrap();
        assert!(files
            .health()
            .await
            .iter()
            .all(|h| h.ok && h.backend == "postgres"));
    }
    let files = service(&url, fx.config()).await;
    let history = files.versions("kept.txt").await.unwrap();
    assert_eq!(
        history
            .versions
            .iter()
            .map(|v| v.version)
            .collect::<Vec<_>>(),
        vec![4, 3, 2, 1]
    );
    assert!(history.versions[0].deleted);
    let diff = files.diff("kept.txt", 1, Some(3)).await.unwrap();
    assert!(
        diff.diff.contains("+two") && diff.diff.contains("+three"),
        "{}",
        diff.diff
    );
    let restored = files
        .restore("kept.txt", 2, Default::default())
        .await
        .unwrap();
    assert_eq!(restored.version, 5);
    assert_eq!(
        files
            .read("kept.txt", ReadRange::Whole)
            .await
            .unwrap()
            .content
            .as_deref(),
        Some("one\ntwo\n")
    );

    let audit = PostgresAuditLog::connect(&url).await.unwrap();
    let key_prefix = std::fs::canonicalize(&fx.root).unwrap();
    let _ = key_prefix;
    let records = audit
        .query(&AuditQuery {
            principal: Some("pg-tester".into()),
            service: Some("files".into()),
            target_prefix: Some("kept.txt".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let ours: Vec<_> = records.iter().filter(|r| r.at_ms >= 0).collect();
    assert!(ours.len() >= 4, "{} records", ours.len());
    assert!(ours
        .iter()
        .any(|r| r.action == "delete" && r.outcome == "ok"));
    assert!(ours
        .iter()
        .any(|r| r.action == "write" && r.bytes == Some(4)));
}

#[tokio::test]
async fn a_postgres_locked_path_needs_the_token() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    let fx = Fixture::new();
    common::locked_path_needs_the_token(&service(&url, fx.config()).await, &fx.root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_tasks_racing_through_postgres_locks_never_see_two_holders() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    let fx = Fixture::new();
    common::lock_contention(Arc::new(service(&url, fx.config()).await), 32, 60).await;
}
