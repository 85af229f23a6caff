//! `VersionStore`: content-addressed blobs plus an append-only version history per path.
//!
//! Blobs are keyed by the BLAKE3 hash of their content ([`content_hash`]) and stored once
//! however many versions share them. Each path has versions 1, 2, 3, ... with no gaps; a
//! deletion is recorded as a version without content (a tombstone), so history survives it.

use async_trait::async_trait;

use crate::Result;

/// The lowercase hex BLAKE3 hash that names a blob.
pub fn content_hash(content: &[u8]) -> String {
    blake3::hash(content).to_hex().to_string()
}

/// Precondition for [`VersionStore::record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Record whatever the current version is.
    Any,
    /// The path must have no history, or its latest version must be a tombstone.
    Absent,
    /// The latest version must be exactly this one.
    Version(u64),
}

/// One entry of a path's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// The path the history belongs to.
    pub path: String,
    /// 1 for the first version, then +1 per record, with no gaps.
    pub version: u64,
    /// Blob hash of the content; `None` for a deletion tombstone.
    pub hash: Option<String>,
    /// Content size in bytes (0 for a tombstone).
    pub size: u64,
    /// When it was recorded, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

impl VersionInfo {
    /// Whether this version records a deletion.
    pub fn is_tombstone(&self) -> bool {
        self.hash.is_none()
    }
}

/// Content-addressed blobs and per-path version history.
///
/// Semantics every backend must share (checked by the conformance suite):
/// - `put_blob` returns [`content_hash`] of the content and is idempotent.
/// - `record` checks `expect` and appends atomically: concurrent `record`s on one path with
///   the same `Expect::Version(n)` yield exactly one success, the rest
///   [`crate::Error::Precondition`]. Recording a hash whose blob is missing is
///   [`crate::Error::NotFound`].
/// - `history` is newest first; `before` pages to versions below it.
#[async_trait]
pub trait VersionStore: Send + Sync {
    /// Backend name.
    fn backend(&self) -> &'static str;

    /// Stores `content` (if not already stored) and returns its hash.
    async fn put_blob(&self, content: &[u8]) -> Result<String>;

    /// The blob with `hash`.
    async fn get_blob(&self, hash: &str) -> Result<Option<Vec<u8>>>;

    /// Appends a version of `path` pointing at blob `hash` (`None` records a deletion).
    async fn record(&self, path: &str, hash: Option<&str>, expect: Expect) -> Result<VersionInfo>;

    /// The latest version of `path`, tombstone included.
    async fn latest(&self, path: &str) -> Result<Option<VersionInfo>>;

    /// One version of `path`.
    async fn get(&self, path: &str, version: u64) -> Result<Option<VersionInfo>>;

    /// Up to `limit` versions of `path`, newest first, below `before` when given.
    async fn history(
        &self,
        path: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<VersionInfo>>;

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<()>;
}
