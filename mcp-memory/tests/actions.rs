//! Every memory action through `Registry::call` (JSON) and the typed methods, on the
//! in-memory store with a paused clock.

use std::sync::Arc;
use std::time::Duration;

use mcp_backends::memory::MemoryKvStore;
use mcp_core::{Error, Registry, RequestContext};
use mcp_memory::{MemoryConfig, MemoryService, SearchQuery, StoreOptions};
use serde_json::{json, Value};

fn service() -> Arc<MemoryService> {
    Arc::new(MemoryService::new(Arc::new(MemoryKvStore::new())))
}

fn registry(memory: Arc<MemoryService>) -> Registry {
    Registry::builder().service(memory).build().unwrap()
}

async fn call(reg: &Registry, action: &str, params: Value) -> mcp_core::Result<Value> {
    reg.call("memory", action, params, &RequestContext::local())
        .await
        .and_then(|output| output.to_value())
}

#[tokio::test(start_paused = true)]
async fn store_and_retrieve_over_json() {
    let reg = registry(service());
    let stored = call(&reg, "store", json!({"key": "k", "value": {"a": [1, 2]}}))
        .await
        .unwrap();
    assert_eq!(stored, json!({"status": "stored", "key": "k", "ttl": 3600}));
    let got = call(&reg, "retrieve", json!({"key": "k"})).await.unwrap();
    assert_eq!(got, json!({"value": {"a": [1, 2]}, "ttl_remaining": 3600}));

    // Any JSON value, including null and scalars.
    for value in [
        json!(null),
        json!(1.5),
        json!("text"),
        json!([]),
        json!(true),
    ] {
        call(&reg, "store", json!({"key": "v", "value": value}))
            .await
            .unwrap();
        let got = call(&reg, "retrieve", json!({"key": "v"})).await.unwrap();
        assert_eq!(got["value"], value);
    }
}

#[tokio::test(start_paused = true)]
async fn ttl_counts_down_and_expires() {
    let reg = registry(service());
    call(&reg, "store", json!({"key": "k", "value": 1, "ttl": 10}))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_millis(8_500)).await;
    let got = call(&reg, "retrieve", json!({"key": "k"})).await.unwrap();
    assert_eq!(got["ttl_remaining"], 2);
    assert_eq!(
        call(&reg, "ttl", json!({"key": "k"})).await.unwrap(),
        json!({"ttl": 2, "exists": true})
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    let err = call(&reg, "retrieve", json!({"key": "k"}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(
        call(&reg, "ttl", json!({"key": "k"})).await.unwrap(),
        json!({"ttl": null, "exists": false})
    );
}

#[tokio::test(start_paused = true)]
async fn zero_ttl_never_expires() {
    let reg = registry(service());
    let stored = call(&reg, "store", json!({"key": "k", "value": 1, "ttl": 0}))
        .await
        .unwrap();
    assert_eq!(stored["ttl"], 0);
    tokio::time::advance(Duration::from_secs(100 * 24 * 3600)).await;
    assert_eq!(
        call(&reg, "retrieve", json!({"key": "k"})).await.unwrap(),
        json!({"value": 1, "ttl_remaining": null})
    );
    assert_eq!(
        call(&reg, "ttl", json!({"key": "k"})).await.unwrap(),
        json!({"ttl": null, "exists": true})
    );
}

#[tokio::test(start_paused = true)]
async fn if_absent_conflicts_only_with_a_live_value() {
    let reg = registry(service());
    let first = json!({"key": "k", "value": 1, "ttl": 5, "if_absent": true});
    call(&reg, "store", first.clone()).await.unwrap();
    let err = call(
        &reg,
        "store",
        json!({"key": "k", "value": 2, "if_absent": true}),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(
        call(&reg, "retrieve", json!({"key": "k"})).await.unwrap()["value"],
        1
    );
    tokio::time::advance(Duration::from_secs(6)).await;
    call(
        &reg,
        "store",
        json!({"key": "k", "value": 3, "if_absent": true}),
    )
    .await
    .unwrap();
    assert_eq!(
        call(&reg, "retrieve", json!({"key": "k"})).await.unwrap()["value"],
        3
    );
    // Without if_absent, a store overwrites.
    call(&reg, "store", json!({"key": "k", "value": 4}))
        .await
        .unwrap();
    assert_eq!(
        call(&reg, "retrieve", json!({"key": "k"})).await.unwrap()["value"],
        4
    );
}

#[tokio::test(start_paused = true)]
async fn retrieve_many_reports_missing_keys() {
    let reg = registry(service());
    call(&reg, "store", json!({"key": "a", "value": 1}))
        .await
        .unwrap();
    call(&reg, "store", json!({"key": "b", "value": "two"}))
        .await
        .unwrap();
    let got = call(&reg, "retrieve_many", json!({"keys": ["a", "x", "b", "y"]}))
        .await
        .unwrap();
    assert_eq!(
        got,
        json!({"values": {"a": 1, "b": "two"}, "missing": ["x", "y"]})
    );
    let empty = call(&reg, "retrieve_many", json!({"keys": []}))
        .await
        .unwrap();
    assert_eq!(empty, json!({"values": {}, "missing": []}));
}

#[tokio::test(start_paused = true)]
async fn search_pages_through_matching_keys() {
    let reg = registry(service());
    for i in 0..25 {
        call(
            &reg,
            "store",
            json!({"key": format!("user:{i}"), "value": i}),
        )
        .await
        .unwrap();
    }
    call(&reg, "store", json!({"key": "other", "value": 0}))
        .await
        .unwrap();
    let mut keys = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = call(
            &reg,
            "search",
            json!({"pattern": "user:*", "limit": 10, "cursor": cursor}),
        )
        .await
        .unwrap();
        assert!(page.get("values").is_none());
        keys.extend(
            page["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_owned()),
        );
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 25);
    assert!(keys.iter().all(|k| k.starts_with("user:")));

    let page = call(
        &reg,
        "search",
        json!({"pattern": "user:1?", "with_values": true, "limit": 1000}),
    )
    .await
    .unwrap();
    let mut found: Vec<&str> = page["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    found.sort();
    assert_eq!(found.len(), 10);
    assert_eq!(page["values"]["user:12"], 12);
}

#[tokio::test(start_paused = true)]
async fn expire_renews_or_removes() {
    let reg = registry(service());
    call(&reg, "store", json!({"key": "k", "value": 1, "ttl": 0}))
        .await
        .unwrap();
    assert_eq!(
        call(&reg, "expire", json!({"key": "k", "ttl": 30}))
            .await
            .unwrap(),
        json!({"expired": true})
    );
    assert_eq!(
        call(&reg, "ttl", json!({"key": "k"})).await.unwrap()["ttl"],
        30
    );
    assert_eq!(
        call(&reg, "expire", json!({"key": "k"})).await.unwrap(),
        json!({"expired": true})
    );
    assert!(call(&reg, "retrieve", json!({"key": "k"})).await.is_err());
    assert_eq!(
        call(&reg, "expire", json!({"key": "k", "ttl": 0}))
            .await
            .unwrap(),
        json!({"expired": false})
    );
}

#[tokio::test(start_paused = true)]
async fn delete_reports_whether_it_removed() {
    let reg = registry(service());
    call(&reg, "store", json!({"key": "k", "value": 1}))
        .await
        .unwrap();
    assert_eq!(
        call(&reg, "delete", json!({"key": "k"})).await.unwrap(),
        json!({"deleted": true})
    );
    assert_eq!(
        call(&reg, "delete", json!({"key": "k"})).await.unwrap(),
        json!({"deleted": false})
    );
    assert!(matches!(
        call(&reg, "retrieve", json!({"key": "k"})).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn stats_count_keys_hits_and_misses() {
    let reg = registry(service());
    let empty = call(&reg, "stats", Value::Null).await.unwrap();
    assert_eq!(
        empty,
        json!({"keys": 0, "keys_capped": false, "hits": 0, "misses": 0, "hit_ratio": 0.0})
    );
    for i in 0..3 {
        call(&reg, "store", json!({"key": format!("k{i}"), "value": i}))
            .await
            .unwrap();
    }
    call(
        &reg,
        "store",
        json!({"key": "elsewhere", "value": 1, "namespace": "b"}),
    )
    .await
    .unwrap();
    call(&reg, "retrieve", json!({"key": "k0"})).await.unwrap();
    call(&reg, "retrieve", json!({"key": "k1"})).await.unwrap();
    call(&reg, "retrieve", json!({"key": "k1"})).await.unwrap();
    call(&reg, "retrieve", json!({"key": "nope"}))
        .await
        .unwrap_err();
    let stats = call(&reg, "stats", json!({})).await.unwrap();
    assert_eq!(stats["keys"], 3);
    assert_eq!(stats["hits"], 3);
    assert_eq!(stats["misses"], 1);
    assert_eq!(stats["hit_ratio"], 0.75);
    assert_eq!(
        call(&reg, "stats", json!({"namespace": "b"}))
            .await
            .unwrap()["keys"],
        1
    );
}

#[tokio::test(start_paused = true)]
async fn stats_key_count_is_bounded() {
    let memory = Arc::new(
        MemoryService::builder(Arc::new(MemoryKvStore::new()))
            .config(MemoryConfig {
                stats_scan_limit: 5,
                ..MemoryConfig::default()
            })
            .build()
            .await
            .unwrap(),
    );
    for i in 0..2500 {
        memory
            .store("n", &format!("k{i}"), &json!(i), StoreOptions::default())
            .await
            .unwrap();
    }
    let stats = memory.stats("n").await.unwrap();
    assert_eq!(stats.keys, 5);
    assert!(stats.keys_capped);
}

#[tokio::test(start_paused = true)]
async fn namespaces_are_isolated() {
    let memory = service();
    let reg = registry(memory.clone());
    let in_a = RequestContext::local().with_namespace("a");
    let in_b = RequestContext::local().with_namespace("b");
    reg.call("memory", "store", json!({"key": "k", "value": "A"}), &in_a)
        .await
        .unwrap();
    reg.call("memory", "store", json!({"key": "k", "value": "B"}), &in_b)
        .await
        .unwrap();
    let got = reg
        .call("memory", "retrieve", json!({"key": "k"}), &in_a)
        .await
        .and_then(|output| output.to_value())
        .unwrap();
    assert_eq!(got["value"], "A");
    // The argument wins over the context; no namespace at all means `default`.
    let got = reg
        .call(
            "memory",
            "retrieve",
            json!({"key": "k", "namespace": "b"}),
            &in_a,
        )
        .await
        .and_then(|output| output.to_value())
        .unwrap();
    assert_eq!(got["value"], "B");
    assert!(call(&reg, "retrieve", json!({"key": "k"})).await.is_err());
    assert_eq!(memory.retrieve("a", "k").await.unwrap().value, "A");

    // Glob metacharacters in a namespace are literal: `a*` does not see `a` or `ab`.
    memory
        .store("ab", "x", &json!(1), StoreOptions::default())
        .await
        .unwrap();
    memory
        .store("a*", "y", &json!(2), StoreOptions::default())
        .await
        .unwrap();
    let all = |ns: &'static str| {
        let memory = memory.clone();
        async move {
            let query = SearchQuery {
                pattern: "*".into(),
                limit: Some(1000),
                ..SearchQuery::default()
            };
            let mut keys = memory.search(ns, query).await.unwrap().keys;
            keys.sort();
            keys
        }
    };
    assert_eq!(all("a*").await, ["y"]);
    assert_eq!(all("a").await, ["k"]);
    assert_eq!(all("ab").await, ["x"]);
    assert_eq!(memory.stats("a*").await.unwrap().keys, 1);

    // Deleting in one namespace leaves the other alone.
    assert!(memory.delete("b", "k").await.unwrap().deleted);
    assert_eq!(memory.retrieve("a", "k").await.unwrap().value, "A");

    for bad in ["", "has:colon", &"n".repeat(129)] {
        let err = memory
            .store(bad, "k", &json!(1), StoreOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad:?}: {err:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn malformed_arguments_are_invalid() {
    let reg = registry(service());
    let cases = [
        ("store", json!({"value": 1})),                        // missing key
        ("store", json!({"key": "k"})),                        // missing value
        ("store", json!({"key": 1, "value": 1})),              // wrong type
        ("store", json!({"key": "k", "value": 1, "ttl": -1})), // negative ttl
        ("store", json!({"key": "k", "value": 1, "ttl": "1"})),
        ("store", json!({"key": "k", "value": 1, "tll": 1})), // unknown field
        ("store", json!({"key": "", "value": 1})),            // empty key
        ("store", json!({"key": "k".repeat(513), "value": 1})),
        (
            "store",
            json!({"key": "k", "value": 1, "ttl": 400_000_000u64}),
        ), // > 10 years
        ("store", json!([1, 2])),
        ("retrieve", json!({})),
        ("retrieve", json!({"key": "k", "extra": true})),
        ("retrieve_many", json!({"keys": "k"})),
        ("search", json!({})),
        ("search", json!({"pattern": "*", "limit": 0})),
        ("search", json!({"pattern": "*", "limit": 1001})),
        ("expire", json!({"key": "k", "ttl": 400_000_000u64})),
        ("delete", json!({"key": ["k"]})),
        ("ttl", json!({"key": null})),
        ("stats", json!({"unknown": 1})),
    ];
    for (action, params) in cases {
        let err = call(&reg, action, params.clone()).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument(_)),
            "{action} {params}: {err:?}"
        );
    }
    // A 10-year TTL is still fine.
    call(
        &reg,
        "store",
        json!({"key": "k", "value": 1, "ttl": 315_360_000u64}),
    )
    .await
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn oversized_values_are_payload_too_large() {
    let reg = registry(service());
    let big = "x".repeat(1024 * 1024);
    let err = call(&reg, "store", json!({"key": "k", "value": big}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge(_)), "{err:?}");
    assert!(call(&reg, "retrieve", json!({"key": "k"})).await.is_err());
    // Just under the limit (the quotes count) is accepted.
    let fits = "x".repeat(1024 * 1024 - 2);
    call(&reg, "store", json!({"key": "k", "value": fits}))
        .await
        .unwrap();

    let small = MemoryService::builder(Arc::new(MemoryKvStore::new()))
        .config(MemoryConfig {
            max_value_bytes: 8,
            ..MemoryConfig::default()
        })
        .build()
        .await
        .unwrap();
    let err = small
        .store("n", "k", &json!("123456789"), StoreOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge(_)), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn typed_methods_match_the_contract() {
    let memory = service();
    let stored = memory
        .store(
            "n",
            "k",
            &json!({"x": 1}),
            StoreOptions::ttl(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert_eq!((stored.status.as_str(), stored.ttl), ("stored", 60));
    let got = memory.retrieve("n", "k").await.unwrap();
    assert_eq!((got.value, got.ttl_remaining), (json!({"x": 1}), Some(60)));
    let err = memory
        .store("n", "k", &json!(2), StoreOptions::persistent().if_absent())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    let many = memory
        .retrieve_many("n", &["k".to_owned(), "z".to_owned()])
        .await
        .unwrap();
    assert_eq!(many.missing, ["z"]);
    assert_eq!(memory.ttl("n", "k").await.unwrap().ttl, Some(60));
    assert!(
        memory
            .expire("n", "k", Some(Duration::from_secs(5)))
            .await
            .unwrap()
            .expired
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(!memory.ttl("n", "k").await.unwrap().exists);
    assert!(!memory.delete("n", "k").await.unwrap().deleted);
    let stats = memory.stats("n").await.unwrap();
    assert_eq!((stats.keys, stats.hits, stats.misses), (0, 2, 1));
}

#[test]
fn actions_carry_schemas_and_annotations() {
    let memory = service();
    let names: Vec<&str> = mcp_core::Service::actions(memory.as_ref())
        .iter()
        .map(|spec| spec.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "store",
            "retrieve",
            "retrieve_many",
            "search",
            "expire",
            "delete",
            "ttl",
            "stats"
        ]
    );
    let spec = |name: &str| {
        mcp_core::Service::actions(memory.as_ref())
            .iter()
            .find(|spec| spec.name == name)
            .unwrap()
            .clone()
    };
    let store = spec("store");
    let mut required: Vec<String> =
        serde_json::from_value(store.params_schema["required"].clone()).unwrap();
    required.sort();
    assert_eq!(required, ["key", "value"]);
    assert_eq!(store.params_schema["additionalProperties"], false);
    assert!(store.annotations.destructive && !store.annotations.read_only);
    assert!(store.result_schema["properties"]["status"].is_object());
    for read in ["retrieve", "retrieve_many", "search", "ttl", "stats"] {
        assert!(spec(read).annotations.read_only, "{read}");
    }
    for destructive in ["delete", "expire"] {
        assert!(spec(destructive).annotations.destructive, "{destructive}");
    }
}
