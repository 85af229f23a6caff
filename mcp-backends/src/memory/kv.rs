//! In-memory `KvStore`: an ordered map with per-key deadlines on tokio's clock.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::glob;
use crate::kv::{KeyTtl, KvStore, ScanPage, SetOptions, MAX_KEY_BYTES};
use crate::{Error, Result};

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    deadline: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.deadline.is_none_or(|deadline| deadline > now)
    }
}

/// Key/value store in process memory. Expired entries are invisible at once and removed
/// when touched or passed over by a scan.
#[derive(Debug, Default)]
pub struct MemoryKvStore {
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl MemoryKvStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Entry>>> {
        self.entries.lock().map_err(|_| poisoned())
    }
}

pub(crate) fn poisoned() -> Error {
    Error::Backend {
        backend: "memory",
        message: "state lock poisoned by a panicked task".into(),
    }
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("key must not be empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidArgument(format!(
            "key is {} bytes, the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

fn check_ttl(ttl: Option<Duration>) -> Result<()> {
    if ttl == Some(Duration::ZERO) {
        return Err(Error::InvalidArgument("ttl must be positive".into()));
    }
    Ok(())
}

/// Looks up a live entry, dropping it if it has expired.
fn live_entry<'a>(
    entries: &'a mut BTreeMap<String, Entry>,
    key: &str,
    now: Instant,
) -> Option<&'a mut Entry> {
    if entries.get(key).is_some_and(|entry| !entry.live(now)) {
        entries.remove(key);
    }
    entries.get_mut(key)
}

#[async_trait]
impl KvStore for MemoryKvStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let now = Instant::now();
        let mut entries = self.entries()?;
        Ok(live_entry(&mut entries, key, now).map(|entry| entry.value.clone()))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let now = Instant::now();
        let mut entries = self.entries()?;
        Ok(keys
            .iter()
            .map(|key| live_entry(&mut entries, key, now).map(|entry| entry.value.clone()))
            .collect())
    }

    async fn set(&self, key: &str, value: Vec<u8>, options: SetOptions) -> Result<bool> {
        check_key(key)?;
        check_ttl(options.ttl)?;
        let now = Instant::now();
        let mut entries = self.entries()?;
        if options.if_absent && live_entry(&mut entries, key, now).is_some() {
            return Ok(false);
        }
        let deadline = options.ttl.map(|ttl| now + ttl);
        entries.insert(key.to_owned(), Entry { value, deadline });
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let now = Instant::now();
        let mut entries = self.entries()?;
        Ok(entries.remove(key).is_some_and(|entry| entry.live(now)))
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let now = Instant::now();
        let mut entries = self.entries()?;
        if live_entry(&mut entries, key, now).is_none() {
            return Ok(false);
        }
        if ttl.is_zero() {
            entries.remove(key);
        } else if let Some(entry) = entries.get_mut(key) {
            entry.deadline = Some(now + ttl);
        }
        Ok(true)
    }

    async fn persist(&self, key: &str) -> Result<bool> {
        let now = Instant::now();
        let mut entries = self.entries()?;
        Ok(match live_entry(&mut entries, key, now) {
            Some(entry) => {
                entry.deadline = None;
                true
            }
            None => false,
        })
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        let now = Instant::now();
        let mut entries = self.entries()?;
        Ok(match live_entry(&mut entries, key, now) {
            None => KeyTtl::Missing,
            Some(Entry { deadline: None, .. }) => KeyTtl::Persistent,
            Some(Entry {
                deadline: Some(deadline),
                ..
            }) => KeyTtl::Expires(*deadline - now),
        })
    }

    async fn scan(&self, pattern: &str, cursor: Option<&str>, limit: usize) -> Result<ScanPage> {
        let limit = limit.max(1);
        let prefix = glob::literal_prefix(pattern);
        // Keys are visited in order from the later of the cursor and the pattern's literal
        // prefix, so the cursor is simply the last key looked at.
        let start = match cursor {
            Some(after) if after >= prefix.as_str() => Bound::Excluded(after.to_owned()),
            _ => Bound::Included(prefix.clone()),
        };
        let now = Instant::now();
        let mut entries = self.entries()?;
        let mut keys = Vec::new();
        let mut expired = Vec::new();
        let mut last = None;
        let mut more = false;
        for (key, entry) in entries.range::<String, _>((start, Bound::Unbounded)) {
            if !key.starts_with(&prefix) {
                break;
            }
            if keys.len() == limit {
                more = true;
                break;
            }
            last = Some(key.clone());
            if !entry.live(now) {
                expired.push(key.clone());
            } else if glob::matches(pattern, key) {
                keys.push(key.clone());
            }
        }
        for key in expired {
            entries.remove(&key);
        }
        Ok(ScanPage {
            keys,
            next_cursor: if more { last } else { None },
        })
    }

    async fn ping(&self) -> Result<()> {
        self.entries().map(|_| ())
    }
}
