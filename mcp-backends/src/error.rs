//! The error every backend trait returns, and its conversion into the caller-facing
//! [`mcp_core::Error`].

/// Result alias for backend operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in a storage backend. Real backends map their client errors into these
/// (connection failures become [`Error::Unavailable`]) and keep the backend's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key, path, version, lock, node or record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A create-only operation found the item already there.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// An optimistic-concurrency precondition (expected version) failed; nothing changed.
    #[error("precondition failed: {0}")]
    Precondition(String),
    /// The resource is held by another lock owner, or a lock token is not the current one.
    #[error("locked: {0}")]
    Locked(String),
    /// The request is malformed for this backend (bad pattern, wrong vector dimension, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The backend could not be reached.
    #[error("{backend} is unavailable: {message}")]
    Unavailable {
        /// Backend name (`redis`, `postgres`, `neo4j`).
        backend: &'static str,
        /// What failed.
        message: String,
    },
    /// The backend did not answer in time.
    #[error("{backend} did not answer in time")]
    Timeout {
        /// Backend name.
        backend: &'static str,
    },
    /// The backend does not implement this operation.
    #[error("{backend} does not support {operation}")]
    Unsupported {
        /// Backend name.
        backend: &'static str,
        /// The operation asked for.
        operation: &'static str,
    },
    /// Any other failure reported by the backend.
    #[error("{backend} error: {message}")]
    Backend {
        /// Backend name.
        backend: &'static str,
        /// What failed.
        message: String,
    },
}

impl From<Error> for mcp_core::Error {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match err {
            Error::NotFound(m) => mcp_core::Error::NotFound(m),
            Error::AlreadyExists(_) | Error::Precondition(_) => mcp_core::Error::Conflict(message),
            Error::Locked(m) => mcp_core::Error::Locked(m),
            Error::InvalidArgument(m) => mcp_core::Error::InvalidArgument(m),
            Error::Unavailable { .. } => mcp_core::Error::Unavailable(message),
            Error::Timeout { .. } => mcp_core::Error::Timeout(message),
            Error::Unsupported { .. } => mcp_core::Error::InvalidArgument(message),
            Error::Backend { .. } => mcp_core::Error::Internal(message),
        }
    }
}
