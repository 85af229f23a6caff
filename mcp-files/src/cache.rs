//! The L1 cache of file contents and the three ways it is kept coherent: writes through this
//! service, a filesystem watcher for edits made outside it, and the event bus for writes made
//! by other instances.
//!
//! Entries are keyed by (root, plain relative path) and carry the version and hash the
//! content was read at; they are weighed by their content bytes. Only paths whose plain form
//! equals their canonical form (no symlink or `..` involved) are cached, so an invalidation
//! by canonical path always reaches the entry.
//!
//! A read that misses fills the cache after reading the disk. To never keep a fill that raced
//! with an invalidation, every invalidation bumps a generation counter; a fill records the
//! generation before it read the disk and evicts its own entry again if the generation moved
//! meanwhile. So once an invalidation (write, watcher event, bus event) has been applied, no
//! read that starts afterwards is served the content from before it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mcp_backends::{Delivery, Subscription};
use moka::sync::Cache;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::sandbox::Roots;
use crate::types::SharedText;

/// Topic of the event bus carrying invalidations between instances.
pub const INVALIDATION_TOPIC: &str = "mcp.files.invalidate";

/// A cached file.
pub(crate) struct CachedFile {
    pub(crate) body: Body,
    pub(crate) version: u64,
    pub(crate) hash: String,
    /// The file's stamp taken before its content was read, when hits are verified
    /// ([`crate::FilesConfig::verify_cache_hits`]).
    pub(crate) stamp: Option<FileStamp>,
}

/// What tells one state of a file on disk from another without reading it: device, inode,
/// size, modification and change times. Every write through the service renames a new inode
/// into place, and an edit in place moves the change time, so a different stamp means the
/// content may differ. (A stamp taken before a concurrent write and kept with the newer content
/// only costs one needless miss.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified_ns: i128,
    changed_ns: i128,
}

impl FileStamp {
    #[cfg(unix)]
    pub(crate) fn of(meta: &cap_std::fs::Metadata) -> Self {
        use cap_std::fs::MetadataExt;
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            modified_ns: ns(meta.mtime(), meta.mtime_nsec()),
            changed_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    #[cfg(not(unix))]
    pub(crate) fn of(meta: &cap_std::fs::Metadata) -> Self {
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|at| at.into_std().duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos() as i128);
        FileStamp {
            dev: 0,
            ino: 0,
            len: meta.len(),
            modified_ns,
            changed_ns: modified_ns,
        }
    }
}

/// A file's content, kept as validated text when it is text, so a hit neither re-validates
/// nor copies it.
pub(crate) enum Body {
    /// UTF-8 without NUL bytes.
    Text(SharedText),
    /// Anything else.
    Binary(Arc<[u8]>),
}

impl Body {
    /// Classifies `content` once.
    pub(crate) fn new(content: Vec<u8>) -> Self {
        if content.contains(&0) {
            return Body::Binary(content.into());
        }
        match String::from_utf8(content) {
            Ok(text) => Body::Text(SharedText::from(text)),
            Err(err) => Body::Binary(err.into_bytes().into()),
        }
    }

    /// The same body, text with its JSON form made for the cache.
    pub(crate) fn for_cache(self) -> Self {
        match self {
            Body::Text(text) => Body::Text(text.with_json_made()),
            body => body,
        }
    }

    /// Bytes held: the content and, for cached text, its JSON form.
    pub(crate) fn weight(&self) -> usize {
        match self {
            Body::Text(text) => text.len() + text.extra_bytes(),
            Body::Binary(bytes) => bytes.len(),
        }
    }

    /// The raw bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
        }
    }
}

type Key = (usize, String);

/// The cache with its generation counter; cheap to clone.
#[derive(Clone)]
pub(crate) struct L1 {
    entries: Cache<Key, Arc<CachedFile>>,
    generation: Arc<AtomicU64>,
    /// Lookups answered and not answered by [`L1::get`], for metrics.
    lookups: Arc<[AtomicU64; 2]>,
}

impl L1 {
    /// A cache of at most `max_bytes` content bytes.
    pub(crate) fn new(max_bytes: u64) -> Self {
        let entries = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &Key, value: &Arc<CachedFile>| {
                let bytes = value.body.weight() + key.1.len() + value.hash.len() + 64;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .build();
        L1 {
            entries,
            generation: Arc::new(AtomicU64::new(0)),
            lookups: Arc::new([AtomicU64::new(0), AtomicU64::new(0)]),
        }
    }

    /// The cached file at (root, plain relative path).
    pub(crate) fn get(&self, key: &(usize, String)) -> Option<Arc<CachedFile>> {
        let found = self.entries.get(key);
        self.lookups[usize::from(found.is_none())].fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Hits and misses of [`L1::get`] so far.
    pub(crate) fn stats(&self) -> mcp_core::CacheStats {
        mcp_core::CacheStats {
            hits: self.lookups[0].load(Ordering::Relaxed),
            misses: self.lookups[1].load(Ordering::Relaxed),
        }
    }

    /// The generation to pass to [`L1::fill`] (read it before reading the disk).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches `file` unless an invalidation happened since `generation` was read.
    pub(crate) fn fill(&self, root: usize, path: String, file: Arc<CachedFile>, generation: u64) {
        let key = (root, path);
        self.entries.insert(key.clone(), file);
        if self.generation.load(Ordering::SeqCst) != generation {
            self.entries.invalidate(&key);
        }
    }

    /// Evicts the file `path`.
    pub(crate) fn invalidate(&self, root: usize, path: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate(&(root, path.to_owned()));
    }

    /// Evicts `path` and everything below it (a directory that moved or vanished). Scans the
    /// entries, so it is used only for watcher events that may concern a directory.
    pub(crate) fn invalidate_tree(&self, root: usize, path: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate(&(root, path.to_owned()));
        let below = format!("{path}/");
        for (key, _) in self.entries.iter() {
            if key.0 == root && key.1.starts_with(&below) {
                self.entries.invalidate(key.as_ref());
            }
        }
    }

    /// Evicts everything.
    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
    }
}

/// Starts a recursive watcher on every root that evicts what changes on disk. Symlinks are
/// not followed, so the watcher never looks outside the roots.
pub(crate) fn watch(roots: Arc<Roots>, cache: L1) -> notify::Result<RecommendedWatcher> {
    let handler_roots = roots.clone();
    let config = notify::Config::default().with_follow_symlinks(false);
    let mut watcher = RecommendedWatcher::new(
        move |outcome: notify::Result<notify::Event>| match outcome {
            Ok(event) => {
                if matches!(event.kind, EventKind::Access(_)) {
                    return;
                }
                if event.need_rescan() {
                    cache.clear();
                    return;
                }
                for path in &event.paths {
                    let Some((root, rel)) = handler_roots.locate_absolute(path) else {
                        cache.clear();
                        continue;
                    };
                    // A path that is now a regular file (or a staged temp file) is one entry;
                    // anything else may have been a directory with cached files below it.
                    let staged = rel
                        .rsplit('/')
                        .next()
                        .is_some_and(|name| name.starts_with(".mcp-tmp-"));
                    let is_file = std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_file());
                    if staged || is_file {
                        cache.invalidate(root, &rel);
                    } else {
                        cache.invalidate_tree(root, &rel);
                    }
                }
            }
            Err(err) => {
                tracing::warn!(%err, "files watcher error; clearing the cache");
                cache.clear();
            }
        },
        config,
    )?;
    for root in roots.all() {
        watcher.watch(&root.path, RecursiveMode::Recursive)?;
    }
    Ok(watcher)
}

/// What instances publish on [`INVALIDATION_TOPIC`].
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Invalidation {
    /// The publishing instance (it ignores its own events).
    pub(crate) instance: String,
    /// Canonical absolute path that changed.
    pub(crate) path: PathBuf,
}

/// Applies other instances' invalidations until the subscription ends; clears on a lag.
pub(crate) async fn apply_invalidations(
    mut subscription: Subscription,
    roots: Arc<Roots>,
    cache: L1,
    instance: String,
) {
    while let Some(delivery) = subscription.recv().await {
        match delivery {
            Delivery::Event(event) => {
                match serde_json::from_slice::<Invalidation>(&event.payload) {
                    Ok(invalidation) if invalidation.instance == instance => {}
                    Ok(invalidation) => {
                        if let Some((root, rel)) = roots.locate_absolute(&invalidation.path) {
                            cache.invalidate(root, &rel);
                        }
                    }
                    Err(err) => {
                        tracing::warn!(%err, "malformed files invalidation; clearing the cache");
                        cache.clear();
                    }
                }
            }
            Delivery::Lagged { missed } => {
                tracing::warn!(missed, "files invalidations lagged; clearing the cache");
                cache.clear();
            }
        }
    }
}
