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
