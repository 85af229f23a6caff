//! Roots and limits of the files service, with defaults suitable for agents.

use std::path::PathBuf;
use std::time::Duration;

/// Where the files service may read and write, and the limits it enforces on every call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilesConfig {
    /// The directories the service is confined to. Relative paths in requests resolve against
    /// the first one; absolute paths must lie inside one of them.
    pub roots: Vec<PathBuf>,
    /// Largest file `read` returns whole (default 4 MiB); a larger file needs `offset`/`length`
    /// (`PayloadTooLarge` otherwise). Also the most bytes one ranged read returns.
    pub max_read_bytes: u64,
    /// Largest content `write`, `edit` and `restore` accept (default 16 MiB);
    /// larger is `PayloadTooLarge`. Files up to this size are versioned when read.
    pub max_write_bytes: u64,
    /// Page size of `list` when the caller gives none (default 100).
    pub default_list_limit: usize,
    /// Largest page size of `list` (default 1000).
    pub max_list_limit: usize,
    /// Most entries a recursive `list`, `tree` or `search` walks before it stops and reports
    /// `truncated` (default 100 000).
    pub max_walk_entries: usize,
    /// Deepest `tree` (default 8); `depth` defaults to 2.
    pub max_tree_depth: usize,
    /// Most nodes one `tree` returns (default 2000).
    pub max_tree_entries: usize,
    /// Results of `search` when the caller gives no limit (default 100).
    pub default_search_limit: usize,
    /// Most results of one `search` (default 1000).
    pub max_search_limit: usize,
    /// Files larger than this are not searched for text (default 1 MiB).
    pub max_search_file_bytes: u64,
    /// Most paths in one `read_many` (default 100).
    pub max_batch_paths: usize,
    /// Most versions `versions` lists (default 100, newest first).
    pub max_versions_listed: usize,
    /// Lease length of `lock` when the caller gives none (default 30 s).
    pub default_lock_ttl: Duration,
    /// Longest lease `lock` grants (default 1 h); longer is `InvalidArgument`.
    pub max_lock_ttl: Duration,
    /// Bytes the L1 cache may hold (default 64 MiB; 0 disables it): file content and, for
    /// text, its JSON string form, made once when the file is cached so that a JSON read
    /// copies it instead of escaping the text again (about twice the text's size in all).
    pub cache_bytes: u64,
    /// Watch the roots for changes made outside the service and evict them from the cache
    /// (default true). Without a watcher the cache is only invalidated by this service and
    /// the event bus. If the OS refuses the watch (its limit on watches reached, in a large
    /// tree), the service starts anyway, logs a warning and checks every cache hit against
    /// the disk (as `verify_cache_hits`).
    pub watch: bool,
    /// Check on every cache hit, with one `stat`, that the file is still the one cached
    /// (default false). Turn it on when several instances share a root: another instance's
    /// write may return before its invalidation reaches this one, and the check makes a read
    /// that starts after that write returned see it. It also catches outside edits before the
    /// watcher reports them.
    pub verify_cache_hits: bool,
}

impl FilesConfig {
    /// Default limits over `roots`.
    pub fn new<I, P>(roots: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        FilesConfig {
            roots: roots.into_iter().map(Into::into).collect(),
            max_read_bytes: 4 * 1024 * 1024,
            max_write_bytes: 16 * 1024 * 1024,
            default_list_limit: 100,
            max_list_limit: 1000,
            max_walk_entries: 100_000,
            max_tree_depth: 8,
            max_tree_entries: 2000,
            default_search_limit: 100,
            max_search_limit: 1000,
            max_search_file_bytes: 1024 * 1024,
            max_batch_paths: 100,
            max_versions_listed: 100,
            default_lock_ttl: Duration::from_secs(30),
            max_lock_ttl: Duration::from_secs(3600),
            cache_bytes: 64 * 1024 * 1024,
            watch: true,
            verify_cache_hits: false,
        }
    }
}
