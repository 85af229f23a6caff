//! Conformance suite for [`KvStore`].

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::sleep;

use super::unique_prefix;
use crate::kv::{KeyTtl, KvStore, SetOptions, MAX_KEY_BYTES};
use crate::Error;

fn ttl(ms: u64) -> SetOptions {
    SetOptions {
        ttl: Some(Duration::from_millis(ms)),
        if_absent: false,
    }
}

/// Runs every KvStore check.
pub async fn run_all(store: &dyn KvStore) {
    set_get_delete(store).await;
    odd_keys_and_values(store).await;
    if_absent(store).await;
    ttl_and_expiry(store).await;
    get_many(store).await;
    scan_with_cursor(store).await;
    invalid_input(store).await;
}

/// Basic round trips: set, get, overwrite, delete.
pub async fn set_get_delete(store: &dyn KvStore) {
    let p = unique_prefix();
    let key = format!("{p}a");
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert!(store
        .set(&key, b"one".to_vec(), SetOptions::default())
        .await
        .unwrap());
    assert_eq!(store.get(&key).await.unwrap(), Some(b"one".to_vec()));
    assert!(store
        .set(&key, b"two".to_vec(), SetOptions::default())
        .await
        .unwrap());
    assert_eq!(store.get(&key).await.unwrap(), Some(b"two".to_vec()));
    assert_eq!(store.ttl(&key).await.unwrap(), KeyTtl::Persistent);
    assert!(store.delete(&key).await.unwrap());
    assert!(!store.delete(&key).await.unwrap());
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert_eq!(store.ttl(&key).await.unwrap(), KeyTtl::Missing);
    store.ping().await.unwrap();
}

/// Keys with glob metacharacters, spaces and unicode; binary and empty values.
pub async fn odd_keys_and_values(store: &dyn KvStore) {
    let p = unique_prefix();
    let values: [&[u8]; 3] = [b"", &[0, 159, 146, 150, 255], b"plain"];
    let keys = ["with space", "glob*?[x]\\", "ключ:値", "a:b:c"];
    for (i, suffix) in keys.iter().enumerate() {
        let key = format!("{p}{suffix}");
        let value = values[i % values.len()].to_vec();
        store
            .set(&key, value.clone(), SetOptions::default())
            .await
            .unwrap();
        assert_eq!(store.get(&key).await.unwrap(), Some(value), "key {key:?}");
    }
    // A literal key with metacharacters is found by an escaped pattern, and only it.
    let page = store
        .scan(
            &format!("{}*", crate::glob::escape(&format!("{p}glob*"))),
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(page.keys, vec![format!("{p}glob*?[x]\\")]);
    for suffix in keys {
        store.delete(&format!("{p}{suffix}")).await.unwrap();
    }
}

/// `if_absent` refuses over a live value and succeeds over an expired one.
pub async fn if_absent(store: &dyn KvStore) {
    let p = unique_prefix();
    let key = format!("{p}k");
    let absent = SetOptions {
        ttl: None,
        if_absent: true,
    };
    assert!(store.set(&key, b"first".to_vec(), absent).await.unwrap());
    assert!(!store.set(&key, b"second".to_vec(), absent).await.unwrap());
    assert_eq!(store.get(&key).await.unwrap(), Some(b"first".to_vec()));

    let short = format!("{p}short");
    store.set(&short, b"old".to_vec(), ttl(200)).await.unwrap();
    sleep(Duration::from_millis(500)).await;
    assert!(store.set(&short, b"new".to_vec(), absent).await.unwrap());
    assert_eq!(store.get(&short).await.unwrap(), Some(b"new".to_vec()));
    store.delete(&key).await.unwrap();
    store.delete(&short).await.unwrap();
}

/// TTLs: set with TTL, expire, persist, zero-TTL expire deletes, expired keys are invisible.
pub async fn ttl_and_expiry(store: &dyn KvStore) {
    let p = unique_prefix();
    let key = format!("{p}t");
    store.set(&key, b"v".to_vec(), ttl(10_000)).await.unwrap();
    match store.ttl(&key).await.unwrap() {
        KeyTtl::Expires(left) => {
            assert!(left <= Duration::from_secs(10) && left > Duration::from_secs(8))
        }
        other => panic!("expected a TTL, got {other:?}"),
    }
    // set without TTL makes the key persistent again.
    store
        .set(&key, b"v2".to_vec(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(store.ttl(&key).await.unwrap(), KeyTtl::Persistent);
    assert!(store.expire(&key, Duration::from_secs(100)).await.unwrap());
    assert!(matches!(store.ttl(&key).await.unwrap(), KeyTtl::Expires(_)));
    assert!(store.persist(&key).await.unwrap());
    assert_eq!(store.ttl(&key).await.unwrap(), KeyTtl::Persistent);
    assert!(store.expire(&key, Duration::ZERO).await.unwrap());
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert!(!store.expire(&key, Duration::from_secs(1)).await.unwrap());
    assert!(!store.persist(&key).await.unwrap());

    let short = format!("{p}short");
    store.set(&short, b"v".to_vec(), ttl(300)).await.unwrap();
    assert_eq!(store.get(&short).await.unwrap(), Some(b"v".to_vec()));
    sleep(Duration::from_millis(700)).await;
    assert_eq!(store.get(&short).await.unwrap(), None);
    assert_eq!(
        store.get_many(std::slice::from_ref(&short)).await.unwrap(),
        vec![None]
    );
    assert_eq!(store.ttl(&short).await.unwrap(), KeyTtl::Missing);
    assert!(!store.delete(&short).await.unwrap());
    let page = store.scan(&format!("{p}*"), None, 100).await.unwrap();
    assert!(!page.keys.contains(&short), "expired key listed by scan");
}

/// `get_many` keeps order and reports misses.
pub async fn get_many(store: &dyn KvStore) {
    let p = unique_prefix();
    let keys: Vec<String> = ["x", "missing", "y"]
        .iter()
        .map(|k| format!("{p}{k}"))
        .collect();
    store
        .set(&keys[0], b"1".to_vec(), SetOptions::default())
        .await
        .unwrap();
    store
        .set(&keys[2], b"3".to_vec(), SetOptions::default())
        .await
        .unwrap();
    assert_eq!(
        store.get_many(&keys).await.unwrap(),
        vec![Some(b"1".to_vec()), None, Some(b"3".to_vec())]
    );
    assert_eq!(
        store.get_many(&[]).await.unwrap(),
        Vec::<Option<Vec<u8>>>::new()
    );
    store.delete(&keys[0]).await.unwrap();
    store.delete(&keys[2]).await.unwrap();
}

/// Scans page through every matching key exactly as the glob says, and nothing else.
pub async fn scan_with_cursor(store: &dyn KvStore) {
    let p = unique_prefix();
    let mut expected = BTreeSet::new();
    for i in 0..57 {
        let key = format!("{p}user:{i}");
        store
            .set(&key, vec![i as u8], SetOptions::default())
            .await
            .unwrap();
        expected.insert(key);
    }
    for i in 0..5 {
        store
            .set(
                &format!("{p}other:{i}"),
                b"o".to_vec(),
                SetOptions::default(),
            )
            .await
            .unwrap();
    }
    let pattern = format!("{p}user:*");
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let page = store.scan(&pattern, cursor.as_deref(), 10).await.unwrap();
        seen.extend(page.keys);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert!(cursor.is_none(), "scan did not finish");
    assert_eq!(seen, expected);

    let single = store
        .scan(&format!("{p}user:1?"), None, 1000)
        .await
        .unwrap();
    let mut all = BTreeSet::from_iter(single.keys);
    let mut cursor = single.next_cursor;
    while let Some(c) = cursor {
        let page = store
            .scan(&format!("{p}user:1?"), Some(&c), 1000)
            .await
            .unwrap();
        all.extend(page.keys);
        cursor = page.next_cursor;
    }
    assert_eq!(all, (10..20).map(|i| format!("{p}user:{i}")).collect());

    for key in expected {
        store.delete(&key).await.unwrap();
    }
    for i in 0..5 {
        store.delete(&format!("{p}other:{i}")).await.unwrap();
    }
}

/// Empty and oversize keys and zero TTLs are refused with `InvalidArgument`, storing nothing.
pub async fn invalid_input(store: &dyn KvStore) {
    let p = unique_prefix();
    let err = store
        .set("", b"v".to_vec(), SetOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let long = format!("{p}{}", "k".repeat(MAX_KEY_BYTES));
    let err = store
        .set(&long, b"v".to_vec(), SetOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let key = format!("{p}zero");
    let err = store.set(&key, b"v".to_vec(), ttl(0)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(store.get(&key).await.unwrap(), None);
}
