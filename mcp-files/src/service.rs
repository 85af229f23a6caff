//! [`FilesService`]: the typed operations over the sandbox, the version store, the lock
//! manager, the L1 cache and the event bus.
//!
//! # Versions and write ordering
//!
//! The version of a file is its latest version in the [`VersionStore`], keyed by the
//! canonical absolute path. A file that exists on disk without history (or whose content
//! changed outside the service) is recorded as a new version the first time the service
//! reads or writes it, so `expected_version` always compares against what is on disk.
//!
//! A write goes: put the blob → stage the content in a temp file in the target's directory
//! (through that directory's capability handle; fsync when `durable`) → check the lease →
//! record the version with the caller's precondition → rename the temp file over the target
//! (fsync of the directory when `durable`). A failed precondition (`Conflict`) removes the
//! temp file, so the file on disk is untouched. Missing parent directories are created only
//! at the rename, after the record (the temp file waits in the deepest existing one), so a
//! refused write, move or restore creates no directory either. Recording before the rename
//! means a crash (or a failed rename or directory creation) in between leaves a version whose
//! content is not on disk yet; the next read or write sees the disk hash differ from the
//! latest version and records the disk content again, so history heals itself and never
//! claims a version was lost. Readers see the old or the new file, never a mix: rename is
//! atomic.
//!
//! Within one instance, record + rename of a path happen under a per-path stripe lock, so
//! versions and disk contents change in the same order. A write to a path with a live lease
//! needs the lease's fencing token, checked under the stripe right before recording.
//!
//! # Leases and writes
//!
//! [`FilesService::lock`] takes the same stripe around the grant, so within one instance the
//! lease check of a write, its record and its rename, and a grant on that path never
//! interleave: a grant waits for a write that already passed its check to be on disk, and a
//! write that checks after the grant needs the token. Every path-changing operation (write,
//! edit, restore, delete, move) checks under the stripe.
//!
//! Across instances this does not hold: the stripe is in-process, so another instance can
//! grant a lease between this instance's check and its rename, and that token-less write
//! still lands (at most one per writer in flight at the grant). Closing that window would
//! need the lock manager and the filesystem to commit together, which they cannot. The
//! fencing token is the caller's defence for everything after that window: every write on
//! any instance that checks after the grant needs it, and a holder whose lease expired and
//! was granted again is refused. A holder that must also detect the one write already past
//! its check passes `expected_version` (the version it saw after locking): that write moved
//! the version, so the holder's write fails with `Conflict` instead of overwriting blindly.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use cap_std::fs::{Dir, OpenOptions};
use mcp_backends::memory::{MemoryAuditLog, MemoryLockManager, MemoryVersionStore};
use mcp_backends::{
    content_hash, AuditLog, EventBus, Expect, LockManager, LockManagerExt, VersionInfo,
    VersionStore,
};
use mcp_core::{ActionSpec, BackendHealth, Error, Result};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::cache::{self, Body, CachedFile, FileStamp, Invalidation, INVALIDATION_TOPIC, L1};
use crate::sandbox::{create_missing, io_error, Resolved, Roots};
use crate::{
    Created, Deleted, Diff, Edited, Entry, FileContent, FilesConfig, Kind, Listing, LockInfo,
    Locked, Moved, ReadMany, ReadManyEntry, ReadRange, RootInfo, RootList, SearchMatch,
    SearchResults, SharedText, Source, Stat, TextEdit, Tree, TreeNode, Unlocked, VersionEntry,
    Versions, WriteOptions, Written,
};

/// Number of per-path stripe locks serializing record + rename within one instance.
const STRIPES: usize = 64;

/// Longest snippet `search` returns, in characters.
const SNIPPET_CHARS: usize = 200;

/// Sandboxed file I/O with versions, locks, a coherent cache and an access log.
///
/// Build one with [`FilesService::in_memory`] (every backend in memory) or
/// [`FilesService::builder`]. Typed methods take caller paths (relative to the first root,
/// or absolute inside any root); the JSON adapter ([`mcp_core::Service::call`]) parses
/// arguments, calls them and appends an access record for every call.
///
/// Leases are serialized with writes within one instance only; see the module docs ("Leases
/// and writes") for the window another instance leaves.
pub struct FilesService {
    pub(crate) roots: Arc<Roots>,
    versions: Arc<dyn VersionStore>,
    locks: Arc<dyn LockManager>,
    pub(crate) audit: Arc<dyn AuditLog>,
    events: Option<Arc<dyn EventBus>>,
    cache: Option<L1>,
    pub(crate) config: FilesConfig,
    stripes: Vec<Mutex<()>>,
    instance: String,
    pub(crate) actions: Vec<ActionSpec>,
    _watcher: Option<notify::RecommendedWatcher>,
    subscriber: Option<JoinHandle<()>>,
}

/// Configures a [`FilesService`]; every backend defaults to its in-memory implementation.
pub struct FilesServiceBuilder {
    config: FilesConfig,
    versions: Arc<dyn VersionStore>,
    locks: Arc<dyn LockManager>,
    audit: Arc<dyn AuditLog>,
    events: Option<Arc<dyn EventBus>>,
}

impl FilesServiceBuilder {
    /// Where versions and blobs live.
    pub fn versions(mut self, store: Arc<dyn VersionStore>) -> Self {
        self.versions = store;
        self
    }

    /// Where leases live.
    pub fn locks(mut self, locks: Arc<dyn LockManager>) -> Self {
        self.locks = locks;
        self
    }

    /// Where access records go.
    pub fn audit(mut self, audit: Arc<dyn AuditLog>) -> Self {
        self.audit = audit;
        self
    }

    /// Publishes cache invalidations on `bus` after every change and applies those of other
    /// instances.
    pub fn events(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.events = Some(bus);
        self
    }

    /// Opens the roots, starts the watcher (when configured) and, with an event bus,
    /// subscribes to invalidations (which needs a tokio runtime).
    pub async fn build(self) -> Result<FilesService> {
        let mut service = FilesService::assemble(
            self.config,
            self.versions,
            self.locks,
            self.audit,
            self.events,
        )?;
        if let (Some(cache), Some(bus)) = (&service.cache, &service.events) {
            let subscription = bus.subscribe(INVALIDATION_TOPIC).await?;
            service.subscriber = Some(tokio::spawn(cache::apply_invalidations(
                subscription,
                service.roots.clone(),
                cache.clone(),
                service.instance.clone(),
            )));
        }
        Ok(service)
    }
}

impl Drop for FilesService {
    fn drop(&mut self) {
        if let Some(task) = &self.subscriber {
            task.abort();
        }
    }
}

/// What the disk holds at a path.
enum Disk {
    /// Nothing.
    Missing,
    /// Something that is not versioned: a directory, a special file, or a file larger than
    /// `max_write_bytes`.
    Unversioned { size: u64, is_file: bool },
    /// A file with this content.
    Content(Vec<u8>),
}

/// A temp file staged on the way to its target, through a directory handle.
///
/// When the target's parent directories exist, the temp file lies next to the target. When
/// some are missing, it lies in the deepest one that exists, and the missing ones are created
/// only by [`Staged::commit`], after every check and the version record: a write refused by
/// its lease, its precondition or anything else before that has created no directory, so it
/// leaves the tree exactly as it was. Creating them late instead of removing them on refusal
/// is what keeps this race-free: removing "the directories this call created" could remove
/// one a concurrent call had just found existing and was about to write into (or had
/// created with `mkdir`), while creating late never removes anything.
struct Staged {
    /// The directory holding the temp file: the target's parent, or its deepest existing
    /// ancestor.
    dir: Dir,
    temp: String,
    /// The target's parent directories still missing below `dir` (empty when none are).
    missing: PathBuf,
    name: String,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FilesService {
    /// A service over `config` with every backend in memory and no event bus.
    pub fn in_memory(config: FilesConfig) -> Result<Self> {
        FilesService::assemble(
            config,
            Arc::new(MemoryVersionStore::new()),
            Arc::new(MemoryLockManager::new()),
            Arc::new(MemoryAuditLog::new()),
            None,
        )
    }

    /// Starts configuring a service over `config`.
    pub fn builder(config: FilesConfig) -> FilesServiceBuilder {
        FilesServiceBuilder {
            config,
            versions: Arc::new(MemoryVersionStore::new()),
            locks: Arc::new(MemoryLockManager::new()),
            audit: Arc::new(MemoryAuditLog::new()),
            events: None,
        }
    }

    fn assemble(
        mut config: FilesConfig,
        versions: Arc<dyn VersionStore>,
        locks: Arc<dyn LockManager>,
        audit: Arc<dyn AuditLog>,
        events: Option<Arc<dyn EventBus>>,
    ) -> Result<Self> {
        let roots = Arc::new(Roots::open(&config.roots)?);
        let cache = (config.cache_bytes > 0).then(|| L1::new(config.cache_bytes));
        let watcher = match (&cache, config.watch) {
            (Some(cache), true) => match cache::watch(roots.clone(), cache.clone()) {
                Ok(watcher) => Some(watcher),
                // Typically the OS limit on watches, in a large tree (a home directory, a
                // checkout with its build output). The cache stays right without a watcher
                // when every hit is checked against the file's stamp on disk.
                Err(err) => {
                    tracing::warn!(
                        %err,
                        "cannot watch the files roots; every cache hit is checked against the disk instead"
                    );
                    config.verify_cache_hits = true;
                    None
                }
            },
            _ => None,
        };
        Ok(FilesService {
            roots,
            versions,
            locks,
            audit,
            events,
            cache,
            config,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            instance: format!("{}-{}", std::process::id(), unique_suffix()),
            actions: crate::api::action_specs(),
            _watcher: watcher,
            subscriber: None,
        })
    }

    /// The limits in force.
    pub fn config(&self) -> &FilesConfig {
        &self.config
    }

    /// The access log every JSON call appends to.
    pub fn audit_log(&self) -> &Arc<dyn AuditLog> {
        &self.audit
    }

    /// Runs blocking filesystem work off the async threads.
    async fn io<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Roots) -> Result<T> + Send + 'static,
    {
        let roots = self.roots.clone();
        tokio::task::spawn_blocking(move || work(&roots))
            .await
            .map_err(|err| Error::Internal(format!("file I/O task failed: {err}")))?
    }

    fn stripe(&self, key: &str) -> &Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        &self.stripes[(hash % STRIPES as u64) as usize]
    }

    fn lock_resource(resolved: &Resolved) -> String {
        format!("files:{}", resolved.key)
    }

    fn shown(&self, resolved: &Resolved) -> String {
        self.roots.display(resolved.root, &resolved.rel)
    }

    // ---------------------------------------------------------------- reads

    /// Hits and misses of the L1 cache (plain paths looked up by [`FilesService::read`]), if
    /// the service has one.
    pub fn cache_stats(&self) -> Option<mcp_core::CacheStats> {
        self.cache.as_ref().map(L1::stats)
    }

    /// Reads `path` (or part of it). Files above `max_read_bytes` need a byte range.
    /// Served from the L1 cache when possible (`source: cache`).
    pub async fn read(&self, path: &str, range: ReadRange) -> Result<FileContent> {
        if let Some(cache) = &self.cache {
            let (root, rest) = self.roots.locate(path)?;
            if let Some(plain) = Roots::plain(rest) {
                let key = (root, plain);
                if let Some(hit) = cache.get(&key) {
                    if self.still_on_disk(root, &key.1, &hit) {
                        let shown = self.roots.display(root, Path::new(&key.1));
                        return self.present(shown, &hit, range, Source::Cache);
                    }
                    cache.invalidate(root, &key.1);
                }
            }
        }
        self.read_disk(path, range).await
    }

    /// Whether a cache hit may be served: always, unless hits are verified, in which case the
    /// file's stamp must still be the one taken when the entry was filled. (One `stat` on the
    /// calling thread: cheap on a local filesystem.)
    fn still_on_disk(&self, root: usize, plain: &str, hit: &CachedFile) -> bool {
        if !self.config.verify_cache_hits {
            return true;
        }
        let now = self.roots.get(root).dir.metadata(plain).ok();
        hit.stamp.is_some() && now.as_ref().map(FileStamp::of) == hit.stamp
    }

    async fn read_disk(&self, path: &str, range: ReadRange) -> Result<FileContent> {
        let generation = self.cache.as_ref().map(L1::generation);
        let raw = path.to_owned();
        let max_write = self.config.max_write_bytes;
        let stamp_first = self.cache.is_some() && self.config.verify_cache_hits;
        let (resolved, stamp, disk) = self
            .io(move |roots| {
                let resolved = roots.existing(&raw)?;
                // Before the content is read, so the stamp is never newer than the content.
                let stamp = stamp_first
                    .then(|| roots.get(resolved.root).dir.metadata(&resolved.rel).ok())
                    .flatten()
                    .map(|meta| FileStamp::of(&meta));
                let disk = read_disk_state(roots, &resolved, &raw, max_write)?;
                Ok((resolved, stamp, disk))
            })
            .await?;
        let shown = self.shown(&resolved);
        let content = match disk {
            Disk::Missing => return Err(Error::NotFound(format!("{path}: no such file"))),
            Disk::Unversioned { is_file: false, .. } => {
                return Err(Error::InvalidArgument(format!("{path}: is not a file")))
            }
            Disk::Unversioned { size, .. } => {
                return self.read_large(&resolved, shown, size, range).await
            }
            Disk::Content(content) => content,
        };
        let hash = content_hash(&content);
        let latest = self.versions.latest(&resolved.key).await?;
        let (content, version) = match latest {
            Some(info) if info.hash.as_deref() == Some(hash.as_str()) => (content, info),
            _ => {
                // Unrecorded content: reconcile under the stripe, against a fresh disk read.
                let _guard = self.stripe(&resolved.key).lock().await;
                let (latest, disk) = self.reconcile(&resolved).await?;
                match (latest, disk) {
                    (Some(info), Disk::Content(content)) => (content, info),
                    _ => return Err(Error::NotFound(format!("{path}: no such file"))),
                }
            }
        };
        let hash = version.hash.clone().unwrap_or_default();
        // A file that will be cached gets its JSON form made once, now.
        let cacheable = self.cache.is_some() && content.len() as u64 <= self.config.max_read_bytes;
        let body = Body::new(content);
        let file = CachedFile {
            body: if cacheable { body.for_cache() } else { body },
            version: version.version,
            hash,
            stamp,
        };
        if file.body.bytes().len() as u64 > self.config.max_read_bytes && range == ReadRange::Whole
        {
            return Err(Error::PayloadTooLarge(format!(
                "{path}: {} bytes is more than the {} a read returns whole; pass offset/length",
                file.body.bytes().len(),
                self.config.max_read_bytes
            )));
        }
        let file = Arc::new(file);
        let result = self.present(shown, &file, range, Source::Disk);
        if let (Some(cache), Some(generation)) = (&self.cache, generation) {
            let (_, rest) = self.roots.locate(path)?;
            if let Some(plain) =
                Roots::plain(rest).filter(|p| cacheable && Path::new(p) == resolved.rel)
            {
                cache.fill(resolved.root, plain, file, generation);
            }
        }
        result
    }

    /// A ranged read of a file too large to version: no hash, the latest recorded version
    /// (0 when none).
    async fn read_large(
        &self,
        resolved: &Resolved,
        shown: String,
        size: u64,
        range: ReadRange,
    ) -> Result<FileContent> {
        let max = self.config.max_read_bytes;
        let (offset, length) = match range {
            ReadRange::Whole => {
                return Err(Error::PayloadTooLarge(format!(
                    "{shown}: {size} bytes is more than the {max} a read returns whole; pass offset/length"
                )))
            }
            ReadRange::Bytes { offset, length } => (offset, length.unwrap_or(max).min(max)),
            ReadRange::Head(_) => (0, max),
            ReadRange::Tail(_) => (size.saturating_sub(max), max),
        };
        let resolved_io = resolved.clone();
        let shown_io = shown.clone();
        let bytes = self
            .io(move |roots| {
                let mut file = roots
                    .get(resolved_io.root)
                    .dir
                    .open(&resolved_io.rel)
                    .map_err(|err| io_error(&shown_io, err))?;
                file.seek(SeekFrom::Start(offset))
                    .map_err(|err| io_error(&shown_io, err))?;
                let mut bytes = Vec::new();
                file.take(length)
                    .read_to_end(&mut bytes)
                    .map_err(|err| io_error(&shown_io, err))?;
                Ok(bytes)
            })
            .await?;
        let part = match range {
            ReadRange::Head(n) => head(&bytes, n),
            ReadRange::Tail(n) => tail(&bytes, n),
            _ => &bytes[..],
        };
        let version = self
            .versions
            .latest(&resolved.key)
            .await?
            .map_or(0, |info| info.version);
        let mut out = encode(shown, part, size, version, None, Source::Disk);
        out.partial = true;
        Ok(out)
    }

    /// Builds the result for `range` of a whole content.
    fn present(
        &self,
        shown: String,
        file: &CachedFile,
        range: ReadRange,
        source: Source,
    ) -> Result<FileContent> {
        let content = file.body.bytes();
        let max = self.config.max_read_bytes as usize;
        let part = match range {
            ReadRange::Whole => content,
            ReadRange::Bytes { offset, length } => {
                let start = (offset.min(content.len() as u64)) as usize;
                let length = length.map_or(max, |l| (l.min(max as u64)) as usize);
                &content[start..start.saturating_add(length).min(content.len())]
            }
            ReadRange::Head(n) => head(content, n),
            ReadRange::Tail(n) => tail(content, n),
        };
        let partial = part.len() != content.len();
        let whole_text = match &file.body {
            Body::Text(text) if !partial => Some(text.clone()),
            _ => None,
        };
        let mut out = if let Some(text) = whole_text {
            FileContent {
                path: shown,
                content: Some(text),
                content_base64: None,
                size: content.len() as u64,
                version: file.version,
                hash: Some(file.hash.clone()),
                partial,
                source,
            }
        } else {
            encode(
                shown,
                part,
                content.len() as u64,
                file.version,
                Some(file.hash.clone()),
                source,
            )
        };
        out.partial = partial;
        Ok(out)
    }

    /// Reads several paths; each gets its own result or error.
    pub async fn read_many(&self, paths: &[String]) -> Result<ReadMany> {
        if paths.len() > self.config.max_batch_paths {
            return Err(Error::InvalidArgument(format!(
                "read_many takes at most {} paths, got {}",
                self.config.max_batch_paths,
                paths.len()
            )));
        }
        let mut results = Vec::with_capacity(paths.len());
        for path in paths {
            let entry = match self.read(path, ReadRange::Whole).await {
                Ok(result) => ReadManyEntry {
                    path: path.clone(),
                    result: Some(result),
                    error: None,
                },
                Err(err) => ReadManyEntry {
                    path: path.clone(),
                    result: None,
                    error: Some(err.to_body()),
                },
            };
            results.push(entry);
        }
        Ok(ReadMany { results })
    }

    /// Reads the disk state of `resolved` and brings its history in line with it: unrecorded
    /// content becomes a new version, a vanished file a tombstone. Call under the stripe.
    async fn reconcile(&self, resolved: &Resolved) -> Result<(Option<VersionInfo>, Disk)> {
        let target = resolved.clone();
        let shown = self.shown(resolved);
        let max_write = self.config.max_write_bytes;
        let disk = self
            .io(move |roots| read_disk_state(roots, &target, &shown, max_write))
            .await?;
        for _ in 0..8 {
            let latest = self.versions.latest(&resolved.key).await?;
            let live = latest.as_ref().filter(|info| !info.is_tombstone());
            let expect = latest
                .as_ref()
                .map_or(Expect::Absent, |info| Expect::Version(info.version));
            let recorded = match &disk {
                Disk::Content(content) => {
                    let hash = content_hash(content);
                    if live.is_some_and(|info| info.hash.as_deref() == Some(hash.as_str())) {
                        return Ok((latest, disk));
                    }
                    self.versions.put_blob(content).await?;
                    self.versions
                        .record(&resolved.key, Some(&hash), expect)
                        .await
                }
                Disk::Missing if live.is_some() => {
                    self.versions.record(&resolved.key, None, expect).await
                }
                _ => return Ok((latest, disk)),
            };
            match recorded {
                Ok(info) => return Ok((Some(info), disk)),
                Err(mcp_backends::Error::Precondition(_)) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(Error::Conflict(format!(
            "{}: history kept changing while reconciling it with the disk",
            self.shown(resolved)
        )))
    }

    // ---------------------------------------------------------------- writes

    /// Writes `content` to `path` atomically (parents are created), recording a version.
    pub async fn write(
        &self,
        path: &str,
        content: Vec<u8>,
        options: WriteOptions,
    ) -> Result<Written> {
        self.check_write_size(path, content.len())?;
        let resolved = self.resolve_for_write(path, true).await?;
        let _guard = self.stripe(&resolved.key).lock().await;
        self.write_locked(&resolved, content, &options).await
    }

    fn check_write_size(&self, path: &str, size: usize) -> Result<()> {
        if size as u64 > self.config.max_write_bytes {
            return Err(Error::PayloadTooLarge(format!(
                "{path}: {size} bytes is more than the {} a write accepts",
                self.config.max_write_bytes
            )));
        }
        Ok(())
    }

    /// Resolves a path to write; with `missing_parents`, its parents may be missing (they are
    /// created only when the change commits, see [`Staged`]).
    async fn resolve_for_write(&self, path: &str, missing_parents: bool) -> Result<Resolved> {
        let raw = path.to_owned();
        self.io(move |roots| roots.for_write(&raw, missing_parents))
            .await
    }

    async fn check_lock(&self, resolved: &Resolved, token: Option<u64>) -> Result<()> {
        self.locks
            .check_writable(&Self::lock_resource(resolved), token)
            .await
            .map_err(|err| match err {
                mcp_backends::Error::Locked(_) => Error::Locked(format!(
                    "{} is locked; pass the holder's lock_token",
                    self.shown(resolved)
                )),
                other => other.into(),
            })
    }

    /// The write itself; the caller holds the path's stripe.
    async fn write_locked(
        &self,
        resolved: &Resolved,
        content: Vec<u8>,
        options: &WriteOptions,
    ) -> Result<Written> {
        let shown = self.shown(resolved);
        let (latest, disk) = self.reconcile(resolved).await?;
        match &disk {
            Disk::Unversioned { is_file: false, .. } => {
                return Err(Error::InvalidArgument(format!("{shown}: is not a file")))
            }
            Disk::Missing => {}
            _ if options.create_only => {
                return Err(Error::Conflict(format!("{shown}: already exists")))
            }
            _ => {}
        }
        let expect = match (options.expected_version, options.create_only) {
            (Some(version), _) => Expect::Version(version),
            (None, true) => Expect::Absent,
            (None, false) => Expect::Any,
        };
        if let Expect::Version(expected) = expect {
            let current = latest.as_ref().map_or(0, |info| info.version);
            if current != expected {
                return Err(Error::Conflict(format!(
                    "{shown}: expected version {expected}, current is {current}"
                )));
            }
        }
        let hash = self.versions.put_blob(&content).await?;
        let size = content.len() as u64;
        let staged = self.stage(resolved, content, options.durable).await?;
        let recorded = match self.check_lock(resolved, options.lock_token).await {
            Ok(()) => self
                .versions
                .record(&resolved.key, Some(&hash), expect)
                .await
                .map_err(|err| match err {
                    mcp_backends::Error::Precondition(_) => Error::Conflict(format!(
                        "{shown}: the version changed (expected {expect:?})"
                    )),
                    other => other.into(),
                }),
            Err(err) => Err(err),
        };
        let info = match recorded {
            Ok(info) => info,
            Err(err) => {
                self.io(move |_| {
                    staged.abort();
                    Ok(())
                })
                .await?;
                return Err(err);
            }
        };
        let durable = options.durable;
        let shown_io = shown.clone();
        self.io(move |_| staged.commit(durable, &shown_io)).await?;
        self.invalidate(resolved).await;
        Ok(Written {
            path: shown,
            version: info.version,
            hash,
            size,
        })
    }

    /// Writes `content` to a temp file next to `resolved` (same directory, same handle), or in
    /// its deepest existing ancestor when parents are missing (see [`Staged`]).
    async fn stage(&self, resolved: &Resolved, content: Vec<u8>, durable: bool) -> Result<Staged> {
        let target = resolved.clone();
        let shown = self.shown(resolved);
        self.io(move |roots| {
            let (parent_rel, name) = target.split(&shown)?;
            let (parent, missing) = roots.open_deepest(target.root, &parent_rel, &shown)?;
            let permissions = missing
                .as_os_str()
                .is_empty()
                .then(|| parent.metadata(&name).ok())
                .flatten()
                .filter(|meta| meta.is_file())
                .map(|meta| meta.permissions());
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            let mut attempt = 0;
            let (temp, mut file) = loop {
                let temp = format!(".mcp-tmp-{}", unique_suffix());
                match parent.open_with(&temp, &options) {
                    Ok(file) => break (temp, file),
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                        attempt += 1;
                    }
                    Err(err) => return Err(io_error(&shown, err)),
                }
            };
            let staged = Staged {
                dir: parent,
                temp,
                missing,
                name,
            };
            let written = file
                .write_all(&content)
                .and_then(|()| if durable { file.sync_all() } else { Ok(()) })
                .and_then(|()| match permissions {
                    Some(permissions) => file.set_permissions(permissions),
                    None => Ok(()),
                });
            if let Err(err) = written {
                staged.abort();
                return Err(io_error(&shown, err));
            }
            Ok(staged)
        })
        .await
    }

    /// Evicts `resolved` here and tells other instances.
    async fn invalidate(&self, resolved: &Resolved) {
        let plain = Roots::plain(&resolved.rel).unwrap_or_default();
        if let Some(cache) = &self.cache {
            cache.invalidate(resolved.root, &plain);
        }
        if let Some(bus) = &self.events {
            let invalidation = Invalidation {
                instance: self.instance.clone(),
                path: PathBuf::from(&resolved.key),
            };
            match serde_json::to_vec(&invalidation) {
                Ok(payload) => {
                    if let Err(err) = bus.publish(INVALIDATION_TOPIC, payload).await {
                        tracing::warn!(%err, path = %resolved.key, "files invalidation not published");
                    }
                }
                Err(err) => tracing::warn!(%err, "files invalidation not serialized"),
            }
        }
    }

    /// Replaces each `old_text` (which must occur exactly once) by its `new_text`, in order,
    /// and writes the result unless `dry_run`. Returns the unified diff.
    pub async fn edit(
        &self,
        path: &str,
        edits: &[TextEdit],
        dry_run: bool,
        options: WriteOptions,
    ) -> Result<Edited> {
        if edits.is_empty() {
            return Err(Error::InvalidArgument(format!("{path}: no edits given")));
        }
        let resolved = self.resolve_for_write(path, false).await?;
        let shown = self.shown(&resolved);
        let _guard = self.stripe(&resolved.key).lock().await;
        let (latest, disk) = self.reconcile(&resolved).await?;
        let (current, version) = match (disk, latest) {
            (Disk::Content(content), Some(info)) => (content, info.version),
            (Disk::Missing, _) => return Err(Error::NotFound(format!("{shown}: no such file"))),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "{shown}: not a file that can be edited"
                )))
            }
        };
        if let Some(expected) = options.expected_version.filter(|v| *v != version) {
            return Err(Error::Conflict(format!(
                "{shown}: expected version {expected}, current is {version}"
            )));
        }
        let before = String::from_utf8(current)
            .map_err(|_| Error::InvalidArgument(format!("{shown}: is not UTF-8 text")))?;
        let mut after = before.clone();
        for (index, edit) in edits.iter().enumerate() {
            if edit.old_text.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "{shown}: edit {index} has an empty old_text"
                )));
            }
            let at = unique_occurrence(&after, &edit.old_text).map_err(|found| {
                Error::InvalidArgument(format!(
                    "{shown}: edit {index}: old_text occurs {found} times (overlapping ones \
                     count), it must occur exactly once"
                ))
            })?;
            after.replace_range(at..at + edit.old_text.len(), &edit.new_text);
        }
        let diff = unified_diff(&before, &after, &format!("{shown}@v{version}"), &shown);
        if dry_run {
            return Ok(Edited {
                path: shown,
                diff,
                version,
                size: after.len() as u64,
                dry_run: true,
            });
        }
        self.check_write_size(path, after.len())?;
        let options = WriteOptions {
            expected_version: Some(version),
            ..options
        };
        let written = self
            .write_locked(&resolved, after.into_bytes(), &options)
            .await?;
        Ok(Edited {
            path: written.path,
            diff,
            version: written.version,
            size: written.size,
            dry_run: false,
        })
    }

    /// Deletes a file (recording a deletion version; history is kept), a symlink, or an empty
    /// directory.
    pub async fn delete(
        &self,
        path: &str,
        expected_version: Option<u64>,
        lock_token: Option<u64>,
    ) -> Result<Deleted> {
        let raw = path.to_owned();
        let resolved = self.io(move |roots| roots.entry(&raw)).await?;
        let shown = self.shown(&resolved);
        let target = resolved.clone();
        let shown_io = shown.clone();
        let kind = self
            .io(move |roots| {
                let meta = roots
                    .get(target.root)
                    .dir
                    .symlink_metadata(&target.rel)
                    .map_err(|err| io_error(&shown_io, err))?;
                Ok(kind_of(&meta.file_type()))
            })
            .await?;
        let (parent_rel, name) = resolved.split(&shown)?;
        let root = resolved.root;
        let _guard = self.stripe(&resolved.key).lock().await;
        if kind != Kind::File {
            self.check_lock(&resolved, lock_token).await?;
            let shown_io = shown.clone();
            self.io(move |roots| {
                let parent = roots.open_dir(root, &parent_rel, &shown_io)?;
                let removed = if kind == Kind::Dir {
                    parent.remove_dir(&name)
                } else {
                    parent.remove_file(&name)
                };
                removed.map_err(|err| io_error(&shown_io, err))
            })
            .await?;
            self.invalidate(&resolved).await;
            return Ok(Deleted {
                path: shown,
                deleted: true,
                version: 0,
                size: 0,
            });
        }
        let (latest, disk) = self.reconcile(&resolved).await?;
        let size = match disk {
            Disk::Content(content) => content.len() as u64,
            Disk::Unversioned { size, .. } => size,
            Disk::Missing => 0,
        };
        let current = latest.as_ref().map_or(0, |info| info.version);
        let expect = match expected_version {
            Some(expected) if expected != current => {
                return Err(Error::Conflict(format!(
                    "{shown}: expected version {expected}, current is {current}"
                )))
            }
            Some(expected) => Expect::Version(expected),
            None => Expect::Any,
        };
        self.check_lock(&resolved, lock_token).await?;
        let info = self
            .versions
            .record(&resolved.key, None, expect)
            .await
            .map_err(Error::from)?;
        let shown_io = shown.clone();
        self.io(move |roots| {
            let parent = roots.open_dir(root, &parent_rel, &shown_io)?;
            parent
                .remove_file(&name)
                .map_err(|err| io_error(&shown_io, err))
        })
        .await?;
        self.invalidate(&resolved).await;
        Ok(Deleted {
            path: shown,
            deleted: true,
            version: info.version,
            size,
        })
    }

    /// Moves a file to `to` (parents created), recording a version at the destination and a
    /// deletion at the source. Without `overwrite`, an existing destination is `Conflict`.
    pub async fn move_file(
        &self,
        from: &str,
        to: &str,
        overwrite: bool,
        lock_token: Option<u64>,
    ) -> Result<Moved> {
        let raw = from.to_owned();
        let source = self.io(move |roots| roots.entry(&raw)).await?;
        let destination = self.resolve_for_write(to, true).await?;
        let from_shown = self.shown(&source);
        let to_shown = self.shown(&destination);
        if source.key == destination.key {
            return Err(Error::InvalidArgument(format!(
                "{from_shown}: source and destination are the same file"
            )));
        }
        let (first, second) = {
            let a = self.stripe(&source.key) as *const Mutex<()>;
            let b = self.stripe(&destination.key) as *const Mutex<()>;
            if a <= b {
                (&source, &destination)
            } else {
                (&destination, &source)
            }
        };
        let _first = self.stripe(&first.key).lock().await;
        let _second = if std::ptr::eq(self.stripe(&first.key), self.stripe(&second.key)) {
            None
        } else {
            Some(self.stripe(&second.key).lock().await)
        };
        let (source_latest, source_disk) = self.reconcile(&source).await?;
        let (hash, size) = match (&source_disk, &source_latest) {
            (Disk::Content(content), Some(info)) => {
                (info.hash.clone().unwrap_or_default(), content.len() as u64)
            }
            (Disk::Missing, _) => {
                return Err(Error::NotFound(format!("{from_shown}: no such file")))
            }
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "{from_shown}: only files up to max_write_bytes can be moved"
                )))
            }
        };
        let (_, destination_disk) = self.reconcile(&destination).await?;
        match destination_disk {
            Disk::Missing => {}
            Disk::Content(_) if overwrite => {}
            Disk::Unversioned { is_file: false, .. } => {
                return Err(Error::InvalidArgument(format!("{to_shown}: is not a file")))
            }
            _ => {
                return Err(Error::Conflict(format!(
                    "{to_shown}: already exists (pass overwrite)"
                )))
            }
        }
        let expect = if overwrite {
            Expect::Any
        } else {
            Expect::Absent
        };
        self.check_lock(&source, lock_token).await?;
        self.check_lock(&destination, lock_token).await?;
        let info = self
            .versions
            .record(&destination.key, Some(&hash), expect)
            .await
            .map_err(Error::from)?;
        let (source_io, destination_io, shown_io) =
            (source.clone(), destination.clone(), from_shown.clone());
        self.io(move |roots| {
            let (from_parent, from_name) = source_io.split(&shown_io)?;
            let (to_parent, to_name) = destination_io.split(&shown_io)?;
            let from_dir = roots.open_dir(source_io.root, &from_parent, &shown_io)?;
            // Missing destination parents are created only now, after every check and the
            // record, so a refused move creates no directory (see `Staged`).
            let (to_base, to_missing) =
                roots.open_deepest(destination_io.root, &to_parent, &shown_io)?;
            let to_dir =
                create_missing(&to_base, &to_missing).map_err(|err| io_error(&shown_io, err))?;
            from_dir
                .rename(&from_name, &to_dir, &to_name)
                .map_err(|err| io_error(&shown_io, err))
        })
        .await?;
        self.versions
            .record(&source.key, None, Expect::Any)
            .await
            .map_err(Error::from)?;
        self.invalidate(&source).await;
        self.invalidate(&destination).await;
        Ok(Moved {
            from: from_shown,
            path: to_shown,
            version: info.version,
            size,
        })
    }

    /// Creates a directory and its parents (nothing when the path is refused).
    pub async fn mkdir(&self, path: &str) -> Result<Created> {
        let raw = path.to_owned();
        self.io(move |roots| {
            let (resolved, created) = roots.create_dir(&raw)?;
            Ok(Created {
                path: roots.display(resolved.root, &resolved.rel),
                created,
            })
        })
        .await
    }

    /// Restores `version` of `path` as a new version with the same content.
    pub async fn restore(
        &self,
        path: &str,
        version: u64,
        options: WriteOptions,
    ) -> Result<Written> {
        let resolved = self.resolve_for_write(path, true).await?;
        let content = self.version_content(&resolved, version).await?;
        let Some(content) = content else {
            return Err(Error::InvalidArgument(format!(
                "{}: version {version} records a deletion; restore an earlier one",
                self.shown(&resolved)
            )));
        };
        self.check_write_size(path, content.len())?;
        let _guard = self.stripe(&resolved.key).lock().await;
        self.write_locked(&resolved, content, &options).await
    }

    // ---------------------------------------------------------------- listings

    /// Lists a directory a page at a time (recursively when asked), in byte order of paths.
    pub async fn list(
        &self,
        path: &str,
        recursive: bool,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Listing> {
        let limit = limit
            .unwrap_or(self.config.default_list_limit)
            .clamp(1, self.config.max_list_limit);
        let after = match cursor {
            Some(cursor) => Some(decode_cursor(cursor)?),
            None => None,
        };
        let raw = path.to_owned();
        let max_walk = self.config.max_walk_entries;
        self.io(move |roots| {
            let resolved = roots.existing(&raw)?;
            let dir = roots.open_dir(resolved.root, &resolved.rel, &raw)?;
            let (mut names, truncated) = if recursive {
                walk(&dir, max_walk)
            } else {
                let mut names = Vec::new();
                let entries = dir.entries().map_err(|err| io_error(&raw, err))?;
                for entry in entries.flatten() {
                    if let Some(name) = entry.file_name().to_str() {
                        names.push((name.to_owned(), kind_of_entry(&entry)));
                    }
                }
                (names, false)
            };
            names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let start = match &after {
                Some(after) => names.partition_point(|(name, _)| name.as_str() <= after.as_str()),
                None => 0,
            };
            let page = &names[start..names.len().min(start + limit)];
            let more = start + page.len() < names.len();
            let mut entries = Vec::with_capacity(page.len());
            for (rel, kind) in page {
                let meta = dir.symlink_metadata(rel).ok();
                let name = Path::new(rel)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                entries.push(Entry {
                    name,
                    path: roots.display(resolved.root, &resolved.rel.join(rel)),
                    kind: *kind,
                    size: meta.as_ref().map_or(0, |m| m.len()),
                    modified: meta.as_ref().and_then(modified_ms),
                });
            }
            let next_cursor = match (more, page.last()) {
                (true, Some((last, _))) => Some(encode_cursor(last)),
                _ => None,
            };
            Ok(Listing {
                entries,
                next_cursor,
                truncated,
            })
        })
        .await
    }

    /// The directory tree under `path` to `depth` levels (default 2), skipping names that
    /// match any `exclude` glob; at most `max_tree_entries` nodes.
    pub async fn tree(
        &self,
        path: &str,
        depth: Option<usize>,
        exclude: Vec<String>,
    ) -> Result<Tree> {
        let depth = depth.unwrap_or(2);
        if depth > self.config.max_tree_depth {
            return Err(Error::InvalidArgument(format!(
                "depth {depth} is more than the maximum {}",
                self.config.max_tree_depth
            )));
        }
        let raw = path.to_owned();
        let budget = self.config.max_tree_entries;
        self.io(move |roots| {
            let resolved = roots.existing(&raw)?;
            let dir = roots.open_dir(resolved.root, &resolved.rel, &raw)?;
            let mut remaining = budget;
            let mut truncated = false;
            let children = tree_children(
                roots,
                &resolved,
                &dir,
                Path::new(""),
                depth,
                &exclude,
                &mut remaining,
                &mut truncated,
            );
            let name = resolved
                .rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".into());
            Ok(Tree {
                root: TreeNode {
                    name,
                    path: roots.display(resolved.root, &resolved.rel),
                    kind: Kind::Dir,
                    size: 0,
                    children,
                },
                truncated,
            })
        })
        .await
    }

    /// Files under `path` whose relative path (or name, for a glob without `/`) matches
    /// `glob`, and/or lines containing `query`. Symlinks are not followed.
    pub async fn search(
        &self,
        path: &str,
        glob: Option<String>,
        query: Option<String>,
        limit: Option<usize>,
    ) -> Result<SearchResults> {
        if glob.is_none() && query.is_none() {
            return Err(Error::InvalidArgument(
                "search needs a glob, a query or both".into(),
            ));
        }
        if query.as_deref() == Some("") {
            return Err(Error::InvalidArgument("query is empty".into()));
        }
        let limit = limit
            .unwrap_or(self.config.default_search_limit)
            .clamp(1, self.config.max_search_limit);
        let raw = path.to_owned();
        let max_walk = self.config.max_walk_entries;
        let max_file = self.config.max_search_file_bytes;
        self.io(move |roots| {
            let resolved = roots.existing(&raw)?;
            let dir = roots.open_dir(resolved.root, &resolved.rel, &raw)?;
            let (mut files, mut truncated) = walk(&dir, max_walk);
            files.retain(|(_, kind)| *kind == Kind::File);
            files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let mut matches = Vec::new();
            'files: for (rel, _) in files {
                if let Some(glob) = &glob {
                    let subject = if glob.contains('/') {
                        rel.as_str()
                    } else {
                        rel.rsplit('/').next().unwrap_or(&rel)
                    };
                    if !mcp_backends::glob::matches(glob, subject) {
                        continue;
                    }
                }
                let shown = roots.display(resolved.root, &resolved.rel.join(&rel));
                let Some(query) = &query else {
                    if matches.len() == limit {
                        truncated = true;
                        break;
                    }
                    matches.push(SearchMatch {
                        path: shown,
                        line: None,
                        snippet: None,
                    });
                    continue;
                };
                let Ok(meta) = dir.metadata(&rel) else {
                    continue;
                };
                if meta.len() > max_file {
                    continue;
                }
                let Ok(text) = dir.read_to_string(&rel) else {
                    continue;
                };
                for (number, line) in text.lines().enumerate() {
                    if line.contains(query.as_str()) {
                        if matches.len() == limit {
                            truncated = true;
                            break 'files;
                        }
                        matches.push(SearchMatch {
                            path: shown.clone(),
                            line: Some(number + 1),
                            snippet: Some(line.chars().take(SNIPPET_CHARS).collect()),
                        });
                    }
                }
            }
            Ok(SearchResults { matches, truncated })
        })
        .await
    }

    // ---------------------------------------------------------------- metadata and history

    /// Kind, size, modification time, latest version and live lock of `path`.
    pub async fn stat(&self, path: &str) -> Result<Stat> {
        let raw = path.to_owned();
        let (resolved, meta) = self
            .io(move |roots| {
                let resolved = roots.existing(&raw)?;
                let meta = roots
                    .get(resolved.root)
                    .dir
                    .metadata(&resolved.rel)
                    .map_err(|err| io_error(&raw, err))?;
                Ok((
                    resolved,
                    (kind_of(&meta.file_type()), meta.len(), modified_ms(&meta)),
                ))
            })
            .await?;
        let version = self
            .versions
            .latest(&resolved.key)
            .await?
            .filter(|info| !info.is_tombstone())
            .map(|info| info.version);
        let lock = self
            .locks
            .inspect(&Self::lock_resource(&resolved))
            .await?
            .map(|lease| LockInfo {
                owner: lease.owner,
                expires_in_ms: lease.expires_in.as_millis() as u64,
            });
        Ok(Stat {
            path: self.shown(&resolved),
            kind: meta.0,
            size: meta.1,
            modified: meta.2,
            version,
            lock,
        })
    }

    /// The key of a path for history lookups: the file if it exists, else the name in its
    /// (existing) parent, so deleted files keep their history reachable.
    async fn resolve_history(&self, path: &str) -> Result<Resolved> {
        let raw = path.to_owned();
        self.io(move |roots| roots.existing(&raw).or_else(|_| roots.entry(&raw)))
            .await
    }

    /// Versions of `path`, newest first (at most `max_versions_listed`).
    pub async fn versions(&self, path: &str) -> Result<Versions> {
        let resolved = self.resolve_history(path).await?;
        let history = self
            .versions
            .history(&resolved.key, None, self.config.max_versions_listed)
            .await?;
        Ok(Versions {
            path: self.shown(&resolved),
            versions: history
                .into_iter()
                .map(|info| VersionEntry {
                    version: info.version,
                    deleted: info.is_tombstone(),
                    hash: info.hash,
                    size: info.size,
                    created_at: info.created_at_ms,
                })
                .collect(),
        })
    }

    /// The content of `version`; `None` for a deletion.
    async fn version_content(&self, resolved: &Resolved, version: u64) -> Result<Option<Vec<u8>>> {
        let info = self
            .versions
            .get(&resolved.key, version)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!("{}: no version {version}", self.shown(resolved)))
            })?;
        match info.hash {
            None => Ok(None),
            Some(hash) => self
                .versions
                .get_blob(&hash)
                .await?
                .map(Some)
                .ok_or_else(|| {
                    Error::Internal(format!("blob {hash} of version {version} is missing"))
                }),
        }
    }

    /// The content of one version of `path`.
    pub async fn version(&self, path: &str, version: u64) -> Result<FileContent> {
        let resolved = self.resolve_history(path).await?;
        let shown = self.shown(&resolved);
        let content = self
            .version_content(&resolved, version)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!("{shown}: version {version} records a deletion"))
            })?;
        if content.len() as u64 > self.config.max_read_bytes {
            return Err(Error::PayloadTooLarge(format!(
                "{shown}: version {version} has {} bytes, more than max_read_bytes",
                content.len()
            )));
        }
        let hash = content_hash(&content);
        let size = content.len() as u64;
        if is_text(&content) {
            Ok(FileContent {
                path: shown,
                content: String::from_utf8(content).ok().map(SharedText::from),
                content_base64: None,
                size,
                version,
                hash: Some(hash),
                partial: false,
                source: Source::History,
            })
        } else {
            Ok(encode(
                shown,
                &content,
                size,
                version,
                Some(hash),
                Source::History,
            ))
        }
    }

    /// Unified diff between two versions of `path` (`to` defaults to the latest).
    pub async fn diff(&self, path: &str, from: u64, to: Option<u64>) -> Result<Diff> {
        let resolved = self.resolve_history(path).await?;
        let shown = self.shown(&resolved);
        let to = match to {
            Some(to) => to,
            None => self
                .versions
                .latest(&resolved.key)
                .await?
                .map(|info| info.version)
                .ok_or_else(|| Error::NotFound(format!("{shown}: has no history")))?,
        };
        let text = |content: Option<Vec<u8>>, version: u64| -> Result<String> {
            String::from_utf8(content.unwrap_or_default()).map_err(|_| {
                Error::InvalidArgument(format!("{shown}: version {version} is binary"))
            })
        };
        let old = text(self.version_content(&resolved, from).await?, from)?;
        let new = text(self.version_content(&resolved, to).await?, to)?;
        Ok(Diff {
            diff: unified_diff(
                &old,
                &new,
                &format!("{shown}@v{from}"),
                &format!("{shown}@v{to}"),
            ),
            path: shown,
            from_version: from,
            to_version: to,
        })
    }

    // ---------------------------------------------------------------- locks

    /// Leases `path` to `owner` for `ttl` (default 30 s); writes then need the token.
    ///
    /// The grant happens under the path's stripe, after any write of this instance that
    /// already passed its lease check is on disk (see the module docs for what another
    /// instance can still do).
    pub async fn lock(&self, path: &str, owner: &str, ttl: Option<Duration>) -> Result<Locked> {
        let ttl = ttl.unwrap_or(self.config.default_lock_ttl);
        if ttl.is_zero() || ttl > self.config.max_lock_ttl {
            return Err(Error::InvalidArgument(format!(
                "ttl must be between 1 ms and {} ms",
                self.config.max_lock_ttl.as_millis()
            )));
        }
        let resolved = self.resolve_for_write(path, false).await?;
        let shown = self.shown(&resolved);
        let _guard = self.stripe(&resolved.key).lock().await;
        let lease = self
            .locks
            .acquire(&Self::lock_resource(&resolved), owner, ttl)
            .await
            .map_err(|err| match err {
                mcp_backends::Error::Locked(_) => {
                    Error::Locked(format!("{shown} is locked by another holder"))
                }
                other => other.into(),
            })?;
        Ok(Locked {
            path: shown,
            token: lease.token,
            owner: lease.owner,
            expires_at: mcp_core::unix_millis_now() + lease.expires_in.as_millis() as i64,
        })
    }

    /// Releases the lease with `token`; `released` is false when it was not live.
    pub async fn unlock(&self, path: &str, token: u64) -> Result<Unlocked> {
        let resolved = self.resolve_for_write(path, false).await?;
        let released = self
            .locks
            .release(&Self::lock_resource(&resolved), token)
            .await?;
        Ok(Unlocked {
            path: self.shown(&resolved),
            released,
        })
    }

    /// The configured roots.
    pub fn roots(&self) -> RootList {
        RootList {
            roots: self
                .roots
                .all()
                .iter()
                .enumerate()
                .map(|(index, root)| RootInfo {
                    path: root.path.to_string_lossy().into_owned(),
                    default: index == 0,
                })
                .collect(),
        }
    }

    /// Pings every backend, concurrently (a stopped backend costs its timeout once).
    pub async fn ping_all(&self) -> Vec<BackendHealth> {
        let events = async {
            match &self.events {
                Some(bus) => Some(bus.ping().await),
                None => None,
            }
        };
        let (versions, locks, audit, events) = tokio::join!(
            self.versions.ping(),
            self.locks.ping(),
            self.audit.ping(),
            events
        );
        let mut health = vec![
            BackendHealth::from_ping(
                "versions",
                self.versions.backend(),
                versions.map_err(Into::into),
            ),
            BackendHealth::from_ping("locks", self.locks.backend(), locks.map_err(Into::into)),
            BackendHealth::from_ping("audit", self.audit.backend(), audit.map_err(Into::into)),
        ];
        if let (Some(bus), Some(events)) = (&self.events, events) {
            health.push(BackendHealth::from_ping(
                "events",
                bus.backend(),
                events.map_err(Into::into),
            ));
        }
        health
    }
}

impl Staged {
    /// Creates the missing parents, then renames the temp file over the target (replacing a
    /// symlink there, never following it). With `durable`, syncs every directory that got a
    /// new entry.
    fn commit(self, durable: bool, shown: &str) -> Result<()> {
        let renamed = create_missing(&self.dir, &self.missing)
            .and_then(|target| self.dir.rename(&self.temp, &target, &self.name));
        if let Err(err) = renamed {
            self.abort();
            return Err(io_error(shown, err));
        }
        if durable {
            let mut changed = vec![PathBuf::from(".")];
            let mut below = PathBuf::new();
            for component in self.missing.components() {
                below.push(component);
                changed.push(below.clone());
            }
            for dir in changed {
                self.dir
                    .open(&dir)
                    .and_then(|dir| dir.sync_all())
                    .map_err(|err| io_error(shown, err))?;
            }
        }
        Ok(())
    }

    fn abort(self) {
        if let Err(err) = self.dir.remove_file(&self.temp) {
            tracing::warn!(%err, "could not remove a staged temp file");
        }
    }
}

/// What is on disk at `resolved`: missing, not versionable, or the content.
fn read_disk_state(roots: &Roots, resolved: &Resolved, shown: &str, max: u64) -> Result<Disk> {
    let dir = &roots.get(resolved.root).dir;
    let meta = match dir.metadata(&resolved.rel) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Disk::Missing),
        Err(err) => return Err(io_error(shown, err)),
    };
    if !meta.is_file() || meta.len() > max {
        return Ok(Disk::Unversioned {
            size: meta.len(),
            is_file: meta.is_file(),
        });
    }
    let mut file = match dir.open(&resolved.rel) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Disk::Missing),
        Err(err) => return Err(io_error(shown, err)),
    };
    let mut content = Vec::with_capacity(meta.len() as usize);
    (&mut file)
        .take(max + 1)
        .read_to_end(&mut content)
        .map_err(|err| io_error(shown, err))?;
    if content.len() as u64 > max {
        return Ok(Disk::Unversioned {
            size: content.len() as u64,
            is_file: true,
        });
    }
    Ok(Disk::Content(content))
}

/// Every entry below `dir` (relative paths, `/`-separated), not following symlinks, at most
/// `max` of them; returns whether it stopped early.
fn walk(dir: &Dir, max: usize) -> (Vec<(String, Kind)>, bool) {
    let mut out = Vec::new();
    let mut stack: Vec<(String, Dir)> = match dir.try_clone() {
        Ok(dir) => vec![(String::new(), dir)],
        Err(_) => return (out, false),
    };
    while let Some((prefix, current)) = stack.pop() {
        let Ok(entries) = current.entries() else {
            continue;
        };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if out.len() == max {
                return (out, true);
            }
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let kind = kind_of_entry(&entry);
            if kind == Kind::Dir {
                if let Ok(child) = current.open_dir(&name) {
                    stack.push((rel.clone(), child));
                }
            }
            out.push((rel, kind));
        }
    }
    (out, false)
}

#[allow(clippy::too_many_arguments)]
fn tree_children(
    roots: &Roots,
    resolved: &Resolved,
    dir: &Dir,
    rel: &Path,
    depth: usize,
    exclude: &[String],
    remaining: &mut usize,
    truncated: &mut bool,
) -> Vec<TreeNode> {
    if depth == 0 {
        return Vec::new();
    }
    let Ok(entries) = dir.entries() else {
        return Vec::new();
    };
    let mut named: Vec<(String, cap_std::fs::DirEntry)> = entries
        .flatten()
        .filter_map(|entry| Some((entry.file_name().to_str()?.to_owned(), entry)))
        .filter(|(name, _)| {
            !exclude
                .iter()
                .any(|glob| mcp_backends::glob::matches(glob, name))
        })
        .collect();
    named.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut nodes = Vec::new();
    for (name, entry) in named {
        if *remaining == 0 {
            *truncated = true;
            break;
        }
        *remaining -= 1;
        let kind = kind_of_entry(&entry);
        let child_rel = rel.join(&name);
        let children = match (kind, dir.open_dir(&name)) {
            (Kind::Dir, Ok(child)) => tree_children(
                roots,
                resolved,
                &child,
                &child_rel,
                depth - 1,
                exclude,
                remaining,
                truncated,
            ),
            _ => Vec::new(),
        };
        let size = if kind == Kind::File {
            entry.metadata().map_or(0, |m| m.len())
        } else {
            0
        };
        nodes.push(TreeNode {
            path: roots.display(resolved.root, &resolved.rel.join(&child_rel)),
            name,
            kind,
            size,
            children,
        });
    }
    nodes
}

fn kind_of(file_type: &cap_std::fs::FileType) -> Kind {
    if file_type.is_symlink() {
        Kind::Symlink
    } else if file_type.is_dir() {
        Kind::Dir
    } else if file_type.is_file() {
        Kind::File
    } else {
        Kind::Other
    }
}

fn kind_of_entry(entry: &cap_std::fs::DirEntry) -> Kind {
    entry.file_type().map_or(Kind::Other, |t| kind_of(&t))
}

fn modified_ms(meta: &cap_std::fs::Metadata) -> Option<i64> {
    let modified = meta.modified().ok()?.into_std();
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(since.as_millis() as i64)
}

/// UTF-8 without NUL bytes counts as text.
fn is_text(content: &[u8]) -> bool {
    !content.contains(&0) && std::str::from_utf8(content).is_ok()
}

/// A result carrying `part` as text when it is text, else as base64.
fn encode(
    path: String,
    part: &[u8],
    size: u64,
    version: u64,
    hash: Option<String>,
    source: Source,
) -> FileContent {
    let (content, content_base64) = if is_text(part) {
        (std::str::from_utf8(part).ok().map(SharedText::from), None)
    } else {
        (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(part)),
        )
    };
    FileContent {
        path,
        content,
        content_base64,
        size,
        version,
        hash,
        partial: part.len() as u64 != size,
        source,
    }
}

/// The first `n` lines (with their newlines).
fn head(content: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &content[..0];
    }
    let mut seen = 0;
    for (index, byte) in content.iter().enumerate() {
        if *byte == b'\n' {
            seen += 1;
            if seen == n {
                return &content[..=index];
            }
        }
    }
    content
}

/// The last `n` lines (a final newline does not start an empty line).
fn tail(content: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &content[content.len()..];
    }
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    let mut seen = 0;
    for index in (0..body.len()).rev() {
        if body[index] == b'\n' {
            seen += 1;
            if seen == n {
                return &content[index + 1..];
            }
        }
    }
    content
}

/// The byte offset of `needle` in `haystack` when it occurs exactly once, overlapping
/// occurrences included (`aa` occurs twice in `aaa`, so replacing it would be ambiguous);
/// otherwise how often it occurs (0, or at least 2), for the error message.
fn unique_occurrence(haystack: &str, needle: &str) -> std::result::Result<usize, usize> {
    let first = haystack.find(needle).ok_or(0usize)?;
    let next = first + haystack[first..].chars().next().map_or(1, char::len_utf8);
    if haystack[next..].contains(needle) {
        return Err(haystack.matches(needle).count().max(2));
    }
    Ok(first)
}

fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

fn encode_cursor(last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last.as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| Error::InvalidArgument("cursor is not one this service returned".into()))
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{:x}-{:x}",
        std::process::id(),
        nanos,
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::{head, tail};

    #[test]
    fn head_and_tail_take_whole_lines() {
        let text = b"a\nb\nc\n";
        assert_eq!(head(text, 2), b"a\nb\n");
        assert_eq!(head(text, 9), text);
        assert_eq!(tail(text, 1), b"c\n");
        assert_eq!(tail(text, 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb", 1), b"b");
        assert_eq!(tail(text, 0), b"");
    }
}
