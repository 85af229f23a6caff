//! Outages of the real servers: with Redis or PostgreSQL stopped (through
//! `scripts/services.sh down`), calls fail with `Unavailable` (or `Timeout`) within a bounded
//! time instead of hanging, and the same store instance works again once the server is back.
//!
//! These tests stop shared servers, so they are ignored by default and run alone, last:
//! `cargo test -p mcp-backends --all-features --test outage -- --ignored --test-threads=1`
//! (`./test` does this).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use mcp_backends::testing::{server_url, unique_prefix};
use mcp_backends::{Error, KvStore, SetOptions};

fn services(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/services.sh");
    let status = Command::new("bash")
        .arg(script)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("scripts/services.sh runs");
    assert!(status.success(), "services.sh {args:?} failed");
}

/// Stops `service`, checks that `store` fails fast, restarts it and checks recovery.
async fn survives_outage(service: &str, store: &dyn KvStore) {
    let key = format!("{}outage", unique_prefix());
    store
        .set(&key, b"before".to_vec(), SetOptions::default())
        .await
        .unwrap();

    services(&["down", service]);
    let started = Instant::now();
    let err = store.get(&key).await.expect_err("the server is down");
    let took = started.elapsed();
    assert!(
        matches!(err, Error::Unavailable { .. } | Error::Timeout { .. }),
        "{service} down gave {err:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "{service} outage took {took:?} to report"
    );
    let err = store
        .set(&key, b"during".to_vec(), SetOptions::default())
        .await
        .expect_err("down");
    assert!(
        matches!(err, Error::Unavailable { .. } | Error::Timeout { .. }),
        "{err:?}"
    );
    eprintln!("{service}: outage reported as `{err}` after {took:?}");

    services(&["up", service]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match store
            .set(&key, b"after".to_vec(), SetOptions::default())
            .await
        {
            Ok(_) => break,
            Err(err) if Instant::now() < deadline => {
                eprintln!("{service}: not back yet ({err})");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(err) => panic!("{service} did not recover: {err:?}"),
        }
    }
    assert_eq!(store.get(&key).await.unwrap(), Some(b"after".to_vec()));
    store.delete(&key).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "stops the shared Redis; run alone: cargo test --test outage -- --ignored --test-threads=1"]
async fn redis_outage_is_unavailable_then_recovers() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let store = mcp_backends::redis::RedisKvStore::connect(&url)
        .await
        .unwrap();
    survives_outage("redis", &store).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "stops the shared PostgreSQL; run alone: cargo test --test outage -- --ignored --test-threads=1"]
async fn postgres_outage_is_unavailable_then_recovers() {
    let Some(url) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    let store = mcp_backends::postgres::PostgresKvStore::connect(&url)
        .await
        .unwrap();
    survives_outage("postgres", &store).await;
}
