//! The memory service: JSON values under string keys, per namespace, with TTLs, over any
//! [`KvStore`](mcp_backends::KvStore) — in-memory, Redis or PostgreSQL.
//!
//! | action | arguments | result |
//! |---|---|---|
//! | `store` | `key`, `value`, `ttl`? (s, default 3600, 0 = none), `namespace`?, `if_absent`? | [`Stored`] |
//! | `retrieve` | `key`, `namespace`? | [`Retrieved`]; missing → `NotFound` |
//! | `retrieve_many` | `keys`, `namespace`? | [`RetrievedMany`] |
//! | `search` | `pattern`, `namespace`?, `cursor`?, `limit`?, `with_values`? | [`SearchPage`] |
//! | `expire` | `key`, `ttl`? (absent or 0 → remove now), `namespace`? | [`Expired`] |
//! | `delete` | `key`, `namespace`? | [`Deleted`] |
//! | `ttl` | `key`, `namespace`? | [`TtlInfo`] |
//! | `stats` | `namespace`? | [`Stats`] |
//!
//! The namespace of a JSON call is its `namespace` argument, else the request context's,
//! else `default`. A value lives under the store key `mem:{namespace}:{key}`; namespaces may
//! not contain `:` and searches are confined to their namespace's escaped prefix, so one
//! namespace never sees another's keys. Limits are in [`MemoryConfig`].
//!
//! # L1 cache and coherence between instances
//!
//! [`MemoryService::builder`] can put a bounded moka cache of parsed values in front of a
//! remote store and connect an [`EventBus`](mcp_backends::EventBus). Several instances may
//! share one store: **a read that begins after a write returned (on any instance) never sees
//! the value before that write.** This holds without relying on event delivery: each write
//! replaces a per-key epoch token (`memv:{namespace}:{key}`) before returning, and a cache
//! hit is served only when the token read at the start of the read equals the one the entry
//! was filled under. A hit therefore costs one small store lookup (the epoch token) instead
//! of fetching and parsing the value; that round trip is unavoidable for the guarantee.
//! Writes also evict locally and publish `{"key": ..., "epoch": ...}` on
//! [`INVALIDATION_TOPIC`] before returning; every instance evicts on those events (unless its
//! entry already carries that epoch) and clears everything on a lag, to free memory early.
//! Reads concurrent with a write may return either the old or the new value.
//!
//! With an event bus, an instance also announces on [`EXPIRY_TOPIC`] when a value it stored
//! with a TTL runs out (best effort; see [`ExpiryNotice`] and the `expiry` module notes).
//!
//! Limits of the guarantee: it assumes the store is linearizable per key (one Redis primary,
//! or PostgreSQL; not reads from asynchronously replicated Redis replicas), and that every
//! writer goes through `MemoryService` — a value changed behind its back keeps its epoch, so
//! a cached copy may be served until its TTL. A write that fails after changing the value but
//! before renewing the epoch returns an error, and cached copies of the old value may be
//! served until the next successful write of that key or their TTL.
//!
//! ```
//! use std::sync::Arc;
//! use mcp_backends::memory::MemoryKvStore;
//! use mcp_core::{Registry, RequestContext};
//! use mcp_memory::{MemoryService, StoreOptions};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mcp_core::Result<()> {
//! let memory = Arc::new(MemoryService::new(Arc::new(MemoryKvStore::new())));
//! memory.store("notes", "todo", &json!(["write docs"]), StoreOptions::default()).await?;
//! assert_eq!(memory.retrieve("notes", "todo").await?.value, json!(["write docs"]));
//!
//! let registry = Registry::builder().service(memory).build()?;
//! let ctx = RequestContext::local().with_namespace("notes");
//! let found = registry.call("memory", "retrieve", json!({"key": "todo"}), &ctx).await?.to_value()?;
//! assert_eq!(found["value"], json!(["write docs"]));
//! # Ok(()) }
//! ```

mod api;
mod cache;
mod config;
mod expiry;
mod service;
mod types;

pub use cache::INVALIDATION_TOPIC;
pub use config::{MemoryConfig, DEFAULT_TTL};
pub use expiry::{ExpiryNotice, EXPIRY_TOPIC, MAX_PENDING};
pub use service::{MemoryService, MemoryServiceBuilder};
pub use types::{
    Deleted, Expired, Retrieved, RetrievedMany, SearchPage, SearchQuery, Stats, StoreOptions,
    Stored, TtlInfo,
};
