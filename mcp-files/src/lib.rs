//! The files service (sandboxed I/O with versions, locks, cache and access log) is not
//! implemented yet; see the project's files issue. The crate exists so the workspace layout
//! and the facade's re-export are in place.
