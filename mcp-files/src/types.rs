//! Typed options and results of the files actions; the results double as the JSON results
//! (their JSON Schemas are the actions' result schemas).

use std::borrow::Cow;
use std::ops::Deref;
use std::sync::Arc;

use mcp_core::{to_result, ActionOutput};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// Which part of a file [`FilesService::read`](crate::FilesService::read) returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadRange {
    /// The whole file (at most `max_read_bytes`).
    #[default]
    Whole,
    /// `length` bytes (default: up to `max_read_bytes`) from byte `offset`.
    Bytes {
        /// First byte.
        offset: u64,
        /// How many bytes; `None` reads to the end, capped at `max_read_bytes`.
        length: Option<u64>,
    },
    /// The first `n` lines.
    Head(usize),
    /// The last `n` lines.
    Tail(usize),
}

/// Where a read was served from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The L1 cache.
    Cache,
    /// The filesystem.
    Disk,
    /// The version store (a read of an older version).
    History,
}

/// Text shared with the files cache, which keeps a cached file's JSON string form beside it:
/// the file is escaped for JSON once, when it is cached, instead of on every read (escaping
/// was a third of the CPU of a cached 1 KB read, `BENCHMARKS.md`). It reads as a `str`.
#[derive(Clone, Debug)]
pub struct SharedText {
    text: Arc<str>,
    /// `text` as a JSON string, when the cache made it.
    json: Option<Arc<RawValue>>,
}

impl SharedText {
    /// The same text with its JSON string form made, if it was not yet.
    pub(crate) fn with_json_made(self) -> Self {
        let json = self.json_form();
        SharedText { json, ..self }
    }

    /// The text as a JSON string: the one the cache made, or made now.
    fn json_form(&self) -> Option<Arc<RawValue>> {
        (self.json.clone()).or_else(|| {
            serde_json::value::to_raw_value(&*self.text)
                .ok()
                .map(Arc::from)
        })
    }

    /// Bytes held besides the text (its JSON form), for the cache's weight.
    pub(crate) fn extra_bytes(&self) -> usize {
        self.json.as_ref().map_or(0, |json| json.get().len())
    }
}

impl Deref for SharedText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl From<Arc<str>> for SharedText {
    fn from(text: Arc<str>) -> Self {
        SharedText { text, json: None }
    }
}

impl From<String> for SharedText {
    fn from(text: String) -> Self {
        SharedText::from(Arc::<str>::from(text))
    }
}

impl From<&str> for SharedText {
    fn from(text: &str) -> Self {
        SharedText::from(Arc::<str>::from(text))
    }
}

impl PartialEq for SharedText {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for SharedText {}

impl Serialize for SharedText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for SharedText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SharedText::from)
    }
}

impl JsonSchema for SharedText {
    fn schema_name() -> Cow<'static, str> {
        String::schema_name()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        String::json_schema(generator)
    }
}

/// Result of `read` and `version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileContent {
    /// The path as it resolves inside its root.
    pub path: String,
    /// The content (or the requested part) when it is UTF-8 text. Shared with the cache, so
    /// a cached whole-file read copies nothing (and escapes nothing for JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<SharedText>,
    /// The content (or the requested part), base64, when it is binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
    /// Size of the whole file in bytes.
    pub size: u64,
    /// The file's version in the version store; 0 for a file too large to be versioned.
    pub version: u64,
    /// BLAKE3 of the whole content (absent for files too large to be versioned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Whether only part of the file was returned.
    pub partial: bool,
    /// `cache`, `disk`, or `history` (an older version from the version store).
    pub source: Source,
}

/// A [`FileContent`]'s fields besides its text, as serde derives them: the JSON result's other
/// piece ([`FileContent::to_output`]).
struct FieldsBesideText<'a>(&'a FileContent);

impl Serialize for FieldsBesideText<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let file = self.0;
        let mut out = serializer.serialize_struct("FileContent", 7)?;
        out.serialize_field("path", &file.path)?;
        out.skip_field("content")?;
        match &file.content_base64 {
            Some(encoded) => out.serialize_field("content_base64", encoded)?,
            None => out.skip_field("content_base64")?,
        }
        out.serialize_field("size", &file.size)?;
        out.serialize_field("version", &file.version)?;
        match &file.hash {
            Some(hash) => out.serialize_field("hash", hash)?,
            None => out.skip_field("hash")?,
        }
        out.serialize_field("partial", &file.partial)?;
        out.serialize_field("source", &file.source)?;
        out.end()
    }
}

impl FileContent {
    /// The JSON result. Text goes beside the other fields, as the JSON string the cache keeps
    /// (escaped now when it was not cached), so MCP shows it as text of its own without
    /// parsing the result; binary content is a field like the others.
    pub(crate) fn to_output(&self) -> mcp_core::Result<ActionOutput> {
        match self.content.as_ref().and_then(SharedText::json_form) {
            Some(json) => ActionOutput::with_text("content", json, &FieldsBesideText(self)),
            None => to_result(self),
        }
    }

    /// The returned bytes, whichever field carries them.
    pub fn bytes(&self) -> Vec<u8> {
        use base64::Engine;
        match (&self.content, &self.content_base64) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }

    /// How many bytes of the file were returned, without decoding or copying them.
    pub fn returned_len(&self) -> u64 {
        match (&self.content, &self.content_base64) {
            (Some(text), _) => text.len() as u64,
            (None, Some(encoded)) => {
                let padding = encoded
                    .bytes()
                    .rev()
                    .take_while(|&byte| byte == b'=')
                    .count();
                (encoded.len() / 4 * 3).saturating_sub(padding) as u64
            }
            (None, None) => 0,
        }
    }
}

/// One entry of `read_many`: the content or the error for that path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReadManyEntry {
    /// The path as given.
    pub path: String,
    /// The read, when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<FileContent>,
    /// `{code, message}`, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

/// Result of `read_many`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReadMany {
    /// One entry per requested path, in request order.
    pub results: Vec<ReadManyEntry>,
}

/// How [`FilesService::write`](crate::FilesService::write) writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Fail with `Conflict` (and change nothing) unless the latest version is this one.
    pub expected_version: Option<u64>,
    /// Fail with `Conflict` when the file exists.
    pub create_only: bool,
    /// The fencing token of the lock on the path, when it is locked.
    pub lock_token: Option<u64>,
    /// `fsync` the file and its directory before returning.
    pub durable: bool,
}

/// Result of `write` and `restore`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Written {
    /// The path as it resolves inside its root.
    pub path: String,
    /// The new version.
    pub version: u64,
    /// BLAKE3 of the content.
    pub hash: String,
    /// Bytes written.
    pub size: u64,
}

/// One replacement of `edit`: `old_text` must occur exactly once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TextEdit {
    /// Text to replace; must occur exactly once in the file (after the previous edits),
    /// counting overlapping occurrences (`aa` occurs twice in `aaa`).
    pub old_text: String,
    /// Replacement.
    pub new_text: String,
}

/// Result of `edit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Edited {
    /// The path as it resolves inside its root.
    pub path: String,
    /// Unified diff from the current content to the edited one.
    pub diff: String,
    /// The new version, or the current one for a dry run.
    pub version: u64,
    /// Bytes of the edited file (for a dry run, the size it would have).
    pub size: u64,
    /// Whether nothing was written.
    pub dry_run: bool,
}

/// Result of `delete`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Deleted {
    /// The path as it resolved inside its root.
    pub path: String,
    /// Always true when the call succeeds.
    pub deleted: bool,
    /// The version recording the deletion (0 for an empty directory, which has no history).
    pub version: u64,
    /// Bytes of the removed file (0 for a symlink or a directory).
    pub size: u64,
}

/// Result of `move`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Moved {
    /// The source path.
    pub from: String,
    /// The new path.
    pub path: String,
    /// The version of the new path.
    pub version: u64,
    /// Bytes of the moved file.
    pub size: u64,
}

/// Result of `mkdir`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Created {
    /// The directory.
    pub path: String,
    /// False when it already existed.
    pub created: bool,
}

/// What a directory entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed by list, tree or search).
    Symlink,
    /// Anything else (socket, device, fifo).
    Other,
}

/// One entry of `list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Entry {
    /// File name.
    pub name: String,
    /// Path to pass back to other actions.
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, ms since the Unix epoch.
    pub modified: Option<i64>,
}

/// Result of `list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Listing {
    /// Entries in byte order of their paths.
    pub entries: Vec<Entry>,
    /// Cursor of the next page, if any.
    pub next_cursor: Option<String>,
    /// Whether a recursive walk stopped at `max_walk_entries`.
    pub truncated: bool,
}

/// A node of `tree`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TreeNode {
    /// File name.
    pub name: String,
    /// Path to pass back to other actions.
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// Size in bytes (files).
    pub size: u64,
    /// Children of a directory above the depth bound.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub children: Vec<TreeNode>,
}

/// Result of `tree`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Tree {
    /// The directory itself, with its children to the requested depth.
    pub root: TreeNode,
    /// Whether `max_tree_entries` cut the tree short.
    pub truncated: bool,
}

/// One hit of `search`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SearchMatch {
    /// The file.
    pub path: String,
    /// 1-based line of a text match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The matching line (at most 200 characters), for text matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
}

/// Result of `search`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SearchResults {
    /// Matches in path order.
    pub matches: Vec<SearchMatch>,
    /// Whether the limit or `max_walk_entries` stopped the search.
    pub truncated: bool,
}

/// The live lock on a path, as `stat` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LockInfo {
    /// Who holds it.
    pub owner: String,
    /// Milliseconds left on the lease.
    pub expires_in_ms: u64,
}

/// Result of `stat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Stat {
    /// The path as it resolves inside its root.
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, ms since the Unix epoch.
    pub modified: Option<i64>,
    /// Latest recorded version (absent when the file has no history yet).
    pub version: Option<u64>,
    /// The live lock, if any.
    pub lock: Option<LockInfo>,
}

/// One version of a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VersionEntry {
    /// Version number.
    pub version: u64,
    /// BLAKE3 of the content; absent for a deletion.
    pub hash: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// When it was recorded, ms since the Unix epoch.
    pub created_at: i64,
    /// Whether this version records a deletion.
    pub deleted: bool,
}

/// Result of `versions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Versions {
    /// The path as it resolves inside its root.
    pub path: String,
    /// Newest first.
    pub versions: Vec<VersionEntry>,
}

/// Result of `diff`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Diff {
    /// The path.
    pub path: String,
    /// Older side.
    pub from_version: u64,
    /// Newer side.
    pub to_version: u64,
    /// Unified diff (empty when the contents are equal).
    pub diff: String,
}

/// Result of `lock`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Locked {
    /// The locked path.
    pub path: String,
    /// Fencing token: pass it as `lock_token` to write, and to `unlock`.
    pub token: u64,
    /// Who holds it.
    pub owner: String,
    /// When the lease ends, ms since the Unix epoch.
    pub expires_at: i64,
}

/// Result of `unlock`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Unlocked {
    /// The path.
    pub path: String,
    /// Whether the lease was live with that token and is now released.
    pub released: bool,
}

/// One configured root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RootInfo {
    /// Canonical absolute path.
    pub path: String,
    /// Whether relative paths resolve against it (the first root).
    pub default: bool,
}

/// Result of `roots`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RootList {
    /// The allowed roots.
    pub roots: Vec<RootInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn file(content: Option<&str>, content_base64: Option<String>) -> FileContent {
        FileContent {
            path: "f".into(),
            content: content.map(SharedText::from),
            content_base64,
            size: 0,
            version: 1,
            hash: None,
            partial: false,
            source: Source::Disk,
        }
    }

    #[test]
    fn returned_len_counts_the_bytes_either_field_carries() {
        for bytes in [
            &b""[..],
            b"\x00",
            b"\x00\xff",
            b"\x00\xff\x01",
            b"\x00\xff\x01\x02",
        ] {
            let encoded = file(
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            );
            assert_eq!(encoded.returned_len(), bytes.len() as u64);
            assert_eq!(encoded.returned_len(), encoded.bytes().len() as u64);
        }
        assert_eq!(file(Some("héllo"), None).returned_len(), 6);
        assert_eq!(file(None, None).returned_len(), 0);
    }

    #[test]
    fn the_json_output_holds_what_serde_derives() {
        let cached = |text: &str| FileContent {
            content: Some(SharedText::from(text).with_json_made()),
            hash: Some("h".into()),
            ..file(None, None)
        };
        let cases = [
            cached("plain"),
            cached("quotes \" and \\ and \n\t\u{1}, héllo"),
            cached(""),
            file(Some("not cached \n"), None),
            file(None, Some("AAE=".into())),
            file(None, None),
        ];
        for case in &cases {
            let output = case.to_output().unwrap();
            // The same fields and values (a text kept apart comes first).
            assert_eq!(output, serde_json::to_value(case).unwrap());
            assert_eq!(output.text_pieces().is_some(), case.content.is_some());
        }
    }
}
