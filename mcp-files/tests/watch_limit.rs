//! A root the OS will not let the service watch (the per-user inotify watch limit reached, as
//! in a large home directory or a checkout full of build output): the service still starts,
//! keeps its cache, and checks every cache hit against the disk, so a file changed behind its
//! back is never served stale.
//!
//! The limit is system-wide, so the test lowers it only while the service starts and restores
//! it at once; `./test` runs it alone, by name, after the other tests.

mod common;

use common::Fixture;
use mcp_files::{FilesService, ReadRange, Source};

const LIMIT: &str = "/proc/sys/fs/inotify/max_user_watches";

/// Puts the watch limit back when dropped, also when the test fails.
struct RestoreLimit(String);

impl Drop for RestoreLimit {
    fn drop(&mut self) {
        if let Err(err) = std::fs::write(LIMIT, &self.0) {
            eprintln!("could not restore {LIMIT} to {}: {err}", self.0.trim());
        }
    }
}

#[tokio::test]
#[ignore = "lowers the system-wide inotify watch limit for a moment; run alone by ./test"]
async fn a_root_that_cannot_be_watched_is_served_with_every_hit_checked() {
    let fx = Fixture::new();
    for dir in ["a", "a/b", "c"] {
        std::fs::create_dir(fx.root.join(dir)).unwrap();
    }
    let file = fx.root.join("a/b/note.txt");
    std::fs::write(&file, "one").unwrap();
    let mut config = fx.config();
    config.watch = true;
    config.verify_cache_hits = false;

    let before = std::fs::read_to_string(LIMIT).unwrap();
    let built = {
        if let Err(err) = std::fs::write(LIMIT, "1") {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "cannot lower {LIMIT} (this test needs root): {err}"
            );
            eprintln!("skipped: cannot lower {LIMIT}: {err}");
            return;
        }
        let _restore = RestoreLimit(before.clone());
        FilesService::in_memory(config)
    };
    assert_eq!(std::fs::read_to_string(LIMIT).unwrap(), before);
    let files = built.expect("the service starts without a watcher");

    let first = files.read("a/b/note.txt", ReadRange::Whole).await.unwrap();
    assert_eq!(first.bytes(), b"one");
    let again = files.read("a/b/note.txt", ReadRange::Whole).await.unwrap();
    assert_eq!(again.source, Source::Cache, "the cache still serves hits");
    // Changed behind the service's back, with no watcher to report it.
    std::fs::write(&file, "two, and longer").unwrap();
    let after = files.read("a/b/note.txt", ReadRange::Whole).await.unwrap();
    assert_eq!(after.bytes(), b"two, and longer", "a stale hit was served");
}
