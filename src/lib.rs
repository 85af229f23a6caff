//! mcp-services: files, memory and context services for AI agents, as one library.
//!
//! This facade re-exports the workspace crates; pick backends with features:
//!
//! | feature    | enables |
//! |------------|---------|
//! | (default)  | in-memory backends only; no network, no server |
//! | `redis`    | Redis backends (key/value, locks, events, rate limits) |
//! | `postgres` | PostgreSQL backends (key/value, locks, versions, audit log) |
//! | `neo4j`    | Neo4j backends (vector index, graph) |
//! | `fastembed`| the all-MiniLM-L6-v2 embedder, run offline through ONNX Runtime |

pub use mcp_backends as backends;
pub use mcp_context as context;
pub use mcp_core as core;
pub use mcp_files as files;
pub use mcp_memory as memory;

pub use mcp_core::{Error, Registry, RequestContext, Result, Service};
