//! Fuzz target `edit`: [`FilesService::edit`] against a model of sequential exact-once
//! replacement. A file is written through the service, then edited: when the model says the
//! edits apply, the file on disk is the model's result (or, for a dry run, unchanged with the
//! same version) and the diff is non-empty iff the text changed; when the model says they do
//! not (no edits, an empty `old_text`, text that occurs zero or several times, overlapping
//! occurrences included, a file that is not UTF-8) the call is `InvalidArgument` and neither
//! the file nor its history changed.
//!
//! Input: sections separated by 0x1E: flags (`d` = dry run), the file's bytes, then one
//! section per edit, `old_text` 0x1F `new_text`. See `fuzz/harness.rs` for the phases.

mod common;
#[path = "../../fuzz/harness.rs"]
mod harness;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::Fixture;
use mcp_core::Error;
use mcp_files::{FilesService, TextEdit, WriteOptions};
use proptest::prelude::*;

/// Generated cases per phase in a plain `cargo test`.
const DEFAULT_CASES: u32 = 64;

const TARGET: &str = "edit";

struct Case {
    dry_run: bool,
    content: Vec<u8>,
    edits: Vec<TextEdit>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("dry_run", &self.dry_run)
            .field("content", &harness::shown(&self.content))
            .field("edits", &self.edits)
            .finish()
    }
}

fn decode(bytes: &[u8]) -> Case {
    let mut sections = bytes.split(|&b| b == 0x1e);
    let flags = sections.next().unwrap_or_default();
    let content = sections.next().unwrap_or_default().to_vec();
    let edits = sections
        .map(|section| {
            let mut halves = section.splitn(2, |&b| b == 0x1f);
            let old = halves.next().unwrap_or_default();
            let new = halves.next().unwrap_or_default();
            TextEdit {
                old_text: String::from_utf8_lossy(old).into_owned(),
                new_text: String::from_utf8_lossy(new).into_owned(),
            }
        })
        .collect();
    Case {
        dry_run: flags.contains(&b'd'),
        content,
        edits,
    }
}

/// Where `needle` occurs in `haystack`, overlapping occurrences included, up to two.
fn occurrences(haystack: &str, needle: &str) -> usize {
    haystack
        .char_indices()
        .filter(|(i, _)| haystack[*i..].starts_with(needle))
        .take(2)
        .count()
}

/// The model: the edited text, or why the edits do not apply.
fn model(content: &[u8], edits: &[TextEdit]) -> Result<String, String> {
    if edits.is_empty() {
        return Err("no edits".into());
    }
    let mut text = String::from_utf8(content.to_vec()).map_err(|_| "not UTF-8".to_owned())?;
    for (i, edit) in edits.iter().enumerate() {
        if edit.old_text.is_empty() {
            return Err(format!("edit {i}: empty old_text"));
        }
        match occurrences(&text, &edit.old_text) {
            1 => {}
            n => return Err(format!("edit {i}: {n} occurrences")),
        }
        let at = text.find(&edit.old_text).unwrap();
        text.replace_range(at..at + edit.old_text.len(), &edit.new_text);
    }
    Ok(text)
}

struct Target {
    fixture: Fixture,
    files: FilesService,
    runtime: tokio::runtime::Runtime,
    next: AtomicUsize,
}

impl Target {
    fn new() -> Target {
        let fixture = Fixture::new();
        let mut config = fixture.config();
        config.watch = false;
        let files = FilesService::in_memory(config).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Target {
            fixture,
            files,
            runtime,
            next: AtomicUsize::new(0),
        }
    }

    fn check(&self, case: &Case) {
        let name = format!("f{}.txt", self.next.fetch_add(1, Ordering::Relaxed));
        let disk = self.fixture.root.join(&name);
        self.runtime.block_on(async {
            let written = self
                .files
                .write(&name, case.content.clone(), WriteOptions::default())
                .await
                .unwrap();
            let history = self.files.versions(&name).await.unwrap();
            let outcome = self
                .files
                .edit(&name, &case.edits, case.dry_run, WriteOptions::default())
                .await;
            let on_disk = std::fs::read(&disk).unwrap();
            match (model(&case.content, &case.edits), outcome) {
                (Ok(expected), Ok(edited)) => {
                    assert_eq!(edited.dry_run, case.dry_run);
                    assert_eq!(
                        edited.diff.is_empty(),
                        expected.as_bytes() == case.content,
                        "diff {:?}",
                        edited.diff
                    );
                    if case.dry_run {
                        assert_eq!(on_disk, case.content, "a dry run changed the file");
                        assert_eq!(edited.version, written.version);
                        assert_eq!(self.files.versions(&name).await.unwrap(), history);
                    } else {
                        assert_eq!(
                            harness::shown(&on_disk),
                            harness::shown(expected.as_bytes())
                        );
                        assert_eq!(on_disk, expected.as_bytes());
                        let read = self.files.read(&name, Default::default()).await.unwrap();
                        // Text holding NUL bytes comes back as base64 (binary).
                        assert_eq!(read.bytes(), expected.as_bytes());
                        assert_eq!(read.version, edited.version);
                    }
                }
                (Err(why), Err(Error::InvalidArgument(message))) => {
                    assert_eq!(
                        on_disk, case.content,
                        "a refused edit ({why}) changed the file"
                    );
                    assert_eq!(
                        self.files.versions(&name).await.unwrap(),
                        history,
                        "a refused edit ({why}) recorded a version"
                    );
                    assert!(
                        message.contains(&name),
                        "{message:?} does not name the file"
                    );
                }
                (Ok(expected), Err(err)) => {
                    panic!("{case:?}: the model gives {expected:?}, the service {err:?}")
                }
                (Err(why), Ok(edited)) => {
                    panic!("{case:?}: the model refuses ({why}), the service edited: {edited:?}")
                }
                (Err(why), Err(err)) => {
                    panic!("{case:?}: refused ({why}) with the wrong error {err:?}")
                }
            }
        });
    }
}

fn structured() -> impl Strategy<Value = Case> {
    let piece = || {
        prop::sample::select(vec![
            "a", "b", "ab", "aa", "\n", "\r\n", "\r", " ", "é", "日", "😀", "\u{0301}", "x",
        ])
    };
    let text = prop::collection::vec(piece(), 0..24).prop_map(|parts| parts.concat());
    let short = prop::collection::vec(piece(), 0..4).prop_map(|parts| parts.concat());
    let edit =
        (short.clone(), short).prop_map(|(old_text, new_text)| TextEdit { old_text, new_text });
    (any::<bool>(), text, prop::collection::vec(edit, 0..4)).prop_map(
        |(dry_run, content, edits)| Case {
            dry_run,
            content: content.into_bytes(),
            edits,
        },
    )
}

#[test]
fn fuzz_edit() {
    let target = Target::new();
    let seeds = harness::replay(TARGET, |bytes| target.check(&decode(bytes)));
    eprintln!("{TARGET}: {seeds} corpus seeds replayed");
    let corpus = harness::corpus(TARGET);
    harness::generate(
        TARGET,
        DEFAULT_CASES,
        "mutated",
        harness::mutated(&corpus),
        |bytes| {
            target.check(&decode(&bytes));
            Ok(())
        },
    );
    harness::generate(TARGET, DEFAULT_CASES, "structured", structured(), |case| {
        target.check(&case);
        Ok(())
    });
}
