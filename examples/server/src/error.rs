//! The one error type of the server crate: configuration and startup failures, and what the
//! client reports.

/// Failures of the server binary, its assembly and the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid or names a backend this build lacks.
    #[error("configuration: {0}")]
    Config(String),
    /// A service or backend failed (for the client: the server answered with this error).
    #[error(transparent)]
    Service(#[from] mcp_core::Error),
    /// A backend could not be connected at startup.
    #[error("backend: {0}")]
    Backend(#[from] mcp_backends::Error),
    /// Listening, reading or writing failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The client could not reach the server or the connection broke.
    #[error("transport: {0}")]
    Transport(String),
    /// The server answered something that is not the protocol.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}
