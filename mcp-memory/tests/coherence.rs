//! Cache coherence between instances sharing one store: once a write on one instance
//! returned, no read that starts afterwards on any instance returns an older value — with no
//! sleeps and no waiting for invalidation events. In memory always; on Redis with the `redis`
//! feature.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mcp_backends::memory::{MemoryEventBus, MemoryKvStore};
use mcp_backends::{EventBus, KvStore};
use mcp_memory::{MemoryService, StoreOptions};
use serde_json::json;

async fn cached(kv: Arc<dyn KvStore>, bus: Arc<dyn EventBus>) -> Arc<MemoryService> {
    Arc::new(
        MemoryService::builder(kv)
            .cache(16 << 20)
            .events(bus)
            .build()
            .await
            .unwrap(),
    )
}

/// Alternating rounds: write on one instance, then read on the other (which has the previous
/// value cached); every read after a returned write must see it.
async fn write_then_read_rounds(a: &MemoryService, b: &MemoryService, ns: &str, rounds: i64) {
    let options = StoreOptions::ttl(Duration::from_secs(600));
    for round in 0..rounds {
        let (writer, reader) = if round % 2 == 0 { (a, b) } else { (b, a) };
        let key = format!("k{}", round % 3);
        // Warm the reader's cache with the current value (twice, so the second is a hit).
        if round >= 3 {
            reader.retrieve(ns, &key).await.ok();
            reader.retrieve(ns, &key).await.ok();
        }
        writer
            .store(ns, &key, &json!(round), options)
            .await
            .unwrap();
        let got = reader.retrieve(ns, &key).await.unwrap();
        assert_eq!(got.value, json!(round), "stale read on round {round}");
        if round % 7 == 0 {
            writer.delete(ns, &key).await.unwrap();
            assert!(
                reader.retrieve(ns, &key).await.is_err(),
                "deleted value read"
            );
        }
        if round % 11 == 0 {
            writer
                .store(ns, &key, &json!(round), options)
                .await
                .unwrap();
            reader.retrieve(ns, &key).await.unwrap();
            writer.expire(ns, &key, None).await.unwrap();
            assert!(
                reader.retrieve(ns, &key).await.is_err(),
                "expired value read"
            );
        }
    }
}

/// A writer task stores increasing numbers on `a`; reader tasks on `b` check that each read
/// sees at least the last number whose write had returned when the read began.
async fn concurrent_monotonic_reads(a: Arc<MemoryService>, b: Arc<MemoryService>, ns: &str) {
    let ns = ns.to_owned();
    let acknowledged = Arc::new(AtomicI64::new(0));
    a.store(&ns, "counter", &json!(0), StoreOptions::default())
        .await
        .unwrap();
    let writer = {
        let (a, ns, acknowledged) = (a.clone(), ns.clone(), acknowledged.clone());
        tokio::spawn(async move {
            for n in 1..=300i64 {
                a.store(&ns, "counter", &json!(n), StoreOptions::default())
                    .await
                    .unwrap();
                acknowledged.store(n, Ordering::SeqCst);
            }
        })
    };
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (b, ns, acknowledged) = (b.clone(), ns.clone(), acknowledged.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0u64;
            loop {
                let floor = acknowledged.load(Ordering::SeqCst);
                let got = b.retrieve(&ns, "counter").await.unwrap();
                let n = got.value.as_i64().unwrap();
                assert!(n >= floor, "read {n} after write {floor} returned");
                reads += 1;
                if floor == 300 {
                    return reads;
                }
            }
        }));
    }
    writer.await.unwrap();
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
}

#[tokio::test(start_paused = true)]
async fn in_memory_instances_never_read_stale() {
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKvStore::new());
    let bus: Arc<dyn EventBus> = Arc::new(MemoryEventBus::new());
    let a = cached(kv.clone(), bus.clone()).await;
    let b = cached(kv, bus).await;
    write_then_read_rounds(&a, &b, "coherence", 500).await;
    // The cache is actually used: repeated reads with no writes are hits.
    let before = b.stats("coherence").await.unwrap().hits;
    for _ in 0..10 {
        b.retrieve("coherence", "k0").await.ok();
    }
    let stats = b.stats("coherence").await.unwrap();
    assert!(stats.hits >= before + 9, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_concurrent_reads_are_monotonic() {
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKvStore::new());
    let bus: Arc<dyn EventBus> = Arc::new(MemoryEventBus::new());
    let a = cached(kv.clone(), bus.clone()).await;
    let b = cached(kv, bus).await;
    concurrent_monotonic_reads(a, b, "monotonic").await;
}

#[tokio::test(start_paused = true)]
async fn cached_values_expire_with_the_store() {
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKvStore::new());
    let bus: Arc<dyn EventBus> = Arc::new(MemoryEventBus::new());
    let a = cached(kv, bus).await;
    a.store(
        "n",
        "k",
        &json!(1),
        StoreOptions::ttl(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    assert_eq!(a.retrieve("n", "k").await.unwrap().ttl_remaining, Some(5));
    tokio::time::advance(Duration::from_millis(2500)).await;
    // A hit: the remaining time comes from the cached deadline.
    let got = a.retrieve("n", "k").await.unwrap();
    assert_eq!(got.ttl_remaining, Some(3));
    tokio::time::advance(Duration::from_millis(2500)).await;
    assert!(a.retrieve("n", "k").await.is_err());
    let stats = a.stats("n").await.unwrap();
    assert_eq!((stats.hits, stats.misses), (1, 2));
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use mcp_backends::redis::{RedisEventBus, RedisKvStore};
    use mcp_backends::testing::{server_url, unique_prefix};

    async fn pair(url: &str) -> (Arc<MemoryService>, Arc<MemoryService>) {
        let mut instances = Vec::new();
        for _ in 0..2 {
            // Separate connections, as two processes would have.
            let kv: Arc<dyn KvStore> = Arc::new(RedisKvStore::connect(url).await.unwrap());
            let bus: Arc<dyn EventBus> = Arc::new(RedisEventBus::connect(url).await.unwrap());
            instances.push(cached(kv, bus).await);
        }
        let b = instances.pop().unwrap();
        let a = instances.pop().unwrap();
        (a, b)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_instances_never_read_stale() {
        let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
            return;
        };
        let (a, b) = pair(&url).await;
        let ns = unique_prefix().replace(':', "");
        write_then_read_rounds(&a, &b, &ns, 300).await;
        let stats = b.stats(&ns).await.unwrap();
        assert!(stats.hits > 0, "{stats:?}");
        for key in ["k0", "k1", "k2"] {
            a.delete(&ns, key).await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_concurrent_reads_are_monotonic() {
        let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
            return;
        };
        let (a, b) = pair(&url).await;
        let ns = unique_prefix().replace(':', "");
        concurrent_monotonic_reads(a.clone(), b, &ns).await;
        a.delete(&ns, "counter").await.unwrap();
    }
}
