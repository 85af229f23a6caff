//! Limits of the memory service, with defaults suitable for agents.

use std::time::Duration;

/// TTL applied by the JSON `store` action when the caller gives none (one hour).
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// Limits the memory service enforces on every call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Longest key, in bytes (default 512). Empty keys are always rejected.
    pub max_key_bytes: usize,
    /// Longest namespace, in bytes (default 128).
    pub max_namespace_bytes: usize,
    /// Largest value, as serialized JSON bytes (default 1 MiB); larger is `PayloadTooLarge`.
    pub max_value_bytes: usize,
    /// Longest TTL (default 10 years); longer is `InvalidArgument`.
    pub max_ttl: Duration,
    /// Page size of `search` when the caller gives none (default 100).
    pub default_search_limit: usize,
    /// Largest page size of `search` (default 1000).
    pub max_search_limit: usize,
    /// Most keys in one `retrieve_many` (default 1000).
    pub max_batch_keys: usize,
    /// Most keys `stats` counts before it stops and reports the count as capped
    /// (default 100 000).
    pub stats_scan_limit: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_key_bytes: 512,
            max_namespace_bytes: 128,
            max_value_bytes: 1024 * 1024,
            max_ttl: Duration::from_secs(10 * 365 * 24 * 3600 + 2 * 24 * 3600),
            default_search_limit: 100,
            max_search_limit: 1000,
            max_batch_keys: 1000,
            stats_scan_limit: 100_000,
        }
    }
}
