//! Storage for mcp-services: one trait per kind of state, an in-memory implementation of each
//! (always built), and real backends behind features.
//!
//! | trait | in-memory ([`memory`]) | real backends |
//! |---|---|---|
//! | [`KvStore`] | `MemoryKvStore` | `redis`, `postgres` |
//! | [`LockManager`] | `MemoryLockManager` | `redis` (`RedisLockManager`: Lua scripts, `SET NX PX` lease + `INCR` fencing counter), `postgres` (`PostgresLockManager`: one-statement upsert, server-clock expiry) |
//! | [`VersionStore`] | `MemoryVersionStore` | `postgres` (`PostgresVersionStore`: BLAKE3-keyed blobs stored once, `(path, version)` primary key) |
//! | [`AuditLog`] | `MemoryAuditLog` (bounded ring) | `postgres` (`PostgresAuditLog`: unbounded, an index per query filter) |
//! | [`EventBus`] | `MemoryEventBus` | `redis` |
//! | [`VectorIndex`] | `MemoryVectorIndex` (exact), `HnswVectorIndex` (approximate, HNSW) | `neo4j` (`Neo4jVectorIndex`: native vector index, exact scan for small or selective searches) |
//! | [`GraphStore`] | `MemoryGraphStore` | `neo4j` (`Neo4jGraphStore`: full-text index, optional namespace) |
//! | [`RateLimiter`] | [`GcraLimiter`] (from `mcp-core`) | `redis` (`RedisRateLimiter`: the same GCRA in a Lua script on the server clock, one budget shared by every instance) |
//!
//! | feature | what it adds |
//! |---|---|
//! | `redis` | Redis backends (the `redis` crate) |
//! | `postgres` | PostgreSQL backends (`sqlx`) |
//! | `neo4j` | Neo4j backends (`neo4rs`) |
//! | `testing` | [`testing`]: the conformance suite every backend must pass |
//!
//! Every trait documents the semantics its backends share; the conformance suite in
//! [`testing`] checks them, and each backend's tests run the same suite.

pub mod audit;
mod error;
pub mod events;
pub mod glob;
pub mod graph;
pub mod kv;
pub mod lock;
pub mod memory;
#[cfg(feature = "neo4j")]
pub mod neo4j;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vector;
pub mod version;

pub use audit::{AuditLog, AuditLogSink, AuditQuery};
pub use error::{Error, Result};
pub use events::{Delivery, Event, EventBus, Subscription};
pub use graph::{Edge, GraphStore, Node, NodeHit, NodePage, Subgraph};
pub use kv::{KeyTtl, KvStore, ScanPage, SetOptions};
pub use lock::{validate_ttl, Lease, LockManager, LockManagerExt, MAX_LEASE_TTL};
pub use mcp_core::middleware::{AuditRecord, GcraLimiter, Quota, RateLimiter};
pub use vector::{Metadata, VectorHit, VectorIndex, VectorRecord};
pub use version::{content_hash, Expect, VersionInfo, VersionStore};
