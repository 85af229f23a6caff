//! In-memory backends: always built, no I/O, used by tests and the embedded default.
//! Expiry uses tokio's clock, so tests can pause and advance time.

mod audit;
mod events;
mod graph;
mod hnsw;
mod kv;
mod lock;
mod vector;
mod version;

pub use audit::MemoryAuditLog;
pub use events::MemoryEventBus;
pub use graph::MemoryGraphStore;
pub use hnsw::{HnswConfig, HnswVectorIndex};
pub use kv::MemoryKvStore;
pub use lock::MemoryLockManager;
pub use vector::MemoryVectorIndex;
pub use version::MemoryVersionStore;
