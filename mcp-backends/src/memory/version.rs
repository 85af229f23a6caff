//! In-memory `VersionStore`: deduplicated blobs by hash and one history vector per path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::kv::poisoned;
use crate::version::{content_hash, Expect, VersionInfo, VersionStore};
use crate::{Error, Result};

#[derive(Debug, Default)]
struct State {
    blobs: HashMap<String, Arc<[u8]>>,
    histories: HashMap<String, Vec<VersionInfo>>,
}

/// Blobs and version histories in process memory.
#[derive(Debug, Default)]
pub struct MemoryVersionStore {
    state: Mutex<State>,
}

impl MemoryVersionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl VersionStore for MemoryVersionStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn put_blob(&self, content: &[u8]) -> Result<String> {
        let hash = content_hash(content);
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        state
            .blobs
            .entry(hash.clone())
            .or_insert_with(|| Arc::from(content));
        Ok(hash)
    }

    async fn get_blob(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        let state = self.state.lock().map_err(|_| poisoned())?;
        Ok(state.blobs.get(hash).map(|blob| blob.to_vec()))
    }

    async fn record(&self, path: &str, hash: Option<&str>, expect: Expect) -> Result<VersionInfo> {
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        let size = match hash {
            Some(hash) => state
                .blobs
                .get(hash)
                .map(|blob| blob.len() as u64)
                .ok_or_else(|| Error::NotFound(format!("blob {hash}")))?,
            None => 0,
        };
        let history = state.histories.entry(path.to_owned()).or_default();
        let latest = history.last();
        let ok = match expect {
            Expect::Any => true,
            Expect::Absent => latest.is_none_or(VersionInfo::is_tombstone),
            Expect::Version(version) => latest.is_some_and(|info| info.version == version),
        };
        if !ok {
            let current = latest.map_or("none".to_owned(), |info| info.version.to_string());
            return Err(Error::Precondition(format!(
                "{path}: expected {expect:?}, current version is {current}"
            )));
        }
        let info = VersionInfo {
            path: path.to_owned(),
            version: latest.map_or(1, |info| info.version + 1),
            hash: hash.map(str::to_owned),
            size,
            created_at_ms: mcp_core::unix_millis_now(),
        };
        history.push(info.clone());
        Ok(info)
    }

    async fn latest(&self, path: &str) -> Result<Option<VersionInfo>> {
        let state = self.state.lock().map_err(|_| poisoned())?;
        Ok(state.histories.get(path).and_then(|h| h.last().cloned()))
    }

    async fn get(&self, path: &str, version: u64) -> Result<Option<VersionInfo>> {
        let state = self.state.lock().map_err(|_| poisoned())?;
        Ok(state.histories.get(path).and_then(|history| {
            let index = usize::try_from(version.checked_sub(1)?).ok()?;
            history.get(index).cloned()
        }))
    }

    async fn history(
        &self,
        path: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<VersionInfo>> {
        let state = self.state.lock().map_err(|_| poisoned())?;
        Ok(state
            .histories
            .get(path)
            .map(|history| {
                history
                    .iter()
                    .rev()
                    .filter(|info| before.is_none_or(|before| info.version < before))
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn ping(&self) -> Result<()> {
        self.state.lock().map(|_| ()).map_err(|_| poisoned())
    }
}
