//! The JSON adapter: argument structs (with their JSON Schemas), the action list, the access
//! record every call appends, and [`Service`] for [`FilesService`].

use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use mcp_core::middleware::AuditRecord;
use mcp_core::{
    parse_params, to_result, ActionOutput, ActionSpec, BackendHealth, Error, Params,
    RequestContext, Result, Service,
};
use schemars::JsonSchema;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::{
    Created, Deleted, Diff, Edited, FileContent, FilesService, Listing, Locked, Moved, ReadMany,
    ReadRange, RootList, SearchResults, Stat, TextEdit, Tree, Unlocked, Versions, WriteOptions,
    Written,
};

/// Arguments of `read`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReadParams {
    /// Path relative to the first root, or absolute inside a root.
    path: String,
    /// First byte of a range.
    offset: Option<u64>,
    /// Bytes of a range (at most `max_read_bytes`).
    length: Option<u64>,
    /// Only the first N lines.
    head: Option<usize>,
    /// Only the last N lines.
    tail: Option<usize>,
    /// Read this version from history instead of the disk.
    version: Option<u64>,
}

/// Arguments of `read_many`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReadManyParams {
    /// Paths to read whole (at most 100).
    paths: Vec<String>,
}

/// Arguments of `write`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WriteParams {
    /// Path of the file; missing parent directories are created.
    path: String,
    /// Text content.
    content: Option<String>,
    /// Binary content, base64 (instead of `content`).
    content_base64: Option<String>,
    /// Fail with a conflict unless this is the current version.
    expected_version: Option<u64>,
    /// Fail with a conflict when the file exists.
    #[serde(default)]
    create_only: bool,
    /// Token of the lock on the path, when it is locked.
    lock_token: Option<u64>,
    /// fsync the file and its directory before answering.
    #[serde(default)]
    durable: bool,
}

/// Arguments of `edit`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EditParams {
    /// Path of a UTF-8 text file.
    path: String,
    /// Replacements applied in order; each `old_text` must occur exactly once.
    edits: Vec<TextEdit>,
    /// Only return the diff.
    #[serde(default)]
    dry_run: bool,
    /// Fail with a conflict unless this is the current version.
    expected_version: Option<u64>,
    /// Token of the lock on the path, when it is locked.
    lock_token: Option<u64>,
    /// fsync the file and its directory before answering.
    #[serde(default)]
    durable: bool,
}

/// Arguments of `delete`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DeleteParams {
    /// A file, a symlink or an empty directory.
    path: String,
    /// Fail with a conflict unless this is the current version.
    expected_version: Option<u64>,
    /// Token of the lock on the path, when it is locked.
    lock_token: Option<u64>,
}

/// Arguments of `move`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct MoveParams {
    /// The file to move.
    from: String,
    /// Its new path; missing parents are created.
    to: String,
    /// Replace an existing destination file.
    #[serde(default)]
    overwrite: bool,
    /// Token of the lock on the source or destination, when locked.
    lock_token: Option<u64>,
}

/// Arguments of `mkdir`, `stat`, `versions`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PathParams {
    /// The path.
    path: String,
}

/// Arguments of `list`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// The directory.
    path: String,
    /// Walk subdirectories too (symlinks are not followed).
    #[serde(default)]
    recursive: bool,
    /// Cursor from the previous page.
    cursor: Option<String>,
    /// Page size (default 100, at most 1000).
    limit: Option<usize>,
}

/// Arguments of `tree`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TreeParams {
    /// The directory.
    path: String,
    /// Levels below it (default 2, at most 8).
    depth: Option<usize>,
    /// Glob patterns of names to skip.
    #[serde(default)]
    exclude: Vec<String>,
}

/// Arguments of `search`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    /// The directory to search under.
    path: String,
    /// Glob over paths relative to `path` (over names when it has no `/`).
    glob: Option<String>,
    /// Text to find in files (case-sensitive substring).
    query: Option<String>,
    /// Most matches (default 100, at most 1000).
    limit: Option<usize>,
}

/// Arguments of `version`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct VersionParams {
    /// The file.
    path: String,
    /// Which version.
    version: u64,
}

/// Arguments of `diff`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DiffParams {
    /// The file.
    path: String,
    /// Older version.
    from_version: u64,
    /// Newer version (default: the latest).
    to_version: Option<u64>,
}

/// Arguments of `restore`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RestoreParams {
    /// The file.
    path: String,
    /// The version whose content becomes the new version.
    version: u64,
    /// Fail with a conflict unless this is the current version.
    expected_version: Option<u64>,
    /// Token of the lock on the path, when it is locked.
    lock_token: Option<u64>,
    /// fsync the file and its directory before answering.
    #[serde(default)]
    durable: bool,
}

/// Arguments of `lock`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LockParams {
    /// The path to lease (it need not exist yet).
    path: String,
    /// Lease length in ms (default 30000, at most one hour).
    ttl_ms: Option<u64>,
    /// Holder name (default: the caller's principal).
    owner: Option<String>,
}

/// Arguments of `unlock`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UnlockParams {
    /// The locked path.
    path: String,
    /// The token `lock` returned.
    token: u64,
}

/// Arguments of `roots`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// The actions, in contract order.
pub(crate) fn action_specs() -> Vec<ActionSpec> {
    vec![
        ActionSpec::new::<ReadParams, FileContent>(
            "read",
            "Read a file (or a byte range, or its first/last lines, or an older version); text as text, binary as base64.",
        )
        .read_only(),
        ActionSpec::new::<ReadManyParams, ReadMany>("read_many", "Read several files; each path gets its content or its error.").read_only(),
        ActionSpec::new::<WriteParams, Written>(
            "write",
            "Write a file atomically and record a version; optional expected_version, create_only and lock_token.",
        )
        .destructive(),
        ActionSpec::new::<EditParams, Edited>(
            "edit",
            "Replace exact text snippets in a file; returns a unified diff (dry_run only shows it).",
        )
        .destructive(),
        ActionSpec::new::<DeleteParams, Deleted>("delete", "Delete a file (history is kept), a symlink or an empty directory.").destructive(),
        ActionSpec::new::<MoveParams, Moved>("move", "Move a file; the destination gets a new version.").destructive(),
        ActionSpec::new::<PathParams, Created>("mkdir", "Create a directory and its parents.").idempotent(),
        ActionSpec::new::<ListParams, Listing>("list", "List a directory a page at a time, optionally recursively.").read_only(),
        ActionSpec::new::<TreeParams, Tree>("tree", "The directory tree to a bounded depth.").read_only(),
        ActionSpec::new::<SearchParams, SearchResults>("search", "Find files by glob and/or lines containing text.").read_only(),
        ActionSpec::new::<PathParams, Stat>("stat", "Kind, size, modification time, version and lock of a path.").read_only(),
        ActionSpec::new::<PathParams, Versions>("versions", "Version history of a file, newest first.").read_only(),
        ActionSpec::new::<VersionParams, FileContent>("version", "The content of one version of a file.").read_only(),
        ActionSpec::new::<DiffParams, Diff>("diff", "Unified diff between two versions of a file.").read_only(),
        ActionSpec::new::<RestoreParams, Written>("restore", "Make an older version the current content, as a new version.").destructive(),
        ActionSpec::new::<LockParams, Locked>("lock", "Lease a path; writes then need the returned fencing token.").destructive(),
        ActionSpec::new::<UnlockParams, Unlocked>("unlock", "Release a lease with its token.").idempotent(),
        ActionSpec::new::<NoParams, RootList>("roots", "The directories this service may access.").read_only(),
    ]
}

/// What an action touched, for the access record: its path and byte count.
///
/// `bytes` is what the action read or wrote: the content returned by `read`, `read_many` and
/// `version`; the content written by `write`, `restore` and `edit` (the edited file's new
/// size; 0 for a dry run, which writes nothing); the size of the file `move` moved; the size
/// of the file `delete` removed (0 for a symlink or a directory). Other actions move no file
/// content and leave it empty.
struct Touched {
    target: Option<String>,
    bytes: Option<u64>,
}

/// What a call is about, for its access record: its `path` or `from`, or how many `paths`.
fn target_of(params: &Params) -> Option<String> {
    match params {
        Params::Value(params) => {
            for field in ["path", "from"] {
                if let Some(path) = params.get(field).and_then(Value::as_str) {
                    return Some(path.to_owned());
                }
            }
            params
                .get("paths")
                .and_then(Value::as_array)
                .map(|paths| format!("{} paths", paths.len()))
        }
        Params::Json(json) => {
            // One pass over the text, every value left unparsed but these.
            let fields = serde_json::from_str::<TargetFields>(json.get()).ok()?;
            let text = |field: Option<&RawValue>| serde_json::from_str::<String>(field?.get()).ok();
            text(fields.path).or_else(|| text(fields.from)).or_else(|| {
                let paths = serde_json::from_str::<Vec<IgnoredAny>>(fields.paths?.get()).ok()?;
                Some(format!("{} paths", paths.len()))
            })
        }
    }
}

/// The fields [`target_of`] looks at, as they are written.
#[derive(Deserialize)]
struct TargetFields<'a> {
    #[serde(borrow)]
    path: Option<&'a RawValue>,
    #[serde(borrow)]
    from: Option<&'a RawValue>,
    #[serde(borrow)]
    paths: Option<&'a RawValue>,
}

fn range_of(p: &ReadParams) -> Result<ReadRange> {
    match (p.offset.or(p.length.map(|_| 0)), p.head, p.tail) {
        (None, None, None) => Ok(ReadRange::Whole),
        (Some(offset), None, None) => Ok(ReadRange::Bytes {
            offset,
            length: p.length,
        }),
        (None, Some(n), None) => Ok(ReadRange::Head(n)),
        (None, None, Some(n)) => Ok(ReadRange::Tail(n)),
        _ => Err(Error::InvalidArgument(
            "read: give at most one of offset/length, head, tail".into(),
        )),
    }
}

impl FilesService {
    async fn dispatch(
        &self,
        action: &str,
        params: Params,
        ctx: &RequestContext,
    ) -> Result<(ActionOutput, Option<u64>)> {
        let sized = |size: u64| Some(size);
        match action {
            "read" => {
                let p: ReadParams = parse_params(action, params)?;
                let result = match p.version {
                    Some(version) => {
                        if range_of(&p)? != ReadRange::Whole {
                            return Err(Error::InvalidArgument(
                                "read: a range cannot be combined with version".into(),
                            ));
                        }
                        self.version(&p.path, version).await?
                    }
                    None => self.read(&p.path, range_of(&p)?).await?,
                };
                let bytes = result.returned_len();
                Ok((result.to_output()?, sized(bytes)))
            }
            "read_many" => {
                let p: ReadManyParams = parse_params(action, params)?;
                let result = self.read_many(&p.paths).await?;
                let bytes = result
                    .results
                    .iter()
                    .filter_map(|entry| entry.result.as_ref().map(|r| r.size))
                    .sum();
                Ok((to_result(&result)?, sized(bytes)))
            }
            "write" => {
                let p: WriteParams = parse_params(action, params)?;
                let content = match (p.content, p.content_base64) {
                    (Some(text), None) => text.into_bytes(),
                    (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                        .decode(encoded.as_bytes())
                        .map_err(|err| {
                            Error::InvalidArgument(format!("write: content_base64: {err}"))
                        })?,
                    _ => {
                        return Err(Error::InvalidArgument(
                            "write: give exactly one of content and content_base64".into(),
                        ))
                    }
                };
                let options = WriteOptions {
                    expected_version: p.expected_version,
                    create_only: p.create_only,
                    lock_token: p.lock_token,
                    durable: p.durable,
                };
                let result = self.write(&p.path, content, options).await?;
                Ok((to_result(&result)?, sized(result.size)))
            }
            "edit" => {
                let p: EditParams = parse_params(action, params)?;
                let options = WriteOptions {
                    expected_version: p.expected_version,
                    lock_token: p.lock_token,
                    durable: p.durable,
                    ..WriteOptions::default()
                };
                let result = self.edit(&p.path, &p.edits, p.dry_run, options).await?;
                let written = if result.dry_run { 0 } else { result.size };
                Ok((to_result(&result)?, sized(written)))
            }
            "delete" => {
                let p: DeleteParams = parse_params(action, params)?;
                let result = self
                    .delete(&p.path, p.expected_version, p.lock_token)
                    .await?;
                Ok((to_result(&result)?, sized(result.size)))
            }
            "move" => {
                let p: MoveParams = parse_params(action, params)?;
                let result = self
                    .move_file(&p.from, &p.to, p.overwrite, p.lock_token)
                    .await?;
                Ok((to_result(&result)?, sized(result.size)))
            }
            "mkdir" => {
                let p: PathParams = parse_params(action, params)?;
                Ok((to_result(&self.mkdir(&p.path).await?)?, None))
            }
            "list" => {
                let p: ListParams = parse_params(action, params)?;
                let result = self
                    .list(&p.path, p.recursive, p.cursor.as_deref(), p.limit)
                    .await?;
                Ok((to_result(&result)?, None))
            }
            "tree" => {
                let p: TreeParams = parse_params(action, params)?;
                Ok((
                    to_result(&self.tree(&p.path, p.depth, p.exclude).await?)?,
                    None,
                ))
            }
            "search" => {
                let p: SearchParams = parse_params(action, params)?;
                let result = self.search(&p.path, p.glob, p.query, p.limit).await?;
                Ok((to_result(&result)?, None))
            }
            "stat" => {
                let p: PathParams = parse_params(action, params)?;
                Ok((to_result(&self.stat(&p.path).await?)?, None))
            }
            "versions" => {
                let p: PathParams = parse_params(action, params)?;
                Ok((to_result(&self.versions(&p.path).await?)?, None))
            }
            "version" => {
                let p: VersionParams = parse_params(action, params)?;
                let result = self.version(&p.path, p.version).await?;
                Ok((to_result(&result)?, sized(result.size)))
            }
            "diff" => {
                let p: DiffParams = parse_params(action, params)?;
                let result = self.diff(&p.path, p.from_version, p.to_version).await?;
                Ok((to_result(&result)?, None))
            }
            "restore" => {
                let p: RestoreParams = parse_params(action, params)?;
                let options = WriteOptions {
                    expected_version: p.expected_version,
                    lock_token: p.lock_token,
                    durable: p.durable,
                    ..WriteOptions::default()
                };
                let result = self.restore(&p.path, p.version, options).await?;
                Ok((to_result(&result)?, sized(result.size)))
            }
            "lock" => {
                let p: LockParams = parse_params(action, params)?;
                let owner = p
                    .owner
                    .or_else(|| ctx.principal().map(str::to_owned))
                    .unwrap_or_else(|| "anonymous".into());
                let result = self
                    .lock(&p.path, &owner, p.ttl_ms.map(Duration::from_millis))
                    .await?;
                Ok((to_result(&result)?, None))
            }
            "unlock" => {
                let p: UnlockParams = parse_params(action, params)?;
                Ok((to_result(&self.unlock(&p.path, p.token).await?)?, None))
            }
            "roots" => {
                let _: NoParams = parse_params(action, params)?;
                Ok((to_result(&self.roots())?, None))
            }
            other => Err(Error::NotFound(format!("unknown action `files/{other}`"))),
        }
    }
}

#[async_trait]
impl Service for FilesService {
    fn name(&self) -> &str {
        "files"
    }

    fn actions(&self) -> &[ActionSpec] {
        &self.actions
    }

    /// Runs the action and appends one access record (principal, action, path, outcome,
    /// bytes, duration) whatever the outcome. A failing audit log is reported in the logs and
    /// does not fail the action (the action already happened).
    async fn call(
        &self,
        action: &str,
        params: Params,
        ctx: &RequestContext,
    ) -> Result<ActionOutput> {
        let started = Instant::now();
        let mut touched = Touched {
            target: target_of(&params),
            bytes: None,
        };
        let outcome = self.dispatch(action, params, ctx).await;
        let (result, code) = match outcome {
            Ok((value, bytes)) => {
                touched.bytes = bytes;
                (Ok(value), "ok".to_owned())
            }
            Err(err) => {
                let code = err.code().to_owned();
                (Err(err), code)
            }
        };
        let record = AuditRecord {
            at_ms: mcp_core::unix_millis_now(),
            principal: ctx.principal().map(str::to_owned),
            service: "files".into(),
            action: action.to_owned(),
            target: touched.target,
            outcome: code,
            bytes: touched.bytes,
            duration_us: started.elapsed().as_micros() as u64,
            request_id: ctx.request_id().to_owned(),
        };
        if let Err(err) = self.audit.append(record).await {
            tracing::warn!(%err, action, "files access record not appended");
        }
        result
    }

    async fn health(&self) -> Vec<BackendHealth> {
        self.ping_all().await
    }

    fn cache_stats(&self) -> Option<mcp_core::CacheStats> {
        self.cache_stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_access_record_target_is_the_same_from_text_and_from_values() {
        for (args, target) in [
            (json!({"path": "a.txt", "content": "x"}), Some("a.txt")),
            (json!({"from": "old.txt", "to": "new.txt"}), Some("old.txt")),
            (json!({"paths": ["a", "b", "c"]}), Some("3 paths")),
            (json!({"path": null, "from": "b"}), Some("b")),
            (json!({"path": 3}), None),
            (json!({"query": "text"}), None),
            (json!([1, 2]), None),
            (Value::Null, None),
        ] {
            let text = serde_json::value::to_raw_value(&args).unwrap();
            assert_eq!(target_of(&Params::Json(text)).as_deref(), target, "{args}");
            assert_eq!(
                target_of(&Params::Value(args.clone())).as_deref(),
                target,
                "{args}"
            );
        }
    }
}
