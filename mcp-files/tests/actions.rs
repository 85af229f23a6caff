//! One test per action family, through the typed methods and the JSON adapter.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::Fixture;
use mcp_backends::AuditQuery;
use mcp_core::{Error, RequestContext, Service};
use mcp_files::{FilesConfig, FilesService, Kind, ReadRange, Source, TextEdit, WriteOptions};
use serde_json::json;

fn text(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[tokio::test]
async fn write_then_read_text_and_binary() {
    let fx = Fixture::new();
    let files = fx.service();
    let written = files
        .write("a/b/notes.txt", text("hello\n"), WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(written.version, 1);
    assert_eq!(written.size, 6);
    assert_eq!(
        std::fs::read(fx.root.join("a/b/notes.txt")).unwrap(),
        b"hello\n"
    );
    let read = files.read("a/b/notes.txt", ReadRange::Whole).await.unwrap();
    assert_eq!(read.content.as_deref(), Some("hello\n"));
    assert_eq!(read.version, 1);
    assert_eq!(read.hash.as_deref(), Some(written.hash.as_str()));
    assert_eq!(read.source, Source::Disk);
    // The watcher reports this service's own write too and may evict once more shortly
    // after it, so poll (with a deadline) until a read is served from the cache.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let again = loop {
        let again = files.read("a/b/notes.txt", ReadRange::Whole).await.unwrap();
        if again.source == Source::Cache || std::time::Instant::now() > deadline {
            break again;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(again.source, Source::Cache);
    assert_eq!(again.content.as_deref(), Some("hello\n"));

    let binary = vec![0u8, 159, 146, 150, 255];
    files
        .write("bin.dat", binary.clone(), WriteOptions::default())
        .await
        .unwrap();
    let read = files.read("bin.dat", ReadRange::Whole).await.unwrap();
    assert_eq!(read.content, None);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(read.content_base64.unwrap())
        .unwrap();
    assert_eq!(decoded, binary);

    // Absolute paths inside the root work too.
    let absolute = fx.root.join("a/b/notes.txt");
    let read = files
        .read(absolute.to_str().unwrap(), ReadRange::Whole)
        .await
        .unwrap();
    assert_eq!(read.content.as_deref(), Some("hello\n"));
}

#[tokio::test]
async fn ranges_head_tail_and_the_size_cap() {
    let fx = Fixture::new();
    let mut config = fx.config();
    config.max_read_bytes = 64;
    let files = FilesService::in_memory(config).unwrap();
    std::fs::write(fx.root.join("lines.txt"), "one\ntwo\nthree\nfour\n").unwrap();
    let head = files.read("lines.txt", ReadRange::Head(2)).await.unwrap();
    assert_eq!(head.content.as_deref(), Some("one\ntwo\n"));
    assert!(head.partial);
    let tail = files.read("lines.txt", ReadRange::Tail(1)).await.unwrap();
    assert_eq!(tail.content.as_deref(), Some("four\n"));
    let bytes = files
        .read(
            "lines.txt",
            ReadRange::Bytes {
                offset: 4,
                length: Some(3),
            },
        )
        .await
        .unwrap();
    assert_eq!(bytes.content.as_deref(), Some("two"));
    assert_eq!(bytes.size, 19);

    let big = "x".repeat(200);
    std::fs::write(fx.root.join("big.txt"), &big).unwrap();
    let err = files.read("big.txt", ReadRange::Whole).await.unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge(_)), "{err:?}");
    let part = files
        .read(
            "big.txt",
            ReadRange::Bytes {
                offset: 190,
                length: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(part.content.as_deref(), Some("xxxxxxxxxx"));
    assert!(
        part.version >= 1,
        "a versionable file gets a version on read"
    );

    let err = files
        .read("missing.txt", ReadRange::Whole)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)));
    let err = files.read("", ReadRange::Whole).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)));
}

#[tokio::test]
async fn expected_version_and_create_only_conflict_without_changes() {
    let fx = Fixture::new();
    let files = fx.service();
    files
        .write("f.txt", text("v1"), WriteOptions::default())
        .await
        .unwrap();
    let second = files
        .write(
            "f.txt",
            text("v2"),
            WriteOptions {
                expected_version: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(second.version, 2);
    let err = files
        .write(
            "f.txt",
            text("stale"),
            WriteOptions {
                expected_version: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(std::fs::read(fx.root.join("f.txt")).unwrap(), b"v2");
    let err = files
        .write(
            "f.txt",
            text("again"),
            WriteOptions {
                create_only: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    assert_eq!(std::fs::read(fx.root.join("f.txt")).unwrap(), b"v2");
    assert_eq!(files.versions("f.txt").await.unwrap().versions.len(), 2);
    // No temp files are left behind.
    let names: Vec<_> = std::fs::read_dir(&fx.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[tokio::test]
async fn a_file_changed_outside_gets_a_new_version_before_expected_version_is_checked() {
    let fx = Fixture::new();
    let mut config = fx.config();
    config.watch = false;
    config.cache_bytes = 0;
    let files = FilesService::in_memory(config).unwrap();
    std::fs::write(fx.root.join("pre.txt"), "existing").unwrap();
    assert_eq!(
        files
            .read("pre.txt", ReadRange::Whole)
            .await
            .unwrap()
            .version,
        1
    );
    std::fs::write(fx.root.join("pre.txt"), "changed outside").unwrap();
    let err = files
        .write(
            "pre.txt",
            text("mine"),
            WriteOptions {
                expected_version: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    assert_eq!(
        std::fs::read(fx.root.join("pre.txt")).unwrap(),
        b"changed outside"
    );
    let history = files.versions("pre.txt").await.unwrap();
    assert_eq!(history.versions[0].version, 2);
}

#[tokio::test]
async fn edit_dry_run_and_apply() {
    let fx = Fixture::new();
    let files = fx.service();
    files
        .write(
            "code.rs",
            text("fn a() {}\nfn b() {}\n"),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    let edits = vec![TextEdit {
        old_text: "fn b".into(),
        new_text: "fn c".into(),
    }];
    let dry = files
        .edit("code.rs", &edits, true, WriteOptions::default())
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert!(
        dry.diff.contains("-fn b() {}") && dry.diff.contains("+fn c() {}"),
        "{}",
        dry.diff
    );
    assert_eq!(dry.version, 1);
    assert_eq!(
        std::fs::read_to_string(fx.root.join("code.rs")).unwrap(),
        "fn a() {}\nfn b() {}\n"
    );
    let applied = files
        .edit("code.rs", &edits, false, WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(applied.version, 2);
    assert_eq!(
        std::fs::read_to_string(fx.root.join("code.rs")).unwrap(),
        "fn a() {}\nfn c() {}\n"
    );
    let ambiguous = vec![TextEdit {
        old_text: "fn".into(),
        new_text: "pub fn".into(),
    }];
    let err = files
        .edit("code.rs", &ambiguous, false, WriteOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("2 times")),
        "{err:?}"
    );
    let stale = files
        .edit(
            "code.rs",
            &edits,
            false,
            WriteOptions {
                expected_version: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(stale, Error::Conflict(_)));
}

#[tokio::test]
async fn delete_keeps_history_and_restore_brings_content_back() {
    let fx = Fixture::new();
    let files = fx.service();
    files
        .write("d.txt", text("first"), WriteOptions::default())
        .await
        .unwrap();
    files
        .write("d.txt", text("second"), WriteOptions::default())
        .await
        .unwrap();
    let deleted = files.delete("d.txt", Some(2), None).await.unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.version, 3);
    assert!(!fx.root.join("d.txt").exists());
    let err = files.read("d.txt", ReadRange::Whole).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)));
    let history = files.versions("d.txt").await.unwrap();
    assert_eq!(
        history
            .versions
            .iter()
            .map(|v| v.version)
            .collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
    assert!(history.versions[0].deleted);
    assert_eq!(
        files.version("d.txt", 1).await.unwrap().content.as_deref(),
        Some("first")
    );
    let diff = files.diff("d.txt", 1, Some(2)).await.unwrap();
    assert!(
        diff.diff.contains("-first") && diff.diff.contains("+second"),
        "{}",
        diff.diff
    );
    let restored = files
        .restore("d.txt", 1, WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(restored.version, 4);
    assert_eq!(std::fs::read(fx.root.join("d.txt")).unwrap(), b"first");
    let latest = files.diff("d.txt", 1, None).await.unwrap();
    assert_eq!(latest.to_version, 4);
    assert!(latest.diff.is_empty(), "{}", latest.diff);
    let err = files.delete("d.txt", Some(1), None).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    assert!(fx.root.join("d.txt").exists());
}

#[tokio::test]
async fn move_and_mkdir() {
    let fx = Fixture::new();
    let files = fx.service();
    let created = files.mkdir("x/y").await.unwrap();
    assert!(created.created);
    assert!(!files.mkdir("x/y").await.unwrap().created);
    files
        .write("src.txt", text("payload"), WriteOptions::default())
        .await
        .unwrap();
    files
        .write("taken.txt", text("other"), WriteOptions::default())
        .await
        .unwrap();
    let err = files
        .move_file("src.txt", "taken.txt", false, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    let moved = files
        .move_file("src.txt", "x/y/dst.txt", false, None)
        .await
        .unwrap();
    assert_eq!(moved.path, "x/y/dst.txt");
    assert_eq!(moved.version, 1);
    assert!(!fx.root.join("src.txt").exists());
    assert_eq!(
        std::fs::read(fx.root.join("x/y/dst.txt")).unwrap(),
        b"payload"
    );
    assert!(files.versions("src.txt").await.unwrap().versions[0].deleted);
    let over = files
        .move_file("x/y/dst.txt", "taken.txt", true, None)
        .await
        .unwrap();
    assert_eq!(over.version, 2);
    assert_eq!(
        std::fs::read(fx.root.join("taken.txt")).unwrap(),
        b"payload"
    );
}

#[tokio::test]
async fn list_pages_with_a_cursor_and_walks_recursively() {
    let fx = Fixture::new();
    let files = fx.service();
    for i in 0..25 {
        std::fs::write(fx.root.join(format!("f{i:02}.txt")), "x").unwrap();
    }
    std::fs::create_dir_all(fx.root.join("sub/deeper")).unwrap();
    std::fs::write(fx.root.join("sub/deeper/z.txt"), "zz").unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = files
            .list(".", false, cursor.as_deref(), Some(10))
            .await
            .unwrap();
        assert!(page.entries.len() <= 10);
        seen.extend(page.entries.iter().map(|e| e.name.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 26);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    let all = files.list("sub", true, None, None).await.unwrap();
    let paths: Vec<_> = all
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.kind))
        .collect();
    assert_eq!(
        paths,
        vec![("sub/deeper", Kind::Dir), ("sub/deeper/z.txt", Kind::File)]
    );
    assert_eq!(all.entries[1].size, 2);
    let err = files
        .list(".", false, Some("not a cursor!"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)));
}

#[tokio::test]
async fn tree_is_bounded_by_depth_and_exclude() {
    let fx = Fixture::new();
    let files = fx.service();
    std::fs::create_dir_all(fx.root.join("a/b/c")).unwrap();
    std::fs::create_dir_all(fx.root.join("target/debug")).unwrap();
    std::fs::write(fx.root.join("a/b/c/deep.txt"), "d").unwrap();
    let tree = files
        .tree(".", Some(2), vec!["target".into()])
        .await
        .unwrap();
    assert_eq!(tree.root.children.len(), 1);
    let a = &tree.root.children[0];
    assert_eq!(a.name, "a");
    assert_eq!(a.children[0].name, "b");
    assert!(a.children[0].children.is_empty(), "depth 2 stops below a/b");
    let err = files.tree(".", Some(99), vec![]).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)));
}

#[tokio::test]
async fn search_by_glob_and_text() {
    let fx = Fixture::new();
    let files = fx.service();
    std::fs::create_dir_all(fx.root.join("src")).unwrap();
    std::fs::write(
        fx.root.join("src/lib.rs"),
        "pub fn alpha() {}\n// TODO: beta\n",
    )
    .unwrap();
    std::fs::write(fx.root.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(fx.root.join("notes.md"), "TODO: gamma\n").unwrap();
    let by_glob = files
        .search(".", Some("*.rs".into()), None, None)
        .await
        .unwrap();
    let paths: Vec<_> = by_glob.matches.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(paths, vec!["src/lib.rs", "src/main.rs"]);
    let by_text = files
        .search(".", None, Some("TODO".into()), None)
        .await
        .unwrap();
    let hits: Vec<_> = by_text
        .matches
        .iter()
        .map(|m| (m.path.as_str(), m.line))
        .collect();
    assert_eq!(hits, vec![("notes.md", Some(1)), ("src/lib.rs", Some(2))]);
    let both = files
        .search(".", Some("*.rs".into()), Some("TODO".into()), Some(1))
        .await
        .unwrap();
    assert_eq!(both.matches.len(), 1);
    assert_eq!(both.matches[0].snippet.as_deref(), Some("// TODO: beta"));
    let err = files.search(".", None, None, None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)));
}

#[tokio::test]
async fn stat_shows_version_and_lock() {
    let fx = Fixture::new();
    let files = fx.service();
    files
        .write("s.txt", text("12345"), WriteOptions::default())
        .await
        .unwrap();
    let stat = files.stat("s.txt").await.unwrap();
    assert_eq!(
        (stat.kind, stat.size, stat.version),
        (Kind::File, 5, Some(1))
    );
    assert!(stat.lock.is_none());
    assert!(stat.modified.is_some());
    files.lock("s.txt", "alice", None).await.unwrap();
    let stat = files.stat("s.txt").await.unwrap();
    assert_eq!(stat.lock.unwrap().owner, "alice");
}

#[tokio::test]
async fn locks_fence_writes_and_expire() {
    let fx = Fixture::new();
    let files = fx.service();
    files
        .write("l.txt", text("base"), WriteOptions::default())
        .await
        .unwrap();
    let lease = files
        .lock("l.txt", "alice", Some(Duration::from_secs(30)))
        .await
        .unwrap();
    let err = files.lock("l.txt", "bob", None).await.unwrap_err();
    assert!(matches!(err, Error::Locked(_)));
    let err = files
        .write("l.txt", text("bob"), WriteOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Locked(_)), "{err:?}");
    let err = files
        .write(
            "l.txt",
            text("bob"),
            WriteOptions {
                lock_token: Some(lease.token + 1),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Locked(_)));
    assert!(matches!(
        files.delete("l.txt", None, None).await.unwrap_err(),
        Error::Locked(_)
    ));
    assert_eq!(std::fs::read(fx.root.join("l.txt")).unwrap(), b"base");
    files
        .write(
            "l.txt",
            text("alice"),
            WriteOptions {
                lock_token: Some(lease.token),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(files.unlock("l.txt", lease.token).await.unwrap().released);
    assert!(!files.unlock("l.txt", lease.token).await.unwrap().released);
    let short = files
        .lock("l.txt", "carol", Some(Duration::from_millis(50)))
        .await
        .unwrap();
    assert!(short.token > lease.token, "fencing tokens increase");
    tokio::time::sleep(Duration::from_millis(120)).await;
    files
        .write("l.txt", text("free again"), WriteOptions::default())
        .await
        .unwrap();
    let err = files
        .lock("l.txt", "x", Some(Duration::ZERO))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)));
}

#[tokio::test]
async fn payload_too_large_writes_change_nothing() {
    let fx = Fixture::new();
    let mut config = fx.config();
    config.max_write_bytes = 10;
    let files = FilesService::in_memory(config).unwrap();
    let err = files
        .write("big.txt", vec![b'a'; 11], WriteOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge(_)));
    assert!(!fx.root.join("big.txt").exists());
}

#[tokio::test]
async fn roots_lists_every_root_and_absolute_paths_pick_theirs() {
    let fx = Fixture::new();
    let second = fx.base().join("second");
    std::fs::create_dir(&second).unwrap();
    let files = FilesService::in_memory(FilesConfig::new([&fx.root, &second])).unwrap();
    let roots = files.roots();
    assert_eq!(roots.roots.len(), 2);
    assert!(roots.roots[0].default && !roots.roots[1].default);
    let in_second = second.join("two.txt");
    let written = files
        .write(
            in_second.to_str().unwrap(),
            text("2"),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(&in_second).unwrap(), b"2");
    assert_eq!(
        written.path,
        std::fs::canonicalize(&in_second).unwrap().to_str().unwrap()
    );
}

#[tokio::test]
async fn json_calls_round_trip_and_append_access_records() {
    let fx = Fixture::new();
    let files = Arc::new(fx.service());
    let ctx = RequestContext::local().with_principal("agent-7");
    let written = files
        .call(
            "write",
            json!({"path": "j.txt", "content": "json body"}).into(),
            &ctx,
        )
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(written["version"], 1);
    let read = files
        .call("read", json!({"path": "j.txt", "head": 1}).into(), &ctx)
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(read["content"], "json body");
    let b64 = base64::engine::general_purpose::STANDARD.encode([0u8, 1, 2]);
    files
        .call(
            "write",
            json!({"path": "b.bin", "content_base64": b64}).into(),
            &ctx,
        )
        .await
        .unwrap();
    let read = files
        .call("read", json!({"path": "b.bin"}).into(), &ctx)
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(read["content_base64"], b64);
    let many = files
        .call(
            "read_many",
            json!({"paths": ["j.txt", "nope.txt"]}).into(),
            &ctx,
        )
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(many["results"][0]["result"]["content"], "json body");
    assert_eq!(many["results"][1]["error"]["code"], "not_found");
    let old = files
        .call("read", json!({"path": "j.txt", "version": 1}).into(), &ctx)
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(old["source"], "history");
    let lock = files
        .call("lock", json!({"path": "j.txt"}).into(), &ctx)
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(lock["owner"], "agent-7");
    let err = files
        .call("read", json!({"path": "../escape"}).into(), &ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::PermissionDenied(_) | Error::NotFound(_)),
        "{err:?}"
    );
    let err = files
        .call("write", json!({"path": "x"}).into(), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)));
    let roots = files
        .call("roots", json!(null).into(), &ctx)
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(roots["roots"].as_array().unwrap().len(), 1);
    assert_eq!(files.actions().len(), 18);

    let records = files
        .audit_log()
        .query(&AuditQuery {
            service: Some("files".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 10);
    let newest = &records[0];
    assert_eq!(newest.action, "roots");
    let failed = records
        .iter()
        .find(|r| r.target.as_deref() == Some("../escape"))
        .unwrap();
    assert_eq!(failed.action, "read");
    assert_ne!(failed.outcome, "ok");
    let first_write = records.iter().rev().find(|r| r.action == "write").unwrap();
    assert_eq!(first_write.principal.as_deref(), Some("agent-7"));
    assert_eq!(first_write.target.as_deref(), Some("j.txt"));
    assert_eq!(first_write.outcome, "ok");
    assert_eq!(first_write.bytes, Some(9));
    let read_record = records.iter().rev().find(|r| r.action == "read").unwrap();
    assert_eq!(read_record.bytes, Some(9));
    let health = files.health().await;
    assert!(health.iter().all(|h| h.ok) && health.len() == 3);
}

/// Names of leftover temp files (`.mcp-tmp-*`) directly in `dir`.
fn temp_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".mcp-tmp-"))
        .collect()
}

/// `durable` (fsync of the temp file before the rename and of the directory after it) through
/// write, edit and restore, typed and JSON: the results and the disk agree, nothing is left
/// behind.
#[tokio::test]
async fn durable_writes_edits_and_restores_land_on_disk() {
    let fx = Fixture::new();
    let files = fx.service();
    let durable = || WriteOptions {
        durable: true,
        ..WriteOptions::default()
    };
    let on_disk = || std::fs::read(fx.root.join("deep/d.txt")).unwrap();
    let written = files
        .write("deep/d.txt", text("alpha\n"), durable())
        .await
        .unwrap();
    assert_eq!((written.version, written.size), (1, 6));
    assert_eq!(written.hash, mcp_backends::content_hash(b"alpha\n"));
    assert_eq!(on_disk(), b"alpha\n");

    let replaced = files
        .write(
            "deep/d.txt",
            text("beta\n"),
            WriteOptions {
                expected_version: Some(1),
                ..durable()
            },
        )
        .await
        .unwrap();
    assert_eq!((replaced.version, replaced.size), (2, 5));
    assert_eq!(on_disk(), b"beta\n");

    let edit = TextEdit {
        old_text: "beta".into(),
        new_text: "gamma".into(),
    };
    let edited = files
        .edit("deep/d.txt", &[edit], false, durable())
        .await
        .unwrap();
    assert_eq!((edited.version, edited.size, edited.dry_run), (3, 6, false));
    assert_eq!(on_disk(), b"gamma\n");

    let restored = files.restore("deep/d.txt", 1, durable()).await.unwrap();
    assert_eq!((restored.version, restored.size), (4, 6));
    assert_eq!(on_disk(), b"alpha\n");

    // A durable write that fails its precondition changes nothing and leaves no temp file.
    let err = files
        .write(
            "deep/d.txt",
            text("lost\n"),
            WriteOptions {
                expected_version: Some(1),
                ..durable()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(on_disk(), b"alpha\n");

    let ctx = RequestContext::local();
    let json_write = files
        .call(
            "write",
            json!({"path": "deep/j.txt", "content": "one\n", "durable": true}).into(),
            &ctx,
        )
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(
        (json_write["version"].as_u64(), json_write["size"].as_u64()),
        (Some(1), Some(4))
    );
    let json_edit = files
        .call(
            "edit",
            json!({"path": "deep/j.txt", "edits": [{"old_text": "one", "new_text": "two"}], "durable": true}).into(),
            &ctx,
        )
        .await
        .unwrap().to_value().unwrap();
    assert_eq!(json_edit["version"], 2);
    assert_eq!(std::fs::read(fx.root.join("deep/j.txt")).unwrap(), b"two\n");
    let json_restore = files
        .call(
            "restore",
            json!({"path": "deep/j.txt", "version": 1, "durable": true}).into(),
            &ctx,
        )
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(json_restore["version"], 3);
    assert_eq!(std::fs::read(fx.root.join("deep/j.txt")).unwrap(), b"one\n");

    assert_eq!(temp_files(&fx.root.join("deep")), Vec::<String>::new());
    let history = files.versions("deep/d.txt").await.unwrap();
    assert_eq!(history.versions.len(), 4);
}

/// The access records of edit, delete and move carry the bytes they wrote, moved or removed.
#[tokio::test]
async fn edit_move_and_delete_records_carry_their_bytes() {
    let fx = Fixture::new();
    let files = fx.service();
    let ctx = RequestContext::local().with_principal("bytes-tester");
    let call = |action: &'static str, params: serde_json::Value| {
        let (files, ctx) = (&files, &ctx);
        async move { files.call(action, params.into(), ctx).await }
    };
    call("write", json!({"path": "e.txt", "content": "12345"}))
        .await
        .unwrap();
    let dry = call(
        "edit",
        json!({"path": "e.txt", "edits": [{"old_text": "345", "new_text": "3456789"}], "dry_run": true}),
    )
    .await
    .unwrap().to_value().unwrap();
    assert_eq!(
        (dry["size"].as_u64(), dry["version"].as_u64()),
        (Some(9), Some(1))
    );
    let edited = call(
        "edit",
        json!({"path": "e.txt", "edits": [{"old_text": "345", "new_text": "3456789"}]}),
    )
    .await
    .unwrap()
    .to_value()
    .unwrap();
    assert_eq!(edited["size"], 9);
    let moved = call("move", json!({"from": "e.txt", "to": "m/e.txt"}))
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(moved["size"], 9);
    std::os::unix::fs::symlink("m/e.txt", fx.root.join("link")).unwrap();
    let unlinked = call("delete", json!({"path": "link"}))
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(unlinked["size"], 0);
    assert_eq!(
        std::fs::read(fx.root.join("m/e.txt")).unwrap(),
        b"123456789"
    );
    let deleted = call("delete", json!({"path": "m/e.txt"}))
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(deleted["size"], 9);
    let emptied = call("delete", json!({"path": "m"}))
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(emptied["size"], 0);

    let mut records = files
        .audit_log()
        .query(&AuditQuery {
            principal: Some("bytes-tester".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    records.reverse();
    let seen: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.action.as_str(),
                r.target.as_deref(),
                r.outcome.as_str(),
                r.bytes,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("write", Some("e.txt"), "ok", Some(5)),
            ("edit", Some("e.txt"), "ok", Some(0)),
            ("edit", Some("e.txt"), "ok", Some(9)),
            ("move", Some("e.txt"), "ok", Some(9)),
            ("delete", Some("link"), "ok", Some(0)),
            ("delete", Some("m/e.txt"), "ok", Some(9)),
            ("delete", Some("m"), "ok", Some(0)),
        ]
    );
}
