//! Property test: random operation sequences on `MemoryKvStore` under a paused clock give the
//! same observable results as a plain model (a map of value and deadline in milliseconds).

use std::collections::HashMap;
use std::time::Duration;

use mcp_backends::memory::MemoryKvStore;
use mcp_backends::{KeyTtl, KvStore, SetOptions};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Set {
        key: u8,
        value: u8,
        ttl_ms: Option<u64>,
        if_absent: bool,
    },
    Get {
        key: u8,
    },
    Delete {
        key: u8,
    },
    Expire {
        key: u8,
        ttl_ms: u64,
    },
    Persist {
        key: u8,
    },
    Ttl {
        key: u8,
    },
    Scan,
    Advance {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..4;
    prop_oneof![
        (
            key.clone(),
            any::<u8>(),
            prop::option::of(1u64..500),
            any::<bool>()
        )
            .prop_map(|(key, value, ttl_ms, if_absent)| Op::Set {
                key,
                value,
                ttl_ms,
                if_absent
            }),
        key.clone().prop_map(|key| Op::Get { key }),
        key.clone().prop_map(|key| Op::Delete { key }),
        (key.clone(), 0u64..500).prop_map(|(key, ttl_ms)| Op::Expire { key, ttl_ms }),
        key.clone().prop_map(|key| Op::Persist { key }),
        key.prop_map(|key| Op::Ttl { key }),
        Just(Op::Scan),
        (0u64..400).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// The model: key -> (value, absolute deadline in ms).
#[derive(Default)]
struct Model {
    now: u64,
    entries: HashMap<String, (Vec<u8>, Option<u64>)>,
}

impl Model {
    fn live(&mut self, key: &str) -> Option<&mut (Vec<u8>, Option<u64>)> {
        let now = self.now;
        if self
            .entries
            .get(key)
            .is_some_and(|(_, d)| d.is_some_and(|d| d <= now))
        {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }
}

fn name(key: u8) -> String {
    format!("k{key}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn memory_kv_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = MemoryKvStore::new();
            let mut model = Model::default();
            for op in ops {
                match op {
                    Op::Set { key, value, ttl_ms, if_absent } => {
                        let options = SetOptions { ttl: ttl_ms.map(Duration::from_millis), if_absent };
                        let stored = store.set(&name(key), vec![value], options).await.unwrap();
                        let expected = !(if_absent && model.live(&name(key)).is_some());
                        if expected {
                            let deadline = ttl_ms.map(|t| model.now + t);
                            model.entries.insert(name(key), (vec![value], deadline));
                        }
                        prop_assert_eq!(stored, expected);
                    }
                    Op::Get { key } => {
                        let expected = model.live(&name(key)).map(|(v, _)| v.clone());
                        prop_assert_eq!(store.get(&name(key)).await.unwrap(), expected);
                    }
                    Op::Delete { key } => {
                        let expected = model.live(&name(key)).is_some();
                        model.entries.remove(&name(key));
                        prop_assert_eq!(store.delete(&name(key)).await.unwrap(), expected);
                    }
                    Op::Expire { key, ttl_ms } => {
                        let now = model.now;
                        let expected = match model.live(&name(key)) {
                            Some(entry) => {
                                entry.1 = Some(now + ttl_ms);
                                true
                            }
                            None => false,
                        };
                        if ttl_ms == 0 {
                            model.entries.remove(&name(key));
                        }
                        prop_assert_eq!(store.expire(&name(key), Duration::from_millis(ttl_ms)).await.unwrap(), expected);
                    }
                    Op::Persist { key } => {
                        let expected = match model.live(&name(key)) {
                            Some(entry) => {
                                entry.1 = None;
                                true
                            }
                            None => false,
                        };
                        prop_assert_eq!(store.persist(&name(key)).await.unwrap(), expected);
                    }
                    Op::Ttl { key } => {
                        let now = model.now;
                        let expected = match model.live(&name(key)) {
                            None => KeyTtl::Missing,
                            Some((_, None)) => KeyTtl::Persistent,
                            Some((_, Some(deadline))) => KeyTtl::Expires(Duration::from_millis(*deadline - now)),
                        };
                        prop_assert_eq!(store.ttl(&name(key)).await.unwrap(), expected);
                    }
                    Op::Scan => {
                        let mut expected: Vec<String> = (0..4u8)
                            .map(name)
                            .filter(|k| model.live(k).is_some())
                            .collect();
                        expected.sort();
                        let mut keys = Vec::new();
                        let mut cursor: Option<String> = None;
                        loop {
                            let page = store.scan("k*", cursor.as_deref(), 2).await.unwrap();
                            keys.extend(page.keys);
                            cursor = page.next_cursor;
                            if cursor.is_none() { break; }
                        }
                        keys.sort();
                        prop_assert_eq!(keys, expected);
                    }
                    Op::Advance { ms } => {
                        tokio::time::advance(Duration::from_millis(ms)).await;
                        model.now += ms;
                    }
                }
            }
            Ok(())
        })?;
    }
}
