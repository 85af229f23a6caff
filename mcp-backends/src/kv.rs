//! `KvStore`: byte values under string keys with optional time-to-live, glob scans with a
//! cursor, and batch reads. Used by the memory service (and as a generic cache store).

use std::time::Duration;

use async_trait::async_trait;

use crate::Result;

/// Options for [`KvStore::set`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// Time to live; `None` keeps the key until it is deleted. A zero TTL is invalid.
    pub ttl: Option<Duration>,
    /// Only set when no live value exists (an expired value counts as absent).
    pub if_absent: bool,
}

/// The remaining lifetime of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTtl {
    /// No live value under the key.
    Missing,
    /// The value has no expiry.
    Persistent,
    /// The value expires after this long (backends round to milliseconds).
    Expires(Duration),
}

/// One page of a [`KvStore::scan`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// Matching live keys in this page (order is backend-defined).
    pub keys: Vec<String>,
    /// Opaque cursor for the next page; `None` when the scan is complete.
    pub next_cursor: Option<String>,
}

/// A key/value store with TTLs.
///
/// Semantics every backend must share (checked by the conformance suite):
/// - An expired key is invisible to every operation: `get` misses, `scan` skips it, `ttl`
///   says [`KeyTtl::Missing`], `set` with `if_absent` succeeds over it.
/// - `set` replaces value and TTL together; `set` without TTL makes the key persistent.
/// - Keys are arbitrary UTF-8 (including glob metacharacters, spaces, `:`), at most
///   [`MAX_KEY_BYTES`] bytes; values are arbitrary bytes, including empty.
/// - `scan` patterns are Redis-style globs ([`crate::glob`]); following `next_cursor` until
///   `None` returns every key that was live and matching for the whole scan at least once.
///   `limit` bounds a page for ordered backends and is a hint for Redis.
#[async_trait]
pub trait KvStore: Send + Sync {
    /// Backend name (`memory`, `redis`, `postgres`).
    fn backend(&self) -> &'static str;

    /// The live value under `key`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Live values for `keys`, in the same order.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>>;

    /// Stores `value`; returns `false` (and changes nothing) only when `if_absent` is set
    /// and a live value exists.
    async fn set(&self, key: &str, value: Vec<u8>, options: SetOptions) -> Result<bool>;

    /// Removes `key`; returns whether a live value was removed.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Sets a new TTL on a live key (a zero TTL removes it now); returns whether it existed.
    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool>;

    /// Removes the TTL of a live key; returns whether it existed.
    async fn persist(&self, key: &str) -> Result<bool>;

    /// The remaining lifetime of `key`.
    async fn ttl(&self, key: &str) -> Result<KeyTtl>;

    /// One page of live keys matching the glob `pattern`, starting at `cursor` (`None` for the
    /// first page). A malformed cursor is [`crate::Error::InvalidArgument`].
    async fn scan(&self, pattern: &str, cursor: Option<&str>, limit: usize) -> Result<ScanPage>;

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<()>;
}

/// Longest key accepted by every backend, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
