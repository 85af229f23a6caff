//! Core of mcp-services: the [`Service`] trait, the [`Registry`] every transport dispatches
//! through, the [`RequestContext`] of a call, the one [`Error`] type with its HTTP/MCP mapping,
//! and the [`middleware`] layers (authorization, rate limiting, metrics, audit).
//!
//! This crate holds no storage code; backends live in `mcp-backends`.
//!
//! ```
//! use std::sync::Arc;
//! use mcp_core::{middleware::{Authorize, Metrics}, Registry, RequestContext};
//!
//! # async fn demo(memory: Arc<dyn mcp_core::Service>) -> mcp_core::Result<()> {
//! let registry = Registry::builder()
//!     .layer(Authorize)
//!     .layer(Metrics)
//!     .service(memory)
//!     .build()?;
//! let stored = registry
//!     .call("memory", "store", serde_json::json!({"key": "k", "value": 1}), &RequestContext::local())
//!     .await?;
//! # let _ = stored; Ok(()) }
//! ```

mod context;
mod error;
pub mod middleware;
mod registry;
mod service;

pub use context::{RequestContext, Scopes};
pub use error::{Error, Result};
pub use middleware::unix_millis_now;
pub use registry::{HealthReport, Registry, RegistryBuilder};
pub use service::{
    parse_params, to_result, ActionAnnotations, ActionOutput, ActionSpec, BackendHealth,
    CacheStats, Params, Service,
};
