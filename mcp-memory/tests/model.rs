//! Property test: random store/retrieve/expire/delete/ttl/advance sequences checked against a
//! model, on the in-memory store with a paused clock — one plain instance, and two cached
//! instances sharing one store and event bus (each step runs on either) — and, with the
//! `redis` feature, against Redis in real time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mcp_backends::memory::{MemoryEventBus, MemoryKvStore};
use mcp_core::Error;
use mcp_memory::{MemoryService, StoreOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;
use tokio::time::Instant;

#[derive(Clone, Debug)]
enum Op {
    Store {
        key: u8,
        value: i64,
        ttl: u64,
        if_absent: bool,
    },
    Retrieve {
        key: u8,
    },
    Expire {
        key: u8,
        ttl: Option<u64>,
    },
    Delete {
        key: u8,
    },
    Ttl {
        key: u8,
    },
    Advance {
        ms: u64,
    },
}

/// One step: the operation and which instance runs it.
type Step = (Op, usize);

/// Operations over three keys with TTLs up to `max_ttl` seconds. Clock advances are whole
/// seconds plus one millisecond, so (with fewer than 1000 steps) the paused clock never lands
/// exactly on an expiry instant.
fn steps(max_ttl: u64, max_advance_secs: u64, len: usize) -> impl Strategy<Value = Vec<Step>> {
    let key = 0u8..3;
    let op = prop_oneof![
        3 => (key.clone(), -5i64..5, 0..=max_ttl, any::<bool>()).prop_map(
            |(key, value, ttl, if_absent)| Op::Store { key, value, ttl, if_absent }
        ),
        3 => key.clone().prop_map(|key| Op::Retrieve { key }),
        1 => (key.clone(), proptest::option::of(0..=max_ttl))
            .prop_map(|(key, ttl)| Op::Expire { key, ttl }),
        1 => key.clone().prop_map(|key| Op::Delete { key }),
        1 => key.prop_map(|key| Op::Ttl { key }),
        2 => (0..=max_advance_secs).prop_map(|secs| Op::Advance { ms: secs * 1000 + 1 }),
    ];
    proptest::collection::vec((op, 0usize..2), 1..len)
}

/// What the model knows about a value: its content and the window in which it expires (a
/// point on the paused clock; the span of the write's round trip in real time).
#[derive(Clone, Copy, Debug)]
struct Entry {
    value: i64,
    expires: Option<(Instant, Instant)>,
}

#[derive(Debug, PartialEq)]
enum Live {
    Yes,
    No,
    Unknown,
}

/// Liveness of `entry` for an operation that ran between `start` and `end`.
fn live(entry: Option<&Entry>, start: Instant, end: Instant) -> Live {
    match entry {
        None => Live::No,
        Some(Entry { expires: None, .. }) => Live::Yes,
        Some(Entry {
            expires: Some((earliest, latest)),
            ..
        }) => {
            if end < *earliest {
                Live::Yes
            } else if start >= *latest {
                Live::No
            } else {
                Live::Unknown
            }
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Bounds on the seconds-remaining a live `entry` may report between `start` and `end`.
fn ttl_bounds(entry: &Entry, start: Instant, end: Instant) -> Option<(u64, u64)> {
    entry.expires.map(|(earliest, latest)| {
        // The L1 cache may shave one millisecond off to stay below the stored expiry.
        let low = earliest
            .saturating_duration_since(end)
            .saturating_sub(Duration::from_millis(1));
        (
            ceil_secs(low),
            ceil_secs(latest.saturating_duration_since(start)),
        )
    })
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if ok {
        Ok(())
    } else {
        Err(TestCaseError::fail(what()))
    }
}

/// Runs `steps` on `services` (step `i` on `services[on % len]`) in `namespace`, checking
/// every answer against the model. `paused` selects how `Advance` moves the clock.
async fn run_model(
    services: &[Arc<MemoryService>],
    namespace: &str,
    steps: Vec<Step>,
    paused: bool,
) -> Result<(), TestCaseError> {
    let mut model: HashMap<u8, Entry> = HashMap::new();
    for (index, (op, on)) in steps.into_iter().enumerate() {
        let memory = &services[on % services.len()];
        let ctx = || format!("step {index} ({op:?}) on instance {on}, model {model:?}");
        let start = Instant::now();
        match op {
            Op::Advance { ms } => {
                if paused {
                    tokio::time::advance(Duration::from_millis(ms)).await;
                } else {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
            }
            Op::Store {
                key,
                value,
                ttl,
                if_absent,
            } => {
                let options = StoreOptions {
                    ttl: Some(Duration::from_secs(ttl)),
                    if_absent,
                };
                let result = memory
                    .store(namespace, &key.to_string(), &json!(value), options)
                    .await;
                let end = Instant::now();
                let state = live(model.get(&key), start, end);
                match result {
                    Ok(stored) => {
                        check(!(if_absent && state == Live::Yes), || {
                            format!("if_absent store over a live value succeeded: {}", ctx())
                        })?;
                        check(stored.ttl == ttl, ctx)?;
                        let expires = (ttl > 0).then(|| {
                            let ttl = Duration::from_secs(ttl);
                            (start + ttl, end + ttl)
                        });
                        model.insert(key, Entry { value, expires });
                    }
                    Err(Error::Conflict(_)) => check(if_absent && state != Live::No, || {
                        format!("unexpected conflict: {}", ctx())
                    })?,
                    Err(err) => return Err(TestCaseError::fail(format!("{err}: {}", ctx()))),
                }
            }
            Op::Retrieve { key } => {
                let result = memory.retrieve(namespace, &key.to_string()).await;
                let end = Instant::now();
                let entry = model.get(&key).copied();
                let state = live(entry.as_ref(), start, end);
                match result {
                    Ok(got) => {
                        let entry = entry.ok_or_else(|| TestCaseError::fail(ctx()))?;
                        check(state != Live::No, || {
                            format!("retrieved a dead value: {}", ctx())
                        })?;
                        check(got.value == json!(entry.value), || {
                            format!("stale or wrong value {}: {}", got.value, ctx())
                        })?;
                        match (ttl_bounds(&entry, start, end), got.ttl_remaining) {
                            (None, None) => {}
                            (Some((low, high)), Some(secs)) => {
                                check(low <= secs && secs <= high, || {
                                    format!("ttl_remaining {secs} not in {low}..={high}: {}", ctx())
                                })?
                            }
                            (bounds, got) => {
                                return Err(TestCaseError::fail(format!(
                                    "ttl_remaining {got:?} vs {bounds:?}: {}",
                                    ctx()
                                )))
                            }
                        }
                    }
                    Err(Error::NotFound(_)) => {
                        check(state != Live::Yes, || {
                            format!("lost a live value: {}", ctx())
                        })?;
                        model.remove(&key);
                    }
                    Err(err) => return Err(TestCaseError::fail(format!("{err}: {}", ctx()))),
                }
            }
            Op::Expire { key, ttl } => {
                let result = memory
                    .expire(namespace, &key.to_string(), ttl.map(Duration::from_secs))
                    .await
                    .map_err(|err| TestCaseError::fail(format!("{err}: {}", ctx())))?;
                let end = Instant::now();
                let state = live(model.get(&key), start, end);
                check(
                    state == Live::Unknown || result.expired == (state == Live::Yes),
                    || format!("expire said {}: {}", result.expired, ctx()),
                )?;
                match (result.expired, ttl) {
                    (true, Some(ttl)) if ttl > 0 => {
                        let ttl = Duration::from_secs(ttl);
                        if let Some(entry) = model.get_mut(&key) {
                            entry.expires = Some((start + ttl, end + ttl));
                        }
                    }
                    _ => {
                        model.remove(&key);
                    }
                }
            }
            Op::Delete { key } => {
                let result = memory
                    .delete(namespace, &key.to_string())
                    .await
                    .map_err(|err| TestCaseError::fail(format!("{err}: {}", ctx())))?;
                let end = Instant::now();
                let state = live(model.get(&key), start, end);
                check(
                    state == Live::Unknown || result.deleted == (state == Live::Yes),
                    || format!("delete said {}: {}", result.deleted, ctx()),
                )?;
                model.remove(&key);
            }
            Op::Ttl { key } => {
                let result = memory
                    .ttl(namespace, &key.to_string())
                    .await
                    .map_err(|err| TestCaseError::fail(format!("{err}: {}", ctx())))?;
                let end = Instant::now();
                let entry = model.get(&key).copied();
                let state = live(entry.as_ref(), start, end);
                check(
                    state == Live::Unknown || result.exists == (state == Live::Yes),
                    || format!("ttl said {result:?}: {}", ctx()),
                )?;
                match (result.exists, entry) {
                    (false, _) => {
                        model.remove(&key);
                    }
                    (true, Some(entry)) => match (ttl_bounds(&entry, start, end), result.ttl) {
                        (None, None) => {}
                        (Some((low, high)), Some(secs)) if low <= secs && secs <= high => {}
                        (bounds, got) => {
                            return Err(TestCaseError::fail(format!(
                                "ttl {got:?} vs {bounds:?}: {}",
                                ctx()
                            )))
                        }
                    },
                    (true, None) => return Err(TestCaseError::fail(ctx())),
                }
            }
        }
    }
    Ok(())
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn matches_the_model_in_memory() {
    let runtime = paused_runtime();
    let mut runner = TestRunner::new(Config::with_cases(256));
    runner
        .run(&steps(4, 3, 40), |steps| {
            runtime.block_on(async {
                let memory = Arc::new(MemoryService::new(Arc::new(MemoryKvStore::new())));
                run_model(&[memory], "model", steps, true).await
            })
        })
        .unwrap();
}

#[test]
fn two_cached_instances_match_the_model_in_memory() {
    let runtime = paused_runtime();
    let mut runner = TestRunner::new(Config::with_cases(256));
    runner
        .run(&steps(4, 3, 40), |steps| {
            runtime.block_on(async {
                let kv = Arc::new(MemoryKvStore::new());
                let bus = Arc::new(MemoryEventBus::new());
                let mut services = Vec::new();
                for _ in 0..2 {
                    let memory = MemoryService::builder(kv.clone())
                        .cache(1 << 20)
                        .events(bus.clone())
                        .build()
                        .await
                        .map_err(|err| TestCaseError::fail(err.to_string()))?;
                    services.push(Arc::new(memory));
                }
                run_model(&services, "model", steps, true).await
            })
        })
        .unwrap();
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use mcp_backends::redis::{RedisEventBus, RedisKvStore};
    use mcp_backends::testing::{server_url, unique_prefix};

    /// Real time, short TTLs, few cases: each case sleeps for up to a few seconds.
    #[test]
    fn matches_the_model_on_redis() {
        let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
            return;
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let services = runtime.block_on(async {
            let kv = Arc::new(RedisKvStore::connect(&url).await.unwrap());
            let bus = Arc::new(RedisEventBus::connect(&url).await.unwrap());
            let plain = Arc::new(MemoryService::new(kv.clone()));
            let cached = MemoryService::builder(kv)
                .cache(1 << 20)
                .events(bus)
                .build()
                .await
                .unwrap();
            vec![plain, Arc::new(cached)]
        });
        let mut runner = TestRunner::new(Config::with_cases(16));
        runner
            .run(&steps(2, 1, 14), |steps| {
                let namespace = unique_prefix().replace(':', "");
                runtime.block_on(run_model(&services, &namespace, steps, false))
            })
            .unwrap();
    }
}
