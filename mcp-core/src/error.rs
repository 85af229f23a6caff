//! The one error type every service, backend and transport speaks, and its single mapping to
//! HTTP statuses, stable string codes and JSON-RPC error codes.

use std::time::Duration;

/// Result alias used across the workspace.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure a caller can see. Each variant maps to exactly one HTTP status
/// ([`Error::http_status`]), one stable code ([`Error::code`]) and one JSON-RPC code
/// ([`Error::jsonrpc_code`]); transports never invent their own mapping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service, action, key, path, document or version does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The arguments are malformed, of the wrong type, missing or out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An optimistic-concurrency precondition failed (e.g. `expected_version`); nothing changed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The resource is locked by another holder, or the presented lock token is not current.
    #[error("locked: {0}")]
    Locked(String),
    /// The caller is known but lacks the scope for this action.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The caller presented no credentials, or invalid ones.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The caller exceeded its rate; it may try again after `retry_after`.
    #[error("rate limited: retry after {} ms", retry_after.as_millis())]
    RateLimited {
        /// How long the caller should wait before the next attempt succeeds.
        retry_after: Duration,
    },
    /// The payload exceeds a configured size limit.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// A backend the action needs is down or unreachable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request deadline passed before the action finished.
    #[error("timeout: {0}")]
    Timeout(String),
    /// A bug or an unexpected backend answer; the message is safe to show.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Stable, snake_case code used in REST and WebSocket error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "not_found",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::Conflict(_) => "conflict",
            Error::Locked(_) => "locked",
            Error::PermissionDenied(_) => "permission_denied",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::RateLimited { .. } => "rate_limited",
            Error::PayloadTooLarge(_) => "payload_too_large",
            Error::Unavailable(_) => "unavailable",
            Error::Timeout(_) => "timeout",
            Error::Internal(_) => "internal",
        }
    }

    /// The HTTP status a REST transport answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::NotFound(_) => 404,
            Error::InvalidArgument(_) => 400,
            Error::Conflict(_) => 409,
            Error::Locked(_) => 423,
            Error::PermissionDenied(_) => 403,
            Error::Unauthenticated(_) => 401,
            Error::RateLimited { .. } => 429,
            Error::PayloadTooLarge(_) => 413,
            Error::Unavailable(_) => 503,
            Error::Timeout(_) => 504,
            Error::Internal(_) => 500,
        }
    }

    /// JSON-RPC error code for transports that report failures as JSON-RPC errors rather than
    /// as MCP tool results with `isError: true` (see [`Error::is_protocol_error`]).
    pub fn jsonrpc_code(&self) -> i64 {
        match self {
            Error::InvalidArgument(_) | Error::PayloadTooLarge(_) => -32602,
            Error::NotFound(_) => -32601,
            Error::Internal(_) => -32603,
            _ => -32000,
        }
    }

    /// Whether an MCP transport reports this as a JSON-RPC error (the request itself was not
    /// acceptable: unknown tool, caller not allowed) instead of a tool result with `isError`.
    pub fn is_protocol_error(&self) -> bool {
        matches!(
            self,
            Error::Unauthenticated(_) | Error::PermissionDenied(_) | Error::RateLimited { .. }
        )
    }

    /// Whether retrying the same request later may succeed (backend down, deadline, rate).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Unavailable(_) | Error::Timeout(_) | Error::RateLimited { .. }
        )
    }

    /// For [`Error::RateLimited`], how long to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The body every non-MCP transport sends: `{"code": "...", "message": "..."}`.
    pub fn to_body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "code": self.code(), "message": self.to_string() });
        if let Some(retry_after) = self.retry_after() {
            body["retry_after_ms"] = serde_json::json!(retry_after.as_millis() as u64);
        }
        body
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::InvalidArgument(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_distinct_status_and_code() {
        let all = [
            Error::NotFound("x".into()),
            Error::InvalidArgument("x".into()),
            Error::Conflict("x".into()),
            Error::Locked("x".into()),
            Error::PermissionDenied("x".into()),
            Error::Unauthenticated("x".into()),
            Error::RateLimited {
                retry_after: Duration::from_millis(1500),
            },
            Error::PayloadTooLarge("x".into()),
            Error::Unavailable("x".into()),
            Error::Timeout("x".into()),
            Error::Internal("x".into()),
        ];
        let statuses: std::collections::HashSet<u16> = all.iter().map(Error::http_status).collect();
        let codes: std::collections::HashSet<&str> = all.iter().map(Error::code).collect();
        assert_eq!(statuses.len(), all.len());
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn rate_limited_body_carries_retry_after() {
        let err = Error::RateLimited {
            retry_after: Duration::from_millis(1500),
        };
        let body = err.to_body();
        assert_eq!(body["code"], "rate_limited");
        assert_eq!(body["retry_after_ms"], 1500);
        assert_eq!(err.http_status(), 429);
        assert!(err.is_retryable());
    }
}
