//! The sandbox escape corpus (`tests/corpus/path_escapes.json`, driven by `fuzz/escapes.rs`)
//! through every files action in process, legitimate odd names, a property test over random
//! paths, and the race where a directory is swapped for a symlink while writes run.

mod common;
#[path = "../../fuzz/escapes.rs"]
mod escapes;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::Fixture;
use escapes::Escapes;
use mcp_core::{Error, RequestContext, Service};
use mcp_files::{FilesService, ReadRange, WriteOptions};
use proptest::prelude::*;

#[path = "../../tests/support/directory_swap.rs"]
mod directory_swap;
use directory_swap::put_back_the_real_directory;

/// A fixture dir holding the corpus's root, outside directory, sibling `root_evil/` and
/// symlinks pointing out in every way.
fn hostile() -> (Fixture, Escapes) {
    let fx = Fixture::new();
    let escapes = Escapes::build(&fx.base().canonicalize().unwrap());
    (fx, escapes)
}

fn assert_refusal_is_silent(escapes: &Escapes, path: &str, err: &Error) {
    let message = err.to_string();
    for hidden in &escapes.hidden {
        if !path.contains(hidden.as_str()) {
            assert!(
                !message.contains(hidden.as_str()),
                "error for {path:?} reveals {hidden:?}: {message}"
            );
        }
    }
}

#[tokio::test]
async fn the_escape_corpus_touches_nothing_outside_and_reveals_no_targets() {
    let (fx, escapes) = hostile();
    let files = fx.service();
    let ctx = RequestContext::local();
    let before = escapes.outside_state();
    let mut made = 0;
    for attempt in &escapes.attempts {
        for (action, args) in escapes::calls(attempt) {
            let outcome = files
                .call(action, args.into(), &ctx)
                .await
                .and_then(|output| output.to_value());
            let (refused, text) = match &outcome {
                Ok(result) => (
                    escapes::refused_in_result(action, result),
                    result.to_string(),
                ),
                Err(err) => {
                    assert!(
                        matches!(
                            err,
                            Error::PermissionDenied(_)
                                | Error::InvalidArgument(_)
                                | Error::NotFound(_)
                                | Error::Conflict(_)
                        ),
                        "{action} {:?}: unexpected {err:?}",
                        attempt.path
                    );
                    (true, err.to_string())
                }
            };
            escapes.check_answer("in process", attempt, action, refused, &text);
            made += 1;
        }
        assert_eq!(
            escapes.outside_state(),
            before,
            "something outside changed after {:?}",
            attempt.path
        );
    }
    assert!(made > 500, "only {made} calls made");
    // Listing the root shows the links as links, without following them.
    let listing = files.list(".", true, None, Some(1000)).await.unwrap();
    assert!(listing.entries.iter().all(|e| !e.path.contains("canary")));
    let found = files
        .search(".", None, Some("CANARY".into()), None)
        .await
        .unwrap();
    assert!(found.matches.is_empty(), "{:?}", found.matches);
}

#[tokio::test]
async fn deleting_a_symlink_removes_the_link_not_its_target() {
    let (fx, escapes) = hostile();
    let files = fx.service();
    let before = escapes.outside_state();
    for attempt in escapes.attempts.iter().filter(|a| a.link) {
        files.delete(&attempt.path, None, None).await.unwrap();
        assert!(std::fs::symlink_metadata(fx.root.join(&attempt.path)).is_err());
    }
    assert_eq!(escapes.outside_state(), before);
}

#[tokio::test]
async fn odd_but_legitimate_names_work_inside_the_root() {
    let fx = Fixture::new();
    let files = fx.service();
    for name in [
        "..test",
        "...",
        "%2e%2e",
        "a..b",
        "..%2f..",
        " spaced ",
        "ünïcödé",
        "dir/..hidden",
    ] {
        files
            .write(name, name.as_bytes().to_vec(), WriteOptions::default())
            .await
            .unwrap_or_else(|err| panic!("{name:?}: {err}"));
        assert_eq!(std::fs::read(fx.root.join(name)).unwrap(), name.as_bytes());
        let read = files.read(name, ReadRange::Whole).await.unwrap();
        assert_eq!(read.content.as_deref(), Some(name));
    }
    // Inside-root symlinks and `..` that stay inside are fine and share one history.
    symlink("dir", fx.root.join("alias")).unwrap();
    let via_alias = files
        .read("alias/..hidden", ReadRange::Whole)
        .await
        .unwrap();
    assert_eq!(via_alias.path, "dir/..hidden");
    let via_dots = files
        .read("dir/../dir/./..hidden", ReadRange::Whole)
        .await
        .unwrap();
    assert_eq!(via_dots.version, via_alias.version);
}

#[tokio::test]
async fn a_sibling_sharing_the_root_name_prefix_is_outside() {
    let (fx, _escapes) = hostile();
    let files = fx.service();
    let evil = fx.base().join("root_evil/secret.txt");
    let err = files
        .read(evil.to_str().unwrap(), ReadRange::Whole)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");
    let evil_new = fx.base().join("root_evil/new.txt");
    let err = files
        .write(
            evil_new.to_str().unwrap(),
            b"x".to_vec(),
            WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied(_)));
    assert!(!evil_new.exists());
}

fn path_strategy() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "..",
        ".",
        "a",
        "b",
        "link_out",
        "abs_out",
        "chain1",
        "file_link",
        "dangling",
        "inner",
        "up_out",
        "%2e%2e",
        "...",
        "..a",
        "\0",
        "canary.txt",
        "outside",
        "root",
        "root_evil",
    ]);
    (prop::bool::ANY, prop::collection::vec(pieces, 1..7)).prop_map(|(absolute, parts)| {
        let joined = parts.join("/");
        if absolute {
            format!("/{joined}")
        } else {
            joined
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_paths_never_touch_anything_outside(paths in prop::collection::vec(path_strategy(), 1..6)) {
        let (fx, escapes) = hostile();
        let base = fx.base().to_str().unwrap().to_owned();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let before = escapes.outside_state();
        runtime.block_on(async {
            let files = fx.service();
            for raw in &paths {
                // Half of the absolute paths are made to point into the fixture.
                let path = if raw.starts_with('/') && raw.len() % 2 == 0 {
                    format!("{base}{raw}")
                } else {
                    raw.clone()
                };
                let _ = files.write(&path, b"pwned".to_vec(), WriteOptions::default()).await;
                let _ = files.mkdir(&format!("{path}/d")).await;
                if let Ok(read) = files.read(&path, ReadRange::Whole).await {
                    let text = read.content.as_deref().unwrap_or_default();
                    assert!(!text.contains("CANARY"), "{path:?} read a canary");
                }
                if let Err(err) = files.stat(&path).await {
                    assert_refusal_is_silent(&escapes, &path, &err);
                }
                let _ = files.move_file(&path, "moved.txt", true, None).await;
                if let Ok(listing) = files.list(&path, true, None, None).await {
                    for entry in &listing.entries {
                        let real = fx.root.join(&entry.path);
                        assert!(std::fs::symlink_metadata(&real).is_ok(), "{path:?} listed {} which is not inside the root", entry.path);
                    }
                }
            }
        });
        prop_assert_eq!(escapes.outside_state(), before);
    }
}

/// Paths whose missing parents would climb out of the root are refused before anything is
/// created: the fixture (root and outside) is unchanged after each refusal, for write, move
/// (the destination) and mkdir.
#[tokio::test]
async fn a_refused_path_creates_no_directories() {
    let (fx, escapes) = hostile();
    let files = fx.service();
    files
        .write("here.txt", b"here".to_vec(), WriteOptions::default())
        .await
        .unwrap();
    let refused = [
        "missing/../../x",
        "missing/deeper/../../../x",
        "a/b/c/../../../../outside/x",
        "missing/../link_out/x",
        "missing/../../root/x",
    ];
    let before = common::snapshot(fx.base());
    for path in refused {
        let err = files
            .write(path, b"pwned".to_vec(), WriteOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::PermissionDenied(_)),
            "write {path}: {err:?}"
        );
        assert_refusal_is_silent(&escapes, path, &err);
        assert_eq!(
            common::snapshot(fx.base()),
            before,
            "write {path} left something"
        );

        let err = files
            .move_file("here.txt", path, false, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::PermissionDenied(_)),
            "move to {path}: {err:?}"
        );
        assert_eq!(
            common::snapshot(fx.base()),
            before,
            "move to {path} left something"
        );

        let err = files.mkdir(path).await.unwrap_err();
        assert!(
            matches!(err, Error::PermissionDenied(_)),
            "mkdir {path}: {err:?}"
        );
        assert_eq!(
            common::snapshot(fx.base()),
            before,
            "mkdir {path} left something"
        );
    }
    // Missing parents that stay inside are created, and only the ones the path ends in.
    files
        .write(
            "made/../kept/x.txt",
            b"in".to_vec(),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(fx.root.join("kept/x.txt")).unwrap(), b"in");
    assert!(
        !fx.root.join("made").exists(),
        "a directory `..` left was created"
    );
}

/// A call refused after its path resolved (a wrong `expected_version`, a lease, a payload
/// too large, a move or restore that cannot happen) leaves the root exactly as it was: none
/// of the new path's missing parents is created. Accepted calls still create them.
#[tokio::test]
async fn a_refused_call_to_a_new_nested_path_creates_no_directories() {
    let fx = Fixture::new();
    let mut config = fx.config();
    config.max_write_bytes = 64;
    let files = FilesService::in_memory(config).unwrap();
    files
        .write("here.txt", b"here".to_vec(), WriteOptions::default())
        .await
        .unwrap();
    // A lease on `a/b/f` whose file and directories are then removed: the lease stays.
    files
        .write("a/b/f", b"v1".to_vec(), WriteOptions::default())
        .await
        .unwrap();
    let lease = files
        .lock("a/b/f", "holder", Some(std::time::Duration::from_secs(60)))
        .await
        .unwrap();
    files
        .delete("a/b/f", None, Some(lease.token))
        .await
        .unwrap();
    files.delete("a/b", None, None).await.unwrap();
    files.delete("a", None, None).await.unwrap();
    let source_lease = files
        .lock(
            "here.txt",
            "holder",
            Some(std::time::Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let before = common::snapshot(&fx.root);
    let unchanged = |what: &str, err: Error, ok: fn(&Error) -> bool| {
        assert!(ok(&err), "{what}: {err:?}");
        assert_eq!(common::snapshot(&fx.root), before, "{what} left something");
    };
    let options = |expected_version, lock_token| WriteOptions {
        expected_version,
        lock_token,
        ..Default::default()
    };

    let err = files
        .write("new/sub/f", b"x".to_vec(), options(Some(3), None))
        .await
        .unwrap_err();
    unchanged("write with a wrong expected_version", err, |e| {
        matches!(e, Error::Conflict(_))
    });
    let err = files
        .write("a/b/f", b"x".to_vec(), options(None, None))
        .await
        .unwrap_err();
    unchanged("write to a locked path without a token", err, |e| {
        matches!(e, Error::Locked(_))
    });
    let err = files
        .write("a/b/f", b"x".to_vec(), options(None, Some(lease.token + 1)))
        .await
        .unwrap_err();
    unchanged("write to a locked path with a wrong token", err, |e| {
        matches!(e, Error::Locked(_))
    });
    let err = files
        .write("big/sub/f", vec![b'x'; 65], WriteOptions::default())
        .await
        .unwrap_err();
    unchanged("an oversize write", err, |e| {
        matches!(e, Error::PayloadTooLarge(_))
    });
    let err = files
        .move_file("here.txt", "moved/sub/f", false, None)
        .await
        .unwrap_err();
    unchanged("a move of a locked source", err, |e| {
        matches!(e, Error::Locked(_))
    });
    let err = files
        .move_file("missing.txt", "moved/sub/f", false, None)
        .await
        .unwrap_err();
    unchanged("a move of a missing source", err, |e| {
        matches!(e, Error::NotFound(_))
    });
    let err = files
        .restore("restored/sub/f", 1, WriteOptions::default())
        .await
        .unwrap_err();
    unchanged("a restore of a version that does not exist", err, |e| {
        matches!(e, Error::NotFound(_))
    });

    // Accepted calls create the missing parents.
    files
        .write(
            "a/b/f",
            b"holder".to_vec(),
            WriteOptions {
                lock_token: Some(lease.token),
                durable: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(fx.root.join("a/b/f")).unwrap(), b"holder");
    files
        .move_file("here.txt", "moved/sub/f", false, Some(source_lease.token))
        .await
        .unwrap();
    assert_eq!(std::fs::read(fx.root.join("moved/sub/f")).unwrap(), b"here");
    let leftovers: Vec<_> = common::snapshot(&fx.root)
        .into_keys()
        .filter(|path| path.to_string_lossy().contains(".mcp-tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

/// Swaps `root/work` for a symlink to `target` (absolute or relative) and back while writes
/// run; nothing may land in `outside`.
fn swap_race(target_of: impl Fn(&Path) -> std::path::PathBuf + Send + 'static) {
    let fx = Fixture::new();
    let outside = fx.base().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::create_dir(fx.root.join("work")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (root, outside, stop, swaps) = (
            fx.root.clone(),
            outside.clone(),
            stop.clone(),
            swaps.clone(),
        );
        std::thread::spawn(move || {
            let link_target = target_of(&outside);
            let (work, real) = (root.join("work"), root.join("work_real"));
            while !stop.load(Ordering::Relaxed) {
                put_back_the_real_directory(&work, &real);
                if std::fs::rename(&work, &real).is_err() {
                    std::thread::yield_now();
                    continue;
                }
                if symlink(&link_target, &work).is_ok() {
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::yield_now();
                put_back_the_real_directory(&work, &real);
                // Leave the real directory in place for a moment so some writes land.
                std::thread::sleep(std::time::Duration::from_micros(300));
            }
            put_back_the_real_directory(&work, &real);
        })
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (ok, refused) = runtime.block_on(async {
        let mut config = fx.config();
        config.watch = false;
        let files = Arc::new(FilesService::in_memory(config).unwrap());
        let mut tasks = Vec::new();
        for task in 0..4 {
            let (files, swaps) = (files.clone(), swaps.clone());
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut refused) = (0, 0);
                // At least 400 writes each, and on until the swapper has raced a while (on
                // a loaded machine 400 writes can be over before it swapped much).
                for i in 0..20_000 {
                    if i >= 400 && swaps.load(Ordering::Relaxed) >= 50 {
                        break;
                    }
                    let path = format!("work/t{task}-{i}.txt");
                    match files
                        .write(&path, b"data".to_vec(), WriteOptions::default())
                        .await
                    {
                        Ok(_) => ok += 1,
                        Err(_) => refused += 1,
                    }
                    let _ = files.read(&path, ReadRange::Whole).await;
                }
                (ok, refused)
            }));
        }
        let mut totals = (0, 0);
        for task in tasks {
            let (ok, refused) = task.await.unwrap();
            totals.0 += ok;
            totals.1 += refused;
        }
        totals
    });
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let swaps = swaps.load(Ordering::Relaxed);
    let leaked: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(leaked.is_empty(), "files landed outside: {leaked:?}");
    assert!(swaps > 10, "the swapper must actually race ({swaps} swaps)");
    assert!(
        ok > 0,
        "some writes must succeed ({ok} ok, {refused} refused)"
    );
    // Everything written landed inside the root.
    let written = std::fs::read_dir(fx.root.join("work"))
        .map(|d| d.count())
        .unwrap_or(0)
        + std::fs::read_dir(fx.root.join("work_real"))
            .map(|d| d.count())
            .unwrap_or(0);
    assert!(
        written >= ok.min(1),
        "{written} files inside for {ok} successful writes"
    );
}

#[test]
fn a_directory_swapped_for_an_absolute_symlink_during_writes_never_leaks_outside() {
    swap_race(|outside| outside.to_path_buf());
}

#[test]
fn a_directory_swapped_for_a_relative_symlink_during_writes_never_leaks_outside() {
    // `root/work -> ../outside`: relative, so it is not refused for being absolute.
    swap_race(|_| Path::new("../outside").to_path_buf());
}
