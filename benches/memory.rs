//! Memory service read throughput against raw baselines measured in the same run.
//!
//! - in memory: typed `retrieve` and JSON `registry.call` vs a raw `moka::future::Cache::get`
//!   of the same values, at 1 and 50 concurrent tasks;
//! - Redis (with `--features redis` and `MCP_TEST_REDIS_URL` set): `retrieve` at 50 tasks,
//!   with and without the L1 cache, vs a raw `GET` over one multiplexed connection.
//!
//! `cargo bench --bench memory` (add `--features redis` for the Redis group). Each benchmark
//! runs 3 s after a 1 s warm-up; results are in BENCHMARKS.md.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use mcp_backends::memory::MemoryKvStore;
use mcp_core::{Registry, RequestContext};
use mcp_memory::{MemoryService, StoreOptions};
use serde_json::{json, Value};
use tokio::runtime::Runtime;

/// Distinct keys read round-robin.
const KEYS: usize = 1000;
/// Reads per task per iteration.
const OPS_PER_TASK: usize = 200;
const NAMESPACE: &str = "bench";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn keys() -> Arc<Vec<String>> {
    Arc::new((0..KEYS).map(|i| format!("key:{i}")).collect())
}

fn value(i: usize) -> Value {
    json!({"user": "alice", "n": i, "tags": ["memory", "bench"], "note": "a short agent memory"})
}

fn configure<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group
}

/// Runs `tasks` concurrent tasks, each calling `op` for `OPS_PER_TASK` keys.
async fn fan_out<F, Fut>(tasks: usize, op: F)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let op = op.clone();
            tokio::spawn(async move {
                for i in 0..OPS_PER_TASK {
                    op((task * 7919 + i) % KEYS).await;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("bench task");
    }
}

fn in_memory(c: &mut Criterion) {
    let rt = runtime();
    let keys = keys();
    let (memory, cached, raw) = rt.block_on(async {
        let memory = Arc::new(MemoryService::new(Arc::new(MemoryKvStore::new())));
        let cached = Arc::new(
            MemoryService::builder(Arc::new(MemoryKvStore::new()))
                .cache(64 << 20)
                .build()
                .await
                .expect("cached service"),
        );
        let raw: moka::future::Cache<String, Value> = moka::future::Cache::new(10_000);
        for (i, key) in keys.iter().enumerate() {
            for service in [&memory, &cached] {
                service
                    .store(NAMESPACE, key, &value(i), StoreOptions::default())
                    .await
                    .expect("store");
            }
            raw.insert(key.clone(), value(i)).await;
        }
        (memory, cached, raw)
    });
    let registry = Registry::builder()
        .service(memory.clone())
        .build()
        .expect("registry");
    let ctx = Arc::new(RequestContext::local().with_namespace(NAMESPACE));

    let mut group = configure(c, "memory/in_memory");
    for tasks in [1usize, 50] {
        group.throughput(Throughput::Elements((tasks * OPS_PER_TASK) as u64));
        group.bench_function(format!("raw_moka_get/{tasks}"), |b| {
            b.to_async(&rt).iter(|| {
                let (raw, keys) = (raw.clone(), keys.clone());
                fan_out(tasks, move |i| {
                    let (raw, keys) = (raw.clone(), keys.clone());
                    async move {
                        let value = raw.get(&keys[i]).await;
                        assert!(value.is_some());
                    }
                })
            })
        });
        group.bench_function(format!("typed_retrieve/{tasks}"), |b| {
            b.to_async(&rt).iter(|| {
                let (memory, keys) = (memory.clone(), keys.clone());
                fan_out(tasks, move |i| {
                    let (memory, keys) = (memory.clone(), keys.clone());
                    async move {
                        memory
                            .retrieve(NAMESPACE, &keys[i])
                            .await
                            .expect("retrieve");
                    }
                })
            })
        });
        group.bench_function(format!("typed_retrieve_l1/{tasks}"), |b| {
            b.to_async(&rt).iter(|| {
                let (cached, keys) = (cached.clone(), keys.clone());
                fan_out(tasks, move |i| {
                    let (cached, keys) = (cached.clone(), keys.clone());
                    async move {
                        cached
                            .retrieve(NAMESPACE, &keys[i])
                            .await
                            .expect("retrieve");
                    }
                })
            })
        });
        group.bench_function(format!("json_registry_call/{tasks}"), |b| {
            b.to_async(&rt).iter(|| {
                let (registry, keys, ctx) = (registry.clone(), keys.clone(), ctx.clone());
                fan_out(tasks, move |i| {
                    let (registry, keys, ctx) = (registry.clone(), keys.clone(), ctx.clone());
                    async move {
                        registry
                            .call("memory", "retrieve", json!({"key": keys[i]}), &ctx)
                            .await
                            .expect("call");
                    }
                })
            })
        });
    }
    group.finish();
}

#[cfg(feature = "redis")]
fn on_redis(c: &mut Criterion) {
    use mcp_backends::redis::{RedisEventBus, RedisKvStore};
    use mcp_backends::{EventBus, KvStore};

    let Ok(url) = std::env::var("MCP_TEST_REDIS_URL") else {
        eprintln!("skipping the Redis benchmarks: MCP_TEST_REDIS_URL is not set");
        return;
    };
    let rt = runtime();
    let keys = keys();
    let (plain, cached, conn) = rt.block_on(async {
        let kv: Arc<dyn KvStore> = Arc::new(RedisKvStore::connect(&url).await.expect("redis kv"));
        let bus: Arc<dyn EventBus> =
            Arc::new(RedisEventBus::connect(&url).await.expect("redis bus"));
        let plain = Arc::new(MemoryService::new(kv.clone()));
        let cached = Arc::new(
            MemoryService::builder(kv)
                .cache(64 << 20)
                .events(bus)
                .build()
                .await
                .expect("cached service"),
        );
        for (i, key) in keys.iter().enumerate() {
            plain
                .store(
                    NAMESPACE,
                    key,
                    &value(i),
                    StoreOptions::ttl(Duration::from_secs(600)),
                )
                .await
                .expect("store");
        }
        let client = redis::Client::open(url.as_str()).expect("redis url");
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection");
        (plain, cached, conn)
    });
    let stored: Arc<Vec<String>> = Arc::new(
        keys.iter()
            .map(|key| format!("mem:{NAMESPACE}:{key}"))
            .collect(),
    );

    let tasks = 50;
    let mut group = configure(c, "memory/redis");
    group.throughput(Throughput::Elements((tasks * OPS_PER_TASK) as u64));
    group.bench_function(format!("raw_redis_get/{tasks}"), |b| {
        b.to_async(&rt).iter(|| {
            let (conn, stored) = (conn.clone(), stored.clone());
            fan_out(tasks, move |i| {
                let (mut conn, stored) = (conn.clone(), stored.clone());
                async move {
                    let value: Option<Vec<u8>> = redis::cmd("GET")
                        .arg(&stored[i])
                        .query_async(&mut conn)
                        .await
                        .expect("GET");
                    assert!(value.is_some());
                }
            })
        })
    });
    for (name, service) in [("retrieve_l1", &cached), ("retrieve_no_cache", &plain)] {
        group.bench_function(format!("{name}/{tasks}"), |b| {
            b.to_async(&rt).iter(|| {
                let (service, keys) = (service.clone(), keys.clone());
                fan_out(tasks, move |i| {
                    let (service, keys) = (service.clone(), keys.clone());
                    async move {
                        service
                            .retrieve(NAMESPACE, &keys[i])
                            .await
                            .expect("retrieve");
                    }
                })
            })
        });
    }
    group.finish();
    rt.block_on(async {
        for key in keys.iter() {
            plain.delete(NAMESPACE, key).await.expect("cleanup");
        }
    });
}

#[cfg(not(feature = "redis"))]
fn on_redis(_c: &mut Criterion) {
    eprintln!("skipping the Redis benchmarks: built without the `redis` feature");
}

criterion_group!(benches, in_memory, on_redis);
criterion_main!(benches);
