//! Property test: random acquire/refresh/release/inspect/advance sequences on
//! `MemoryLockManager` under a paused clock never show two holders, fencing tokens strictly
//! increase per resource, expired leases free the lock, and every result matches a model.

use std::collections::HashMap;
use std::time::Duration;

use mcp_backends::memory::MemoryLockManager;
use mcp_backends::{Error, LockManager};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Acquire {
        resource: u8,
        owner: u8,
        ttl_ms: u64,
    },
    Refresh {
        resource: u8,
        stale: bool,
        ttl_ms: u64,
    },
    Release {
        resource: u8,
        stale: bool,
    },
    Inspect {
        resource: u8,
    },
    Advance {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3, 0u8..3, 1u64..300).prop_map(|(resource, owner, ttl_ms)| Op::Acquire {
            resource,
            owner,
            ttl_ms
        }),
        (0u8..3, any::<bool>(), 1u64..300).prop_map(|(resource, stale, ttl_ms)| Op::Refresh {
            resource,
            stale,
            ttl_ms
        }),
        (0u8..3, any::<bool>()).prop_map(|(resource, stale)| Op::Release { resource, stale }),
        (0u8..3).prop_map(|resource| Op::Inspect { resource }),
        (0u64..200).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// Per resource: last token granted and the live holder (owner, token, deadline ms).
#[derive(Default, Clone)]
struct Slot {
    last_token: u64,
    holder: Option<(u8, u64, u64)>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn memory_locks_match_the_model(ops in prop::collection::vec(op(), 1..80)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let locks = MemoryLockManager::new();
            let mut now = 0u64;
            let mut model: HashMap<u8, Slot> = HashMap::new();
            let name = |r: u8| format!("r{r}");
            for op in ops {
                match op {
                    Op::Acquire { resource, owner, ttl_ms } => {
                        let slot = model.entry(resource).or_default();
                        let live = slot.holder.filter(|(_, _, d)| *d > now);
                        let result = locks.acquire(&name(resource), &format!("o{owner}"), Duration::from_millis(ttl_ms)).await;
                        match live {
                            Some(_) => prop_assert!(matches!(result, Err(Error::Locked(_))), "two holders: {result:?}"),
                            None => {
                                let lease = result.unwrap();
                                prop_assert!(lease.token > slot.last_token, "token did not increase");
                                slot.last_token = lease.token;
                                slot.holder = Some((owner, lease.token, now + ttl_ms));
                            }
                        }
                    }
                    Op::Refresh { resource, stale, ttl_ms } => {
                        let slot = model.entry(resource).or_default();
                        let live = slot.holder.filter(|(_, _, d)| *d > now);
                        let token = slot.last_token + u64::from(stale);
                        let result = locks.refresh(&name(resource), token, Duration::from_millis(ttl_ms)).await;
                        match live {
                            Some((owner, held, _)) if held == token => {
                                prop_assert_eq!(result.unwrap().token, held);
                                slot.holder = Some((owner, held, now + ttl_ms));
                            }
                            _ => prop_assert!(matches!(result, Err(Error::Locked(_)))),
                        }
                    }
                    Op::Release { resource, stale } => {
                        let slot = model.entry(resource).or_default();
                        let live = slot.holder.filter(|(_, _, d)| *d > now);
                        let token = slot.last_token + u64::from(stale);
                        let released = locks.release(&name(resource), token).await.unwrap();
                        let expected = live.is_some_and(|(_, held, _)| held == token);
                        prop_assert_eq!(released, expected);
                        if expected {
                            slot.holder = None;
                        }
                    }
                    Op::Inspect { resource } => {
                        let live = model.get(&resource).and_then(|s| s.holder).filter(|(_, _, d)| *d > now);
                        let seen = locks.inspect(&name(resource)).await.unwrap();
                        prop_assert_eq!(
                            seen.map(|l| (l.owner, l.token, l.expires_in)),
                            live.map(|(o, t, d)| (format!("o{o}"), t, Duration::from_millis(d - now)))
                        );
                    }
                    Op::Advance { ms } => {
                        tokio::time::advance(Duration::from_millis(ms)).await;
                        now += ms;
                    }
                }
            }
            Ok(())
        })?;
    }
}
