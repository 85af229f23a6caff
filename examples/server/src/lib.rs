//! `mcp-server`: the files, memory and context services over MCP (stdio and Streamable HTTP),
//! REST, WebSocket, with bearer API keys, scopes, rate limits and Prometheus metrics; and a
//! small Rust [`client`] for the REST and WebSocket transports.
//!
//! The library part holds everything the binary uses, so tests and benches can build the same
//! router in process:
//!
//! ```no_run
//! # async fn demo() -> Result<(), mcp_server::Error> {
//! use mcp_server::{config::ServerConfig, App};
//! let app = App::build(ServerConfig::default()).await?;
//! let router = mcp_server::http::router(app, Default::default());
//! # let _ = router; Ok(()) }
//! ```

pub mod assemble;
pub mod audit_buffer;
pub mod auth;
pub mod client;
pub mod config;
mod error;
pub mod http;
pub mod limiter;
pub mod mcp;
pub mod serve;
pub mod stdio;
mod ws;

pub use assemble::App;
pub use error::Error;
