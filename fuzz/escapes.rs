//! The path-escape corpus driver shared by `mcp-files/tests/sandbox.rs` (in process) and
//! `examples/server/tests/hostile_paths.rs` (REST, MCP over HTTP and stdio), included with
//! `#[path]`. It loads `tests/corpus/path_escapes.json`, builds its on-disk fixture (a root,
//! an outside directory holding canaries, a sibling `root_evil`, symlinks out of the root in
//! every way), lists the files calls each attempt is made with, and checks an answer: refused,
//! carrying no canary, revealing no hidden string the attempt did not contain itself.

#![allow(dead_code)] // Each including test uses the part it needs.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};

/// The corpus file as written.
#[derive(Deserialize)]
struct CorpusFile {
    fixture: FixtureSpec,
    secrets: Vec<String>,
    hidden: Vec<String>,
    attempts: Vec<Attempt>,
}

#[derive(Deserialize)]
struct FixtureSpec {
    dirs: Vec<String>,
    files: BTreeMap<String, String>,
    symlinks: BTreeMap<String, String>,
}

/// One escape attempt.
#[derive(Clone, Debug, Deserialize)]
pub struct Attempt {
    /// The path as a caller sends it (`{base}` and `{root}` substituted).
    pub path: String,
    /// What it tries.
    pub why: String,
    /// The path names a symlink inside the root: deleting or moving the link itself is
    /// legitimate, so those two calls are not made with it.
    #[serde(default)]
    pub link: bool,
}

/// The corpus with its fixture built under `base` (the files root is `base/root`).
pub struct Escapes {
    pub base: PathBuf,
    pub root: PathBuf,
    pub secrets: Vec<String>,
    pub hidden: Vec<String>,
    pub attempts: Vec<Attempt>,
}

/// The corpus file, found from the including crate's directory upwards.
pub fn corpus_path() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .map(|dir| dir.join("tests/corpus/path_escapes.json"))
        .find(|path| path.is_file())
        .expect("tests/corpus/path_escapes.json")
}

impl Escapes {
    /// Builds the fixture under `base`, which must exist and be canonical.
    pub fn build(base: &Path) -> Escapes {
        let text = std::fs::read_to_string(corpus_path()).unwrap();
        let corpus: CorpusFile = serde_json::from_str(&text).unwrap();
        let root = base.join("root");
        let subst = |s: &str| {
            s.replace("{base}", base.to_str().unwrap())
                .replace("{root}", root.to_str().unwrap())
        };
        std::fs::create_dir_all(&root).unwrap();
        for dir in &corpus.fixture.dirs {
            std::fs::create_dir_all(base.join(dir)).unwrap();
        }
        for (file, content) in &corpus.fixture.files {
            std::fs::write(base.join(file), content).unwrap();
        }
        for (link, target) in &corpus.fixture.symlinks {
            symlink(subst(target), base.join(link)).unwrap();
        }
        let hidden = corpus.hidden.iter().map(|h| subst(h)).collect();
        let attempts = corpus
            .attempts
            .into_iter()
            .map(|a| Attempt {
                path: subst(&a.path),
                ..a
            })
            .collect();
        Escapes {
            base: base.to_path_buf(),
            root,
            secrets: corpus.secrets,
            hidden,
            attempts,
        }
    }

    /// Every file, directory and symlink outside the root with its content (or target), for
    /// before/after comparisons.
    pub fn outside_state(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.base.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.starts_with(&self.root) {
                    continue;
                }
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let content = if meta.file_type().is_symlink() {
                    std::fs::read_link(&path)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes()
                } else if meta.is_dir() {
                    stack.push(path.clone());
                    b"<dir>".to_vec()
                } else {
                    std::fs::read(&path).unwrap()
                };
                out.insert(path, content);
            }
        }
        out
    }

    /// Checks one answer of `action` for `attempt` over `transport`: `text` is everything
    /// the transport returned (body, message, error data).
    pub fn check_answer(
        &self,
        transport: &str,
        attempt: &Attempt,
        action: &str,
        refused: bool,
        text: &str,
    ) {
        let label = format!("{transport} {action} {:?} ({})", attempt.path, attempt.why);
        // The history of a link's own entry inside the root (kept after a delete) is not an
        // escape: `versions` of a link answers with that entry's (empty) history.
        let own_entry = attempt.link && action == "versions";
        assert!(refused || own_entry, "{label} was not refused: {text}");
        for secret in &self.secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{label} leaked {secret}: {text}"
            );
        }
        for hidden in &self.hidden {
            if !attempt.path.contains(hidden.as_str()) {
                assert!(
                    !text.contains(hidden.as_str()),
                    "{label} revealed {hidden:?}: {text}"
                );
            }
        }
    }
}

/// The files calls made with `attempt`: every action that takes a path, with the path in
/// each path argument.
pub fn calls(attempt: &Attempt) -> Vec<(&'static str, Value)> {
    let p = attempt.path.as_str();
    let mut calls = vec![
        ("read", json!({"path": p})),
        ("read", json!({"path": p, "head": 1})),
        ("read", json!({"path": p, "offset": 0, "length": 8})),
        ("read_many", json!({"paths": [p, "legit_src.txt"]})),
        ("write", json!({"path": p, "content": "pwned"})),
        (
            "write",
            json!({"path": p, "content_base64": "cHduZWQ=", "create_only": true}),
        ),
        (
            "edit",
            json!({"path": p, "edits": [{"old_text": "CANARY", "new_text": "pwned"}]}),
        ),
        (
            "edit",
            json!({"path": p, "edits": [{"old_text": "CANARY", "new_text": "x"}], "dry_run": true}),
        ),
        (
            "move",
            json!({"from": "legit_src.txt", "to": p, "overwrite": true}),
        ),
        ("mkdir", json!({"path": p})),
        ("mkdir", json!({"path": format!("{p}/newdir")})),
        ("list", json!({"path": p, "recursive": true})),
        ("tree", json!({"path": p, "depth": 3})),
        ("search", json!({"path": p, "query": "CANARY"})),
        ("search", json!({"path": p, "glob": "*"})),
        ("stat", json!({"path": p})),
        ("versions", json!({"path": p})),
        ("version", json!({"path": p, "version": 1})),
        ("diff", json!({"path": p, "from_version": 1})),
        ("restore", json!({"path": p, "version": 1})),
        ("lock", json!({"path": p})),
        ("unlock", json!({"path": p, "token": 1})),
    ];
    if !attempt.link {
        calls.push(("delete", json!({"path": p})));
        calls.push((
            "move",
            json!({"from": p, "to": "moved_here.txt", "overwrite": true}),
        ));
    }
    calls
}

/// Whether a successful `result` of `action` still refused the attempt: `read_many` answers
/// per path, so the attempt's own entry (the first) must carry an error.
pub fn refused_in_result(action: &str, result: &Value) -> bool {
    action == "read_many" && result["results"][0].get("error").is_some()
}
