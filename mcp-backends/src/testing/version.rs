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
    expect_version_race(store, 32).await;
    concurrent_appends(store, 32).await;
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

/// `tasks` concurrent records of one path, all with `Expect::Version(n)` for the current `n`:
/// exactly one wins and gets `n + 1`, the others fail with `Precondition`, and the history is
/// `1..=n + 1` with no gaps, pointing at the winner's blob.
pub async fn expect_version_race(store: &dyn VersionStore, tasks: usize) {
    let path = format!("{}expect-race", unique_prefix());
    let first = store.put_blob(b"first").await.unwrap();
    store
        .record(&path, Some(&first), Expect::Absent)
        .await
        .unwrap();
    let mut hashes = Vec::with_capacity(tasks);
    for i in 0..tasks {
        hashes.push(
            store
                .put_blob(format!("{path} by {i}").as_bytes())
                .await
                .unwrap(),
        );
    }
    for round in 1..=3u64 {
        let attempts = hashes
            .iter()
            .map(|hash| store.record(&path, Some(hash), Expect::Version(round)));
        let results = join_all(attempts).await;
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
        assert_eq!(winners[0].version, round + 1);
        for result in &results {
            assert!(
                result.is_ok() || matches!(result, Err(Error::Precondition(_))),
                "{result:?}"
            );
        }
        let latest = store.latest(&path).await.unwrap().unwrap();
        assert_eq!(&latest, winners[0]);
    }
    let versions: Vec<u64> = store
        .history(&path, None, 100)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, [4, 3, 2, 1], "no gaps");
}

/// `tasks` concurrent records with `Expect::Any` all succeed, with distinct versions `1..=tasks`.
pub async fn concurrent_appends(store: &dyn VersionStore, tasks: usize) {
    let path = format!("{}appends", unique_prefix());
    let hash = store.put_blob(path.as_bytes()).await.unwrap();
    let results = join_all((0..tasks).map(|_| store.record(&path, Some(&hash), Expect::Any))).await;
    let mut versions: Vec<u64> = results
        .into_iter()
        .map(|result| result.unwrap().version)
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=tasks as u64).collect::<Vec<_>>());
    let history = store.history(&path, None, tasks + 1).await.unwrap();
    assert_eq!(history.len(), tasks);
    assert_eq!(history[0].version, tasks as u64);
}
