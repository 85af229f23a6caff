//! Expiry notices on `EXPIRY_TOPIC`: a value stored with a TTL is announced once when it runs
//! out; a value deleted or rewritten before its deadline (on this or another instance sharing
//! the store and the bus) is not. In memory always; on Redis with the `redis` feature.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use mcp_backends::memory::{MemoryEventBus, MemoryKvStore};
use mcp_backends::{Delivery, EventBus, KvStore};
use mcp_memory::{ExpiryNotice, MemoryService, StoreOptions, EXPIRY_TOPIC};
use serde_json::json;

async fn instance(kv: Arc<dyn KvStore>, bus: Arc<dyn EventBus>) -> MemoryService {
    MemoryService::builder(kv)
        .events(bus)
        .build()
        .await
        .unwrap()
}

/// Stores five keys with a short TTL on `a`, then: deletes one on `a`, deletes one on `b`,
/// rewrites one on `b` without a TTL and one on `a` with a long TTL; only the untouched key
/// may be announced.
async fn only_real_expiries_are_announced(
    a: &MemoryService,
    b: &MemoryService,
    bus: &dyn EventBus,
    ns: &str,
) {
    let mut notices = bus.subscribe(EXPIRY_TOPIC).await.unwrap();
    let short = StoreOptions::ttl(Duration::from_millis(400));
    for key in [
        "expires",
        "deleted-here",
        "deleted-there",
        "persisted",
        "renewed",
    ] {
        a.store(ns, key, &json!(key), short).await.unwrap();
    }
    a.delete(ns, "deleted-here").await.unwrap();
    b.delete(ns, "deleted-there").await.unwrap();
    b.store(
        ns,
        "persisted",
        &json!(1),
        StoreOptions {
            ttl: None,
            if_absent: false,
        },
    )
    .await
    .unwrap();
    a.store(
        ns,
        "renewed",
        &json!(2),
        StoreOptions::ttl(Duration::from_secs(600)),
    )
    .await
    .unwrap();

    let mut announced = BTreeSet::new();
    let window = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(delivery)) = tokio::time::timeout_at(window, notices.recv()).await {
        if let Delivery::Event(event) = delivery {
            let notice: ExpiryNotice = serde_json::from_slice(&event.payload).unwrap();
            if notice.namespace == ns {
                assert!(
                    announced.insert(notice.key.clone()),
                    "announced twice: {notice:?}"
                );
            }
        }
    }
    assert_eq!(announced, BTreeSet::from(["expires".to_owned()]));
    assert!(
        a.retrieve(ns, "expires").await.is_err(),
        "the announced key is gone"
    );
    assert_eq!(a.retrieve(ns, "persisted").await.unwrap().value, json!(1));
    for key in ["persisted", "renewed"] {
        a.delete(ns, key).await.unwrap();
    }
}

#[tokio::test]
async fn in_memory_expiries_are_announced_once() {
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKvStore::new());
    let bus: Arc<dyn EventBus> = Arc::new(MemoryEventBus::new());
    let a = instance(kv.clone(), bus.clone()).await;
    let b = instance(kv, bus.clone()).await;
    only_real_expiries_are_announced(&a, &b, bus.as_ref(), "expiry").await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_expiries_are_announced_once_across_instances() {
    use mcp_backends::redis::{RedisEventBus, RedisKvStore};
    use mcp_backends::testing::{server_url, unique_prefix};
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let mut instances = Vec::new();
    for _ in 0..2 {
        let kv: Arc<dyn KvStore> = Arc::new(RedisKvStore::connect(&url).await.unwrap());
        let bus: Arc<dyn EventBus> = Arc::new(RedisEventBus::connect(&url).await.unwrap());
        instances.push(instance(kv, bus).await);
    }
    let listener = RedisEventBus::connect(&url).await.unwrap();
    let ns = unique_prefix().replace(':', "");
    only_real_expiries_are_announced(&instances[0], &instances[1], &listener, &ns).await;
}
