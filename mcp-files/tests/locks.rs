//! Leases through the service over the in-memory lock manager: fencing, contention, and
//! grants serialized with token-less writes.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Fixture;
use mcp_core::Error;
use mcp_files::{FilesService, WriteOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_tasks_racing_for_one_lock_never_see_two_holders() {
    let fx = Fixture::new();
    let mut config = fx.config();
    config.watch = true;
    let files = FilesService::in_memory(config).unwrap();
    common::lock_contention(Arc::new(files), 32, 200).await;
}

#[tokio::test]
async fn a_locked_path_needs_the_token() {
    let fx = Fixture::new();
    common::locked_path_needs_the_token(&fx.service(), &fx.root).await;
}

/// What one token-less writer saw: `(sequence before the call, version written)` of every
/// write that succeeded, and the sequence before the call that was refused.
struct WriterLog {
    ok: Vec<(u64, u64)>,
    refused_at: u64,
}

/// Writers hammer a path without a token while a holder takes a lease on it. A token-less
/// write is checked against the lease and then renamed into place; a lease granted between
/// the two would let it land under the lease. Within one instance `lock` waits for the path's
/// write in progress, so at the moment a grant returns, the disk and the history are final:
/// no token-less write changes them afterwards, every successful one has a version up to the
/// one seen at the grant, and every one started after the grant (by a global sequence) is
/// refused with `Locked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_less_write_lands_after_a_lease_is_granted() {
    const ROUNDS: u64 = 150;
    const WRITERS: usize = 3;
    let fx = Fixture::new();
    let mut config = fx.config();
    config.watch = false;
    let files = Arc::new(FilesService::in_memory(config).unwrap());
    let sequence = Arc::new(AtomicU64::new(0));
    for round in 0..ROUNDS {
        let path = format!("contested-{round}.txt");
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let (files, sequence, path) = (files.clone(), sequence.clone(), path.clone());
            writers.push(tokio::spawn(async move {
                let mut ok = Vec::new();
                for i in 0..100_000 {
                    let started = sequence.fetch_add(1, Ordering::SeqCst);
                    let body = format!("writer {writer} write {i}").into_bytes();
                    match files.write(&path, body, WriteOptions::default()).await {
                        Ok(written) => ok.push((started, written.version)),
                        Err(Error::Locked(_)) => {
                            return WriterLog {
                                ok,
                                refused_at: started,
                            }
                        }
                        Err(other) => panic!("{path}: unexpected {other:?}"),
                    }
                }
                panic!("{path}: the lease was never granted");
            }));
        }
        let holder = {
            let (files, sequence, path) = (files.clone(), sequence.clone(), path.clone());
            let root = fx.root.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(100 * (round % 10))).await;
                let lease = files
                    .lock(&path, "holder", Some(Duration::from_secs(60)))
                    .await
                    .unwrap();
                let granted = sequence.fetch_add(1, Ordering::SeqCst);
                let disk = std::fs::read(root.join(&path)).ok();
                let version = files
                    .versions(&path)
                    .await
                    .unwrap()
                    .versions
                    .first()
                    .map_or(0, |v| v.version);
                (lease.token, granted, disk, version)
            })
        };
        let (_token, granted, disk_at_grant, version_at_grant) = holder.await.unwrap();
        for writer in writers {
            let log = writer.await.unwrap();
            assert!(
                log.refused_at > granted || log.ok.iter().all(|(s, _)| *s < log.refused_at),
                "{path}: sequences out of order"
            );
            for (started, version) in &log.ok {
                assert!(
                    *started < granted,
                    "{path}: a token-less write started after the grant (#{started} > #{granted}) succeeded"
                );
                assert!(
                    *version <= version_at_grant,
                    "{path}: a token-less write recorded version {version} after the grant saw {version_at_grant}"
                );
            }
        }
        assert_eq!(
            std::fs::read(fx.root.join(&path)).ok(),
            disk_at_grant,
            "{path}: the file changed under the lease"
        );
        let latest = files.versions(&path).await.unwrap().versions[0].version;
        assert_eq!(
            latest, version_at_grant,
            "{path}: history changed under the lease"
        );
    }
}
