//! Conformance suite for [`AuditLog`].

use super::unique_prefix;
use crate::audit::{AuditLog, AuditQuery};
use crate::AuditRecord;

fn record(principal: &str, service: &str, action: &str, target: &str, at_ms: i64) -> AuditRecord {
    AuditRecord {
        at_ms,
        principal: Some(principal.to_owned()),
        service: service.to_owned(),
        action: action.to_owned(),
        target: Some(target.to_owned()),
        outcome: "ok".to_owned(),
        bytes: Some(3),
        duration_us: 10,
        request_id: format!("req-{at_ms}"),
    }
}

/// Runs every AuditLog check.
pub async fn run_all(log: &dyn AuditLog) {
    append_and_query(log).await;
}

/// Filters, newest-first order and limits.
pub async fn append_and_query(log: &dyn AuditLog) {
    let p = unique_prefix();
    let alice = format!("{p}alice");
    let bob = format!("{p}bob");
    let base = mcp_core::unix_millis_now();
    log.append(record(&alice, "files", "read", &format!("{p}/a.txt"), base))
        .await
        .unwrap();
    log.append(record(
        &alice,
        "files",
        "write",
        &format!("{p}/b.txt"),
        base + 1,
    ))
    .await
    .unwrap();
    log.append(record(&bob, "memory", "store", "key", base + 2))
        .await
        .unwrap();
    log.append(record(
        &alice,
        "files",
        "read",
        &format!("{p}/dir/c.txt"),
        base + 3,
    ))
    .await
    .unwrap();

    let by_alice = log
        .query(&AuditQuery {
            principal: Some(alice.clone()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_alice.len(), 3);
    assert!(
        by_alice.windows(2).all(|w| w[0].at_ms >= w[1].at_ms),
        "newest first"
    );
    assert_eq!(by_alice[0].at_ms, base + 3);

    let reads = log
        .query(&AuditQuery {
            principal: Some(alice.clone()),
            action: Some("read".into()),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(reads.len(), 1);
    assert_eq!(
        reads[0].target.as_deref(),
        Some(format!("{p}/dir/c.txt").as_str())
    );

    let under_dir = log
        .query(&AuditQuery {
            target_prefix: Some(format!("{p}/dir/")),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(under_dir.len(), 1);

    let recent = log
        .query(&AuditQuery {
            principal: Some(bob.clone()),
            service: Some("memory".into()),
            since_ms: Some(base + 2),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0], record(&bob, "memory", "store", "key", base + 2));
    log.ping().await.unwrap();
}
