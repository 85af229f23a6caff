//! Typed arguments and results of the memory actions; the results double as the JSON results
//! (their JSON Schemas are the actions' result schemas).

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::DEFAULT_TTL;

/// How [`MemoryService::store`](crate::MemoryService::store) stores a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Time to live; `None` keeps the value until it is deleted.
    pub ttl: Option<Duration>,
    /// Fail with `Conflict` when a live value already exists.
    pub if_absent: bool,
}

impl Default for StoreOptions {
    /// One hour ([`DEFAULT_TTL`]), overwriting.
    fn default() -> Self {
        StoreOptions {
            ttl: Some(DEFAULT_TTL),
            if_absent: false,
        }
    }
}

impl StoreOptions {
    /// Expires after `ttl`.
    pub fn ttl(ttl: Duration) -> Self {
        StoreOptions {
            ttl: Some(ttl),
            if_absent: false,
        }
    }

    /// Never expires.
    pub fn persistent() -> Self {
        StoreOptions {
            ttl: None,
            if_absent: false,
        }
    }

    /// Only store when no live value exists.
    pub fn if_absent(mut self) -> Self {
        self.if_absent = true;
        self
    }
}

/// Result of `store`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Stored {
    /// Always `stored`.
    pub status: String,
    /// The key, as given.
    pub key: String,
    /// The TTL in seconds (`0` = never expires).
    pub ttl: u64,
}

/// Result of `retrieve`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Retrieved {
    /// The stored JSON value.
    pub value: Value,
    /// Seconds until the value expires, rounded up; `null` when it never expires.
    pub ttl_remaining: Option<u64>,
}

/// Result of `retrieve_many`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RetrievedMany {
    /// The live values, by key.
    pub values: BTreeMap<String, Value>,
    /// The requested keys with no live value, in request order.
    pub missing: Vec<String>,
}

/// Arguments of [`MemoryService::search`](crate::MemoryService::search).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Redis-style glob over keys within the namespace (`*`, `?`, `[a-z]`, `\` escapes).
    pub pattern: String,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
    /// Page size (default from the config, at most its `max_search_limit`). Redis treats it
    /// as a hint, so a page may hold somewhat more keys.
    pub limit: Option<usize>,
    /// Also return the values of the keys found.
    pub with_values: bool,
}

/// Result of `search`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchPage {
    /// Matching keys in this page (without the namespace).
    pub keys: Vec<String>,
    /// With `with_values`: the values of those keys still live when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, Value>>,
    /// Cursor for the next page; `null` when the search is complete.
    pub next_cursor: Option<String>,
}

/// Result of `expire`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Expired {
    /// Whether a live value existed (and now has the new TTL, or was removed).
    pub expired: bool,
}

/// Result of `delete`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Deleted {
    /// Whether a live value was removed.
    pub deleted: bool,
}

/// Result of `ttl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TtlInfo {
    /// Seconds remaining, rounded up; `null` when the value never expires or does not exist.
    pub ttl: Option<u64>,
    /// Whether a live value exists.
    pub exists: bool,
}

/// Result of `stats`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Stats {
    /// Live keys in the namespace (at most the config's `stats_scan_limit`).
    pub keys: u64,
    /// Whether counting stopped at `stats_scan_limit`.
    pub keys_capped: bool,
    /// Reads answered from the L1 cache (without a cache: reads that found a value).
    pub hits: u64,
    /// Reads that went to the store (without a cache: reads that found nothing).
    pub misses: u64,
    /// `hits / (hits + misses)`, `0` before any read.
    pub hit_ratio: f64,
}
