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
    equal_times_and_literal_prefixes(log).await;
    batches_keep_their_order(log).await;
}

/// A batch appends every record in order, as single appends would; an empty batch is fine.
pub async fn batches_keep_their_order(log: &dyn AuditLog) {
    let p = unique_prefix();
    let who = format!("{p}batcher");
    let at = mcp_core::unix_millis_now();
    log.append_batch(Vec::new()).await.unwrap();
    let batch: Vec<AuditRecord> = (0..300)
        .map(|n| {
            let mut record = record(&who, "files", "write", &format!("{p}/f{n}"), at);
            record.request_id = format!("{p}req-{n}");
            record
        })
        .collect();
    log.append_batch(batch).await.unwrap();
    let found = log
        .query(&AuditQuery {
            principal: Some(who.clone()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<String> = found.iter().map(|r| r.request_id.clone()).collect();
    // Equal timestamps come back newest appended first.
    let expected: Vec<String> = (0..300).rev().map(|n| format!("{p}req-{n}")).collect();
    assert_eq!(ids, expected);
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

/// Records with the same timestamp come back newest appended first; a target prefix is
/// literal text (`%`, `_` and `\\` are not wildcards); records without a principal or target
/// never match those filters; optional fields round-trip.
pub async fn equal_times_and_literal_prefixes(log: &dyn AuditLog) {
    let p = unique_prefix();
    let who = format!("{p}who");
    let at = mcp_core::unix_millis_now();
    let targets = [
        format!("{p}/a_%\\x"),
        format!("{p}/abc"),
        format!("{p}/a_%\\y"),
    ];
    for (i, target) in targets.iter().enumerate() {
        let mut entry = record(&who, "files", "write", target, at);
        entry.request_id = format!("{p}req{i}");
        log.append(entry).await.unwrap();
    }
    let anonymous = AuditRecord {
        at_ms: at,
        principal: None,
        service: "files".to_owned(),
        action: "write".to_owned(),
        target: None,
        outcome: "not_found".to_owned(),
        bytes: None,
        duration_us: 7,
        request_id: format!("{p}anonymous"),
    };
    log.append(anonymous.clone()).await.unwrap();

    let mine = log
        .query(&AuditQuery {
            principal: Some(who.clone()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = mine.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(
        ids,
        [format!("{p}req2"), format!("{p}req1"), format!("{p}req0")],
        "equal timestamps: newest appended first"
    );

    let literal = log
        .query(&AuditQuery {
            target_prefix: Some(format!("{p}/a_%\\")),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = literal.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids, [format!("{p}req2"), format!("{p}req0")]);

    let limited = log
        .query(&AuditQuery {
            principal: Some(who.clone()),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[0].request_id, format!("{p}req2"));

    let none = log
        .query(&AuditQuery {
            principal: Some(who),
            limit: 0,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty(), "limit 0 returns nothing");

    let recent = log
        .query(&AuditQuery {
            since_ms: Some(at),
            service: Some("files".into()),
            action: Some("write".into()),
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let found = recent
        .iter()
        .find(|r| r.request_id == format!("{p}anonymous"))
        .expect("the record without principal or target");
    assert_eq!(found, &anonymous);
    assert!(!literal.iter().any(|r| r.target.is_none()));
}
