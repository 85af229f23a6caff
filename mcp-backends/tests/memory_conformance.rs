//! The conformance suite against the in-memory backends, with tokio's clock paused so TTL and
//! lease checks run instantly and exactly.

use mcp_backends::memory::{
    HnswConfig, HnswVectorIndex, MemoryAuditLog, MemoryEventBus, MemoryGraphStore, MemoryKvStore,
    MemoryLockManager, MemoryVectorIndex, MemoryVersionStore,
};
use mcp_backends::testing;
use mcp_core::middleware::{GcraLimiter, Quota};

#[tokio::test(start_paused = true)]
async fn kv_store() {
    testing::kv::run_all(&MemoryKvStore::new()).await;
}

#[tokio::test(start_paused = true)]
async fn lock_manager() {
    testing::lock::run_all(&MemoryLockManager::new()).await;
}

#[tokio::test(start_paused = true)]
async fn event_bus() {
    testing::events::run_all(&MemoryEventBus::new()).await;
}

#[tokio::test]
async fn audit_log() {
    testing::audit::run_all(&MemoryAuditLog::new()).await;
}

#[tokio::test(start_paused = true)]
async fn rate_limiter() {
    testing::rate_limit::burst_then_refill(&GcraLimiter::new(Quota::per_second(10, 3))).await;
}

#[tokio::test]
async fn version_store() {
    testing::version::run_all(&MemoryVersionStore::new()).await;
}

#[tokio::test]
async fn vector_index() {
    testing::vector::run_all(&MemoryVectorIndex::new(testing::vector::DIMENSIONS)).await;
}

#[tokio::test]
async fn hnsw_vector_index() {
    testing::vector::run_all(&HnswVectorIndex::new(testing::vector::DIMENSIONS)).await;
}

/// The same suite with every search going through the graph rather than the exact scan.
#[tokio::test]
async fn hnsw_vector_index_graph_search() {
    let config = HnswConfig {
        exact_below: 0,
        ..HnswConfig::default()
    };
    let index = HnswVectorIndex::with_config(testing::vector::DIMENSIONS, config).unwrap();
    testing::vector::run_all(&index).await;
}

#[tokio::test]
async fn graph_store() {
    testing::graph::run_all(&MemoryGraphStore::new()).await;
}

#[tokio::test(start_paused = true)]
async fn audit_ring_drops_the_oldest() {
    use mcp_backends::{AuditLog, AuditQuery, AuditRecord};
    let log = MemoryAuditLog::with_capacity(3);
    for i in 0..5 {
        log.append(AuditRecord {
            at_ms: i,
            principal: None,
            service: "s".into(),
            action: "a".into(),
            target: None,
            outcome: "ok".into(),
            bytes: None,
            duration_us: 0,
            request_id: i.to_string(),
        })
        .await
        .unwrap();
    }
    let kept: Vec<i64> = log
        .query(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|r| r.at_ms)
        .collect();
    assert_eq!(kept, [4, 3, 2]);
}
