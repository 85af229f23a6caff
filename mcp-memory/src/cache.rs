//! The L1 cache: parsed values kept in process, each tagged with the key's write epoch so a
//! read can prove freshness with one small lookup instead of fetching the value.
//!
//! # Coherence protocol
//!
//! Next to every value `mem:{ns}:{key}` the service keeps an *epoch key* `memv:{ns}:{key}`
//! whose content is a globally unique token (instance seed + counter).
//!
//! - **Writers** (`store`, `expire`, `delete`) first change the value, then replace the epoch
//!   key with a fresh token (or delete it), then invalidate their own L1 and publish the key
//!   on the [`INVALIDATION_TOPIC`] — all before the write returns.
//! - **Readers** first read the epoch key, then (on a miss) fetch value and TTL, and cache
//!   the value tagged with the epoch they read *before* the fetch. A cached entry is served
//!   only when its tag equals the epoch key read at the start of *this* read. When nothing
//!   is cached for the key, epoch and value come from one `get_many` (one snapshot on every
//!   backend: Redis `MGET`, one SQL statement, one lock), which keeps that order in a single
//!   round trip.
//!
//! Why that is never stale: tokens never repeat, so a tag still equal to the current epoch
//! means no writer replaced the epoch key between the fill and now. Every write that
//! returned before this read began replaced the epoch key before returning; if it did so
//! after the fill's epoch read, the tags differ (miss); otherwise its value change happened
//! before the fill's fetch, so the cached value already reflects it. Values whose epoch key
//! is absent (written by something else, or deleted) are never cached. This needs nothing of
//! the event bus: invalidation events only evict entries early to free memory.
//!
//! The cost is one small read of the epoch key per cache hit. That round trip is the price of
//! the guarantee: a cache that answers without asking the store can always be overtaken by a
//! write whose invalidation is still in flight.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use serde_json::Value;
use tokio::time::Instant;

/// Topic on which every instance publishes `{"key": "<stored key>", "epoch": "<hex>" | null}`
/// after a write.
pub const INVALIDATION_TOPIC: &str = "memory.invalidate";

/// One cached value.
pub(crate) struct Cached {
    /// The parsed value.
    pub value: Value,
    /// When the stored value expires (never later than the store's own expiry).
    pub deadline: Option<Instant>,
    /// The epoch token read before the value was fetched.
    pub epoch: Vec<u8>,
    /// Serialized size, the entry's weight.
    pub weight: u32,
}

impl Cached {
    /// Whether the entry is still alive by the tokio clock.
    pub fn alive(&self, now: Instant) -> bool {
        self.deadline.is_none_or(|deadline| deadline > now)
    }
}

/// Evicts entries when their value expires (moka's own clock; reads still check
/// [`Cached::alive`] against the tokio clock, which tests may pause).
struct ByDeadline;

impl moka::Expiry<String, Arc<Cached>> for ByDeadline {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Cached>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        value
            .deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    fn expire_after_update(
        &self,
        key: &String,
        value: &Arc<Cached>,
        updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, value, updated_at)
    }
}

/// A bounded cache of parsed values, weighed by their serialized size.
#[derive(Clone)]
pub(crate) struct L1 {
    cache: Cache<String, Arc<Cached>>,
}

impl L1 {
    /// A cache holding at most `max_bytes` of serialized values.
    pub fn new(max_bytes: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_key: &String, value: &Arc<Cached>| value.weight)
            .expire_after(ByDeadline)
            .build();
        L1 { cache }
    }

    pub async fn get(&self, key: &str) -> Option<Arc<Cached>> {
        self.cache.get(key).await
    }

    pub async fn insert(&self, key: String, entry: Cached) {
        self.cache.insert(key, Arc::new(entry)).await;
    }

    pub async fn invalidate(&self, key: &str) {
        self.cache.invalidate(key).await;
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}

/// Globally unique epoch tokens: a random per-instance seed and a counter.
pub(crate) struct Epochs {
    seed: u64,
    origin: String,
    counter: AtomicU64,
}

impl Epochs {
    pub fn new() -> Self {
        use std::collections::hash_map::RandomState;
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        hasher.write_u32(std::process::id());
        let seed = hasher.finish();
        Epochs {
            seed,
            origin: seed
                .to_le_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            counter: AtomicU64::new(0),
        }
    }

    /// This instance's mark (hex), the same in every token it produces.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A token no instance has produced before.
    pub fn next(&self) -> Vec<u8> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut token = Vec::with_capacity(16);
        token.extend_from_slice(&self.seed.to_le_bytes());
        token.extend_from_slice(&n.to_le_bytes());
        token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_never_repeat() {
        let (a, b) = (Epochs::new(), Epochs::new());
        let tokens: std::collections::HashSet<Vec<u8>> =
            (0..100).flat_map(|_| [a.next(), b.next()]).collect();
        assert_eq!(tokens.len(), 200);
    }
}
