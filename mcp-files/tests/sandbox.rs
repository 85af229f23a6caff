//! The sandbox escape corpus, legitimate odd names, a property test over random paths, and
//! the race where a directory is swapped for a symlink while writes run.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{snapshot, Fixture};
use mcp_core::Error;
use mcp_files::{FilesService, ReadRange, TextEdit, WriteOptions};
use proptest::prelude::*;

/// A root with an `outside/` directory (canary inside), a sibling `root_evil/` sharing the
/// root's name prefix, and symlinks inside the root pointing out in every way.
fn hostile() -> Fixture {
    let fx = Fixture::new();
    let base = fx.base().to_path_buf();
    let outside = base.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("canary.txt"), "canary").unwrap();
    std::fs::create_dir(base.join("root_evil")).unwrap();
    std::fs::write(base.join("root_evil/secret.txt"), "secret").unwrap();
    let root = &fx.root;
    symlink("../outside", root.join("link_out")).unwrap();
    symlink(&outside, root.join("abs_out")).unwrap();
    symlink("chain2", root.join("chain1")).unwrap();
    symlink("chain3", root.join("chain2")).unwrap();
    symlink("../outside", root.join("chain3")).unwrap();
    symlink("../outside/canary.txt", root.join("file_link")).unwrap();
    symlink("../outside/created_by_dangling", root.join("dangling")).unwrap();
    symlink(outside.join("created_abs"), root.join("dangling_abs")).unwrap();
    std::fs::create_dir(root.join("inner")).unwrap();
    symlink("../../outside", root.join("inner/up_out")).unwrap();
    fx
}

/// Everything outside the root, which no operation may change.
fn outside_state(fx: &Fixture) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut all = snapshot(fx.base());
    all.retain(|path, _| !path.starts_with(&fx.root));
    all
}

fn escape_corpus(fx: &Fixture) -> Vec<String> {
    let base = fx.base().to_str().unwrap().to_owned();
    vec![
        "../outside/canary.txt".into(),
        "./../outside/canary.txt".into(),
        "inner/../../outside/canary.txt".into(),
        "../../../../../../../../etc/passwd".into(),
        format!("{base}/outside/canary.txt"),
        format!("{base}/root_evil/secret.txt"),
        format!("{base}/root/../outside/canary.txt"),
        "/etc/passwd".into(),
        "link_out/canary.txt".into(),
        "abs_out/canary.txt".into(),
        "chain1/canary.txt".into(),
        "inner/up_out/canary.txt".into(),
        "file_link".into(),
        "dangling".into(),
        "dangling_abs".into(),
        "link_out/new_file.txt".into(),
        "abs_out/new_file.txt".into(),
        "chain1/sub/new_file.txt".into(),
        "link_out".into(),
        "root\0/../outside".into(),
        "a\0b".into(),
    ]
}

/// The things a refusal must never reveal: link targets and the location of the outside.
fn secrets(fx: &Fixture) -> Vec<String> {
    vec![
        "../outside".into(),
        "chain2".into(),
        "chain3".into(),
        fx.base().join("outside").to_str().unwrap().to_owned(),
        "created_by_dangling".into(),
        "created_abs".into(),
    ]
}

fn assert_refusal_is_silent(fx: &Fixture, path: &str, err: &Error) {
    let message = err.to_string();
    for secret in secrets(fx) {
        if !path.contains(&secret) {
            assert!(
                !message.contains(&secret),
                "error for {path:?} reveals {secret:?}: {message}"
            );
        }
    }
}

#[tokio::test]
async fn the_escape_corpus_touches_nothing_outside_and_reveals_no_targets() {
    let fx = hostile();
    let files = fx.service();
    let before = outside_state(&fx);
    for path in escape_corpus(&fx) {
        let mut outcomes: Vec<(&str, Result<(), Error>)> = vec![
            ("read", files.read(&path, ReadRange::Whole).await.map(drop)),
            (
                "read_range",
                files.read(&path, ReadRange::Head(1)).await.map(drop),
            ),
            ("list", files.list(&path, true, None, None).await.map(drop)),
            ("tree", files.tree(&path, None, vec![]).await.map(drop)),
            (
                "search",
                files
                    .search(&path, None, Some("canary".into()), None)
                    .await
                    .map(drop),
            ),
            ("stat", files.stat(&path).await.map(drop)),
            (
                "write",
                files
                    .write(&path, b"pwned".to_vec(), WriteOptions::default())
                    .await
                    .map(drop),
            ),
            (
                "edit",
                files
                    .edit(
                        &path,
                        &[TextEdit {
                            old_text: "canary".into(),
                            new_text: "pwned".into(),
                        }],
                        false,
                        WriteOptions::default(),
                    )
                    .await
                    .map(drop),
            ),
            (
                "mkdir",
                files.mkdir(&format!("{path}/newdir")).await.map(drop),
            ),
            (
                "move_to",
                files
                    .move_file("inner/../legit_src.txt", &path, true, None)
                    .await
                    .map(drop),
            ),
            ("lock", files.lock(&path, "x", None).await.map(drop)),
        ];
        // Deleting a symlink inside the root is legitimate (it removes the link); everything
        // else in the corpus must be refused.
        if !["file_link", "dangling", "dangling_abs", "link_out"].contains(&path.as_str()) {
            outcomes.push(("delete", files.delete(&path, None, None).await.map(drop)));
            outcomes.push((
                "move_from",
                files
                    .move_file(&path, "moved_here.txt", true, None)
                    .await
                    .map(drop),
            ));
        }
        for (action, outcome) in outcomes {
            let err = match outcome {
                Ok(()) => panic!("{action} {path:?} succeeded"),
                Err(err) => err,
            };
            assert!(
                matches!(
                    err,
                    Error::PermissionDenied(_) | Error::InvalidArgument(_) | Error::NotFound(_)
                ),
                "{action} {path:?}: unexpected {err:?}"
            );
            assert_refusal_is_silent(&fx, &path, &err);
        }
        assert_eq!(
            outside_state(&fx),
            before,
            "something outside changed after {path:?}"
        );
    }
    // Listing the root shows the links as links, without following them.
    let listing = files.list(".", true, None, Some(1000)).await.unwrap();
    assert!(listing.entries.iter().all(|e| !e.path.contains("canary")));
    let found = files
        .search(".", None, Some("canary".into()), None)
        .await
        .unwrap();
    assert!(found.matches.is_empty(), "{:?}", found.matches);
}

#[tokio::test]
async fn deleting_a_symlink_removes_the_link_not_its_target() {
    let fx = hostile();
    let files = fx.service();
    let before = outside_state(&fx);
    files.delete("file_link", None, None).await.unwrap();
    files.delete("link_out", None, None).await.unwrap();
    assert!(!fx.root.join("file_link").exists());
    assert_eq!(outside_state(&fx), before);
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
    let fx = hostile();
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
        let fx = hostile();
        let base = fx.base().to_str().unwrap().to_owned();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let before = outside_state(&fx);
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
                    assert_ne!(read.content.as_deref(), Some("canary"), "{path:?} read the canary");
                }
                if let Err(err) = files.stat(&path).await {
                    assert_refusal_is_silent(&fx, &path, &err);
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
        prop_assert_eq!(outside_state(&fx), before);
    }
}

#[test]
fn a_directory_swapped_for_a_symlink_during_writes_never_leaks_outside() {
    let fx = Fixture::new();
    let outside = fx.base().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::create_dir(fx.root.join("work")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (root, outside, stop) = (fx.root.clone(), outside.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let real = root.join("work_real");
                if std::fs::rename(root.join("work"), &real).is_ok() {
                    let _ = symlink(&outside, root.join("work"));
                    std::thread::yield_now();
                    let _ = std::fs::remove_file(root.join("work"));
                    let _ = std::fs::rename(&real, root.join("work"));
                    swaps += 1;
                    // Leave the real directory in place for a moment so some writes land.
                    std::thread::sleep(std::time::Duration::from_micros(300));
                }
            }
            swaps
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
            let files = files.clone();
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut refused) = (0, 0);
                for i in 0..400 {
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
    let swaps = swapper.join().unwrap();
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
    let _ = Path::new("");
}
