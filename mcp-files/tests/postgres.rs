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
    // The access log is shared by every run against this database: this run's records are
    // the ones with its own principal, appended after `started_ms`.
    let started_ms = mcp_core::unix_millis_now();
    let principal = format!(
        "pg-tester-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let ctx = RequestContext::local().with_principal(principal.clone());
    {
        let files = service(&url, fx.config()).await;
        for body in ["one\n", "one\ntwo\n", "one\ntwo\nthree\n"] {
            files
                .call(
                    "write",
                    json!({"path": "kept.txt", "content": body}).into(),
                    &ctx,
                )
                .await
                .unwrap();
        }
        let deleted = files
            .call("delete", json!({"path": "kept.txt"}).into(), &ctx)
            .await
            .unwrap()
            .to_value()
            .unwrap();
        assert_eq!(deleted["size"], 14);
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
    let edited = files
        .call(
            "edit",
            json!({"path": "kept.txt", "edits": [{"old_text": "two", "new_text": "2"}]}).into(),
            &ctx,
        )
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(
        (edited["version"].as_u64(), edited["size"].as_u64()),
        (Some(6), Some(6))
    );
    let missing = files
        .call(
            "edit",
            json!({"path": "kept.txt", "edits": [{"old_text": "absent", "new_text": ""}]}).into(),
            &ctx,
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code(), "invalid_argument");
    let moved = files
        .call(
            "move",
            json!({"from": "kept.txt", "to": "moved.txt"}).into(),
            &ctx,
        )
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(moved["size"], 6);
    let read = files
        .call("read", json!({"path": "moved.txt"}).into(), &ctx)
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(read["content"], "one\n2\n");

    let audit = PostgresAuditLog::connect(&url).await.unwrap();
    let mut records = audit
        .query(&AuditQuery {
            principal: Some(principal.clone()),
            service: Some("files".into()),
            since_ms: Some(started_ms),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    // Newest first; equal timestamps in reverse append order, so reversed it is call order.
    records.reverse();
    let seen: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.principal.as_deref(),
                r.action.as_str(),
                r.target.as_deref(),
                r.outcome.as_str(),
                r.bytes,
            )
        })
        .collect();
    let who = Some(principal.as_str());
    assert_eq!(
        seen,
        vec![
            (who, "write", Some("kept.txt"), "ok", Some(4)),
            (who, "write", Some("kept.txt"), "ok", Some(8)),
            (who, "write", Some("kept.txt"), "ok", Some(14)),
            (who, "delete", Some("kept.txt"), "ok", Some(14)),
            (who, "edit", Some("kept.txt"), "ok", Some(6)),
            (who, "edit", Some("kept.txt"), "invalid_argument", None),
            (who, "move", Some("kept.txt"), "ok", Some(6)),
            (who, "read", Some("moved.txt"), "ok", Some(6)),
        ]
    );
    let finished_ms = mcp_core::unix_millis_now();
    for record in &records {
        assert_eq!(record.service, "files");
        assert!(
            (started_ms..=finished_ms).contains(&record.at_ms),
            "{record:?}"
        );
        assert!(
            record.duration_us > 0 && record.duration_us < 60_000_000,
            "{record:?}"
        );
        assert_eq!(record.request_id, ctx.request_id());
    }
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
