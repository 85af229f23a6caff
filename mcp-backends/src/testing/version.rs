//! Conformance suite for [`VersionStore`].

use futures::future::join_all;

use super::unique_prefix;
use crate::version::{content_hash, Expect, VersionStore};
use crate::Error;

/// Runs every VersionStore check.
pub async fn run_all(store: &dyn VersionStore) {
    blobs(store).await;
    history(store).await;
    preconditions(store).await;
    concurrent_records(store).await;
}

/// Blobs round-trip, are named by their hash and deduplicate.
pub async fn blobs(store: &dyn VersionStore) {
    let content = format!("{} content", unique_prefix()).into_bytes();
    let hash = store.put_blob(&content).await.unwrap();
    assert_eq!(hash, content_hash(&content));
    assert_eq!(store.put_blob(&content).await.unwrap(), hash);
    assert_eq!(store.get_blob(&hash).await.unwrap(), Some(content));
    assert_eq!(
        store
            .get_blob(&content_hash(b"never stored?"))
            .await
            .unwrap(),
        None
    );
    store.ping().await.unwrap();
}

/// Versions count 1, 2, 3 with tombstones, and history pages newest first.
pub async fn history(store: &dyn VersionStore) {
    let path = format!("{}dir/file.txt", unique_prefix());
    let mut hashes = Vec::new();
    for i in 0..5 {
        let hash = store
            .put_blob(format!("{path} v{i}").as_bytes())
            .await
            .unwrap();
        let info = store.record(&path, Some(&hash), Expect::Any).await.unwrap();
        assert_eq!(info.version, i + 1);
        assert_eq!(info.hash.as_deref(), Some(hash.as_str()));
        assert_eq!(info.size, format!("{path} v{i}").len() as u64);
        hashes.push(hash);
    }
    let tomb = store.record(&path, None, Expect::Version(5)).await.unwrap();
    assert!(tomb.is_tombstone());
    assert_eq!((tomb.version, tomb.size), (6, 0));
    assert_eq!(store.latest(&path).await.unwrap(), Some(tomb.clone()));
    assert_eq!(
        store.get(&path, 2).await.unwrap().unwrap().hash.as_deref(),
        Some(hashes[1].as_str())
    );
    assert_eq!(store.get(&path, 7).await.unwrap(), None);
    assert_eq!(store.get(&path, 0).await.unwrap(), None);

    let page: Vec<u64> = store
        .history(&path, None, 4)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(page, [6, 5, 4, 3]);
    let rest: Vec<u64> = store
        .history(&path, Some(3), 10)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(rest, [2, 1]);
    assert!(store
        .history(&format!("{path}.none"), None, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.latest(&format!("{path}.none")).await.unwrap(), None);

    // After a tombstone the path counts as absent again.
    let again = store
        .record(&path, Some(&hashes[0]), Expect::Absent)
        .await
        .unwrap();
    assert_eq!(again.version, 7);
}

/// Failed preconditions and missing blobs change nothing.
pub async fn preconditions(store: &dyn VersionStore) {
    let path = format!("{}p", unique_prefix());
    let hash = store.put_blob(path.as_bytes()).await.unwrap();
    store
        .record(&path, Some(&hash), Expect::Absent)
        .await
        .unwrap();
    assert!(matches!(
        store.record(&path, Some(&hash), Expect::Absent).await,
        Err(Error::Precondition(_))
    ));
    assert!(matches!(
        store.record(&path, Some(&hash), Expect::Version(7)).await,
        Err(Error::Precondition(_))
    ));
    assert!(matches!(
        store
            .record(&format!("{path}.new"), Some(&hash), Expect::Version(1))
            .await,
        Err(Error::Precondition(_))
    ));
    assert!(matches!(
        store
            .record(&path, Some(&content_hash(b"missing blob")), Expect::Any)
            .await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.latest(&path).await.unwrap().unwrap().version, 1);
    assert_eq!(store.history(&path, None, 10).await.unwrap().len(), 1);
}

/// Concurrent records expecting the same version: exactly one wins, no gaps.
pub async fn concurrent_records(store: &dyn VersionStore) {
    let path = format!("{}race", unique_prefix());
    let hash = store.put_blob(path.as_bytes()).await.unwrap();
    store.record(&path, Some(&hash), Expect::Any).await.unwrap();
    for round in 1..=3u64 {
        let attempts = (0..16).map(|_| store.record(&path, Some(&hash), Expect::Version(round)));
        let results = join_all(attempts).await;
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}");
        assert!(results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(Error::Precondition(_)))));
    }
    let versions: Vec<u64> = store
        .history(&path, None, 100)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, [4, 3, 2, 1]);
}
