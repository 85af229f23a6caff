//! The conformance suite: plain async functions over `&dyn Trait` that every backend's tests
//! call. Each function works under a fresh random prefix, so runs against a shared server do
//! not collide, and cleans up after itself where the trait allows.
//!
//! Time-dependent checks sleep with `tokio::time::sleep`: in-memory backends run them with a
//! paused clock (instant), real backends in real time with short TTLs.

pub mod audit;
pub mod data;
pub mod events;
pub mod graph;
pub mod kv;
pub mod lock;
pub mod rate_limit;
pub mod vector;
pub mod version;

/// A fresh prefix (`t<random hex>:`) that keeps one test run's keys apart from others'.
pub fn unique_prefix() -> String {
    format!("t{:016x}:", rand_u64())
}

fn rand_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

/// The URL of a real test server from `var` (e.g. `MCP_TEST_REDIS_URL`).
///
/// Without it, a developer run skips (returns `None`, with a note on stderr); under `CI=true`
/// a missing server is a failure, never a silent skip.
pub fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("{var} is not set, but CI=true requires every real server: run scripts/services.sh up")
        }
        _ => {
            eprintln!("skipping: {var} is not set (run `eval \"$(scripts/services.sh up)\"`)");
            None
        }
    }
}
