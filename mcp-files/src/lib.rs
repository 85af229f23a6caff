//! The files service: sandboxed file I/O for agents, with versions, leases, a coherent L1
//! cache and an access log, over pluggable backends.
//!
//! | action | arguments | result |
//! |---|---|---|
//! | `read` | `path`, `offset`?/`length`? or `head`?/`tail`?, `version`? | [`FileContent`] (`source`: `cache`/`disk`/`history`) |
//! | `read_many` | `paths` | [`ReadMany`] |
//! | `write` | `path`, `content` or `content_base64`, `expected_version`?, `create_only`?, `lock_token`?, `durable`? | [`Written`] |
//! | `edit` | `path`, `edits` [{`old_text`, `new_text`}], `dry_run`?, `expected_version`?, `lock_token`?, `durable`? | [`Edited`] (unified diff) |
//! | `delete` | `path`, `expected_version`?, `lock_token`? | [`Deleted`] |
//! | `move` | `from`, `to`, `overwrite`?, `lock_token`? | [`Moved`] |
//! | `mkdir` | `path` | [`Created`] |
//! | `list` | `path`, `recursive`?, `cursor`?, `limit`? | [`Listing`] |
//! | `tree` | `path`, `depth`?, `exclude`? | [`Tree`] |
//! | `search` | `path`, `glob`?, `query`?, `limit`? | [`SearchResults`] |
//! | `stat` | `path` | [`Stat`] |
//! | `versions` | `path` | [`Versions`] |
//! | `version` | `path`, `version` | [`FileContent`] |
//! | `diff` | `path`, `from_version`, `to_version`? | [`Diff`] |
//! | `restore` | `path`, `version`, `expected_version`?, `lock_token`?, `durable`? | [`Written`] |
//! | `lock` | `path`, `ttl_ms`?, `owner`? | [`Locked`] (fencing `token`) |
//! | `unlock` | `path`, `token` | [`Unlocked`] |
//! | `roots` | — | [`RootList`] |
//!
//! | backend role | trait | in memory | real |
//! |---|---|---|---|
//! | versions + blobs | `VersionStore` | `MemoryVersionStore` | PostgreSQL (feature `postgres`) |
//! | leases | `LockManager` | `MemoryLockManager` | Redis (`redis`), PostgreSQL (`postgres`) |
//! | access log | `AuditLog` | `MemoryAuditLog` | PostgreSQL (`postgres`) |
//! | invalidations | `EventBus` | `MemoryEventBus` | Redis (`redis`) |
//!
//! **Sandbox** — see the `sandbox` module: every path goes through a `cap_std::fs::Dir` per
//! root, so `..`, absolute paths outside the roots, symlinks leading outside, and paths
//! swapped for symlinks mid-operation cannot reach anything outside. Paths in results are
//! relative for the first root and absolute for the others.
//!
//! **Writes** are atomic (temp file on the same filesystem, then rename) and versioned; a
//! refused write, move or restore creates no directory. See [`FilesService`] for the
//! ordering. **Files larger than `max_write_bytes`** can be read by
//! range but are not versioned (their `version` is the latest recorded one, 0 if none, and
//! they carry no hash). Directories are not versioned and `move` moves files only.
//!
//! **Cache** — see the `cache` module: moka, weighed by bytes, invalidated by this service's
//! writes, by a `notify` watcher on the roots and by other instances over the event bus.
//!
//! **Access log** — every JSON call appends an `AuditRecord` (principal, action, path,
//! outcome, bytes, duration) to the `AuditLog`. `bytes` is the content read or written; for
//! `edit` the edited file's size (0 for a dry run), for `move` the size moved, for `delete`
//! the size removed (0 for a symlink or a directory). The typed methods do not; they are the
//! building blocks of the JSON calls.
//!
//! ```
//! use std::sync::Arc;
//! use mcp_core::{Registry, RequestContext};
//! use mcp_files::{FilesConfig, FilesService, ReadRange, WriteOptions};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> mcp_core::Result<()> {
//! let root = std::env::temp_dir().join(format!("mcp-files-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&root).unwrap();
//! let files = Arc::new(FilesService::in_memory(FilesConfig::new([&root]))?);
//! let written = files.write("notes/todo.md", b"- docs\n".to_vec(), WriteOptions::default()).await?;
//! assert_eq!(written.version, 1);
//! assert_eq!(files.read("notes/todo.md", ReadRange::Whole).await?.content.as_deref(), Some("- docs\n"));
//!
//! let registry = Registry::builder().service(files).build()?;
//! let read = registry.call("files", "read", json!({"path": "notes/todo.md"}), &RequestContext::local()).await?;
//! // The result is JSON text, serialized once; `to_value` parses it for a look inside.
//! let read = read.to_value()?;
//! assert_eq!(read["version"], 1);
//! # std::fs::remove_dir_all(&root).unwrap();
//! # Ok(()) }
//! ```

mod api;
mod cache;
mod config;
mod sandbox;
mod service;
mod types;

pub use cache::INVALIDATION_TOPIC;
pub use config::FilesConfig;
pub use service::{FilesService, FilesServiceBuilder};
pub use types::{
    Created, Deleted, Diff, Edited, Entry, FileContent, Kind, Listing, LockInfo, Locked, Moved,
    ReadMany, ReadManyEntry, ReadRange, RootInfo, RootList, SearchMatch, SearchResults, SharedText,
    Source, Stat, TextEdit, Tree, TreeNode, Unlocked, VersionEntry, Versions, WriteOptions,
    Written,
};
