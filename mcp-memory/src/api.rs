//! The JSON adapter: argument structs (with their JSON Schemas), the action list, and
//! [`Service`] for [`MemoryService`].

use std::time::Duration;

use async_trait::async_trait;
use mcp_core::{
    parse_params, to_result, ActionOutput, ActionSpec, BackendHealth, Error, Params,
    RequestContext, Result, Service,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::{
    Deleted, Expired, MemoryService, Retrieved, RetrievedMany, SearchPage, SearchQuery, Stats,
    StoreOptions, Stored, TtlInfo, DEFAULT_TTL,
};

/// Arguments of `store`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StoreParams {
    /// The key (1 to 512 bytes).
    key: String,
    /// Any JSON value (at most 1 MiB serialized).
    value: Value,
    /// Seconds to live (default 3600; 0 = never expires; at most 10 years).
    ttl: Option<u64>,
    /// Namespace (default: the caller's, else `default`).
    namespace: Option<String>,
    /// Fail with a conflict when a live value exists.
    #[serde(default)]
    if_absent: bool,
}

/// Arguments of `retrieve`, `delete` and `ttl`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct KeyParams {
    /// The key.
    key: String,
    /// Namespace (default: the caller's, else `default`).
    namespace: Option<String>,
}

/// Arguments of `retrieve_many`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct KeysParams {
    /// The keys (at most 1000).
    keys: Vec<String>,
    /// Namespace (default: the caller's, else `default`).
    namespace: Option<String>,
}

/// Arguments of `search`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    /// Glob over keys: `*`, `?`, `[a-z]`, `[^a]`, `\` escapes.
    pattern: String,
    /// Namespace (default: the caller's, else `default`).
    namespace: Option<String>,
    /// Cursor from the previous page.
    cursor: Option<String>,
    /// Page size (default 100, at most 1000).
    limit: Option<usize>,
    /// Also return the values.
    #[serde(default)]
    with_values: bool,
}

/// Arguments of `expire`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ExpireParams {
    /// The key.
    key: String,
    /// New time to live in seconds; absent or 0 removes the value now.
    ttl: Option<u64>,
    /// Namespace (default: the caller's, else `default`).
    namespace: Option<String>,
}

/// Arguments of `stats`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StatsParams {
    /// Namespace whose keys are counted (default: the caller's, else `default`).
    namespace: Option<String>,
}

/// The actions, in contract order.
pub(crate) fn action_specs() -> Vec<ActionSpec> {
    vec![
        ActionSpec::new::<StoreParams, Stored>(
            "store",
            "Store a JSON value under a key, with a TTL in seconds (default 3600, 0 = none).",
        )
        .destructive(),
        ActionSpec::new::<KeyParams, Retrieved>(
            "retrieve",
            "Read the value under a key and its remaining TTL; missing or expired is not found.",
        )
        .read_only(),
        ActionSpec::new::<KeysParams, RetrievedMany>(
            "retrieve_many",
            "Read several keys at once; missing ones are listed.",
        )
        .read_only(),
        ActionSpec::new::<SearchParams, SearchPage>(
            "search",
            "List keys matching a glob pattern, a page at a time, optionally with values.",
        )
        .read_only(),
        ActionSpec::new::<ExpireParams, Expired>(
            "expire",
            "Set a new TTL on a key; without a TTL (or 0) the value is removed now.",
        )
        .destructive()
        .idempotent(),
        ActionSpec::new::<KeyParams, Deleted>("delete", "Remove a key.")
            .destructive()
            .idempotent(),
        ActionSpec::new::<KeyParams, TtlInfo>(
            "ttl",
            "Seconds until a key expires (null when it never does), and whether it exists.",
        )
        .read_only(),
        ActionSpec::new::<StatsParams, Stats>(
            "stats",
            "Number of keys in the namespace and this instance's cache hits and misses.",
        )
        .read_only(),
    ]
}

/// The namespace of a call: the argument, else the caller's, else `default`.
fn namespace<'a>(argument: &'a Option<String>, ctx: &'a RequestContext) -> &'a str {
    argument
        .as_deref()
        .or_else(|| ctx.namespace())
        .unwrap_or("default")
}

fn seconds(ttl: u64) -> Duration {
    Duration::from_secs(ttl)
}

#[async_trait]
impl Service for MemoryService {
    fn name(&self) -> &str {
        "memory"
    }

    fn actions(&self) -> &[ActionSpec] {
        &self.actions
    }

    async fn call(
        &self,
        action: &str,
        params: Params,
        ctx: &RequestContext,
    ) -> Result<ActionOutput> {
        match action {
            "store" => {
                let p: StoreParams = parse_params(action, params)?;
                let options = StoreOptions {
                    ttl: Some(p.ttl.map_or(DEFAULT_TTL, seconds)),
                    if_absent: p.if_absent,
                };
                let ns = namespace(&p.namespace, ctx);
                to_result(&self.store(ns, &p.key, &p.value, options).await?)
            }
            "retrieve" => {
                let p: KeyParams = parse_params(action, params)?;
                to_result(&self.retrieve(namespace(&p.namespace, ctx), &p.key).await?)
            }
            "retrieve_many" => {
                let p: KeysParams = parse_params(action, params)?;
                to_result(
                    &self
                        .retrieve_many(namespace(&p.namespace, ctx), &p.keys)
                        .await?,
                )
            }
            "search" => {
                let p: SearchParams = parse_params(action, params)?;
                let query = SearchQuery {
                    pattern: p.pattern,
                    cursor: p.cursor,
                    limit: p.limit,
                    with_values: p.with_values,
                };
                to_result(&self.search(namespace(&p.namespace, ctx), query).await?)
            }
            "expire" => {
                let p: ExpireParams = parse_params(action, params)?;
                let ns = namespace(&p.namespace, ctx);
                to_result(&self.expire(ns, &p.key, p.ttl.map(seconds)).await?)
            }
            "delete" => {
                let p: KeyParams = parse_params(action, params)?;
                to_result(&self.delete(namespace(&p.namespace, ctx), &p.key).await?)
            }
            "ttl" => {
                let p: KeyParams = parse_params(action, params)?;
                to_result(&self.ttl(namespace(&p.namespace, ctx), &p.key).await?)
            }
            "stats" => {
                let p: StatsParams = parse_params(action, params)?;
                to_result(&self.stats(namespace(&p.namespace, ctx)).await?)
            }
            other => Err(Error::NotFound(format!("unknown action `memory/{other}`"))),
        }
    }

    async fn health(&self) -> Vec<BackendHealth> {
        self.ping_all().await
    }

    /// Reads that found a live value (from the L1 cache, if any, or the store) and reads that
    /// did not, as in `stats`.
    fn cache_stats(&self) -> Option<mcp_core::CacheStats> {
        Some(self.read_counts())
    }
}
