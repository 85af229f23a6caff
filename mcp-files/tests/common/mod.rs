//! Shared helpers of the files integration tests: a fresh directory per test with a root
//! inside it, and a service over that root.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mcp_files::{FilesConfig, FilesService};

/// A temp directory holding `root/` (the sandbox) and whatever a test puts beside it.
pub struct Fixture {
    pub base: tempfile::TempDir,
    pub root: PathBuf,
}

impl Fixture {
    pub fn new() -> Self {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        std::fs::create_dir(&root).unwrap();
        Fixture { base, root }
    }

    pub fn base(&self) -> &Path {
        self.base.path()
    }

    pub fn config(&self) -> FilesConfig {
        FilesConfig::new([&self.root])
    }

    pub fn service(&self) -> FilesService {
        FilesService::in_memory(self.config()).unwrap()
    }
}

/// Every file and symlink under `dir` with its content (or link target), for before/after
/// comparisons of what lies outside a root.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(path, target.into_os_string().into_encoded_bytes());
            } else if meta.is_dir() {
                out.insert(path.clone(), b"<dir>".to_vec());
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// `tasks` tasks race through [`FilesService::lock`] for one path until `rounds` leases have
/// been granted: each winner checks it is the only holder (an in-test holder counter is
/// exactly 1), writes the file with its token, holds briefly, and unlocks. Tokens increase in
/// grant order, and a write without the token while held is refused.
pub async fn lock_contention(files: std::sync::Arc<FilesService>, tasks: usize, rounds: usize) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let holders = Arc::new(AtomicUsize::new(0));
    let granted = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (files, holders, granted, tokens) = (
            files.clone(),
            holders.clone(),
            granted.clone(),
            tokens.clone(),
        );
        handles.push(tokio::spawn(async move {
            let owner = format!("task{task}");
            while granted.load(Ordering::SeqCst) < rounds {
                let lease = match files
                    .lock("contended.txt", &owner, Some(Duration::from_secs(30)))
                    .await
                {
                    Ok(lease) => lease,
                    Err(mcp_core::Error::Locked(_)) => {
                        tokio::time::sleep(Duration::from_millis(1 + (task % 4) as u64)).await;
                        continue;
                    }
                    Err(err) => panic!("{owner}: lock failed: {err:?}"),
                };
                assert_eq!(
                    holders.fetch_add(1, Ordering::SeqCst),
                    0,
                    "{owner} holds beside another holder: {lease:?} after {:?}",
                    tokens.lock().unwrap()
                );
                tokens.lock().unwrap().push(lease.token);
                granted.fetch_add(1, Ordering::SeqCst);
                let options = mcp_files::WriteOptions {
                    lock_token: Some(lease.token),
                    ..Default::default()
                };
                files
                    .write("contended.txt", owner.clone().into_bytes(), options)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
                assert_eq!(holders.fetch_sub(1, Ordering::SeqCst), 1);
                assert!(
                    files
                        .unlock("contended.txt", lease.token)
                        .await
                        .unwrap()
                        .released
                );
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let tokens = tokens.lock().unwrap().clone();
    assert!(tokens.len() >= rounds, "{} grants", tokens.len());
    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "tokens must increase: {tokens:?}"
    );
}

/// A locked path refuses a write (and a delete) without the holder's token and accepts the
/// write with it; after unlock anyone may write again.
pub async fn locked_path_needs_the_token(files: &FilesService, root: &Path) {
    use mcp_files::WriteOptions;
    files
        .write("guarded.txt", b"base".to_vec(), WriteOptions::default())
        .await
        .unwrap();
    let lease = files
        .lock(
            "guarded.txt",
            "holder",
            Some(std::time::Duration::from_secs(30)),
        )
        .await
        .unwrap();
    let err = files
        .write("guarded.txt", b"intruder".to_vec(), WriteOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, mcp_core::Error::Locked(_)), "{err:?}");
    let err = files.delete("guarded.txt", None, None).await.unwrap_err();
    assert!(matches!(err, mcp_core::Error::Locked(_)), "{err:?}");
    assert_eq!(std::fs::read(root.join("guarded.txt")).unwrap(), b"base");
    let with_token = WriteOptions {
        lock_token: Some(lease.token),
        ..Default::default()
    };
    files
        .write("guarded.txt", b"holder".to_vec(), with_token)
        .await
        .unwrap();
    assert_eq!(std::fs::read(root.join("guarded.txt")).unwrap(), b"holder");
    assert!(
        files
            .unlock("guarded.txt", lease.token)
            .await
            .unwrap()
            .released
    );
    files
        .write("guarded.txt", b"anyone".to_vec(), WriteOptions::default())
        .await
        .unwrap();
}
