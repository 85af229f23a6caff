//! No acknowledged write is lost when the server dies: the real `mcp-server` binary, with files
//! versions in PostgreSQL, takes a concurrent REST write load; it is killed with SIGKILL in the
//! middle of it, started again on the same root and database, and every version a client saw
//! acknowledged is in `files/versions` with exactly the content that was written.

mod common;

use std::ffi::OsStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ServerProcess, TempRoot};
use mcp_backends::testing::server_url;
use serde_json::{json, Value};

/// Concurrent writing clients.
const CLIENTS: usize = 8;

/// Writes each client attempts at most (the kill normally ends the load well before).
const MAX_WRITES_PER_CLIENT: usize = 5_000;

/// Acknowledged writes before the kill (the load is then under way, with writes in flight).
const KILL_AFTER_ACKS: usize = 100;

/// The binary on an ephemeral loopback port with files versions in `versions_url`.
fn start(root: &TempRoot, versions_url: &str) -> ServerProcess {
    ServerProcess::start([
        OsStr::new("--versions-url"),
        OsStr::new(versions_url),
        OsStr::new("--root"),
        root.0.as_os_str(),
    ])
}

/// One acknowledged write: the path, the version the server returned and what was written.
#[derive(Clone, Debug)]
struct Ack {
    path: String,
    version: u64,
    content: String,
}

async fn call(http: &reqwest::Client, base: &str, action: &str, body: Value) -> (u16, Value) {
    let response = http
        .post(format!("{base}/api/mcp/files/{action}"))
        .json(&body)
        .send()
        .await
        .expect("the restarted server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_a_write_load_loses_no_acknowledged_version() {
    let Some(postgres) = server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    let root = TempRoot::new();
    let mut server = start(&root, &postgres);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let acks = Arc::new(Mutex::new(Vec::<Ack>::new()));
    // Writes sent whose answer never came (in flight at the kill) or that were refused.
    let unanswered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (http, base, acks, unanswered) = (
            http.clone(),
            server.base.clone(),
            acks.clone(),
            unanswered.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut failures = 0;
            for n in 0..MAX_WRITES_PER_CLIENT {
                // Each client has its own file and all share one.
                let path = if n % 2 == 0 {
                    format!("own/{client}.txt")
                } else {
                    "shared.txt".to_owned()
                };
                let content = format!("client {client} write {n}\n{}", "x".repeat(n % 512));
                let sent = http
                    .post(format!("{base}/api/mcp/files/write"))
                    .json(&json!({"path": path, "content": content}))
                    .send()
                    .await;
                let written = match sent {
                    Ok(response) if response.status() == 200 => response.json::<Value>().await.ok(),
                    _ => None,
                };
                match written.and_then(|body| body["version"].as_u64()) {
                    Some(version) => acks.lock().unwrap().push(Ack {
                        path,
                        version,
                        content,
                    }),
                    // The server is gone: connection refused from here on.
                    None => {
                        unanswered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        failures += 1;
                        if failures >= 3 {
                            return;
                        }
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    while acks.lock().unwrap().len() < KILL_AFTER_ACKS {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the write load did not get {KILL_AFTER_ACKS} acknowledgements in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let acked_before_kill = acks.lock().unwrap().len();
    server.kill();
    for client in clients {
        client.await.unwrap();
    }
    let acks = acks.lock().unwrap().clone();

    let restarted = start(&root, &postgres);
    let mut paths: Vec<String> = acks.iter().map(|ack| ack.path.clone()).collect();
    paths.sort();
    paths.dedup();
    let checking = Instant::now();
    for path in &paths {
        let (status, listed) =
            call(&http, &restarted.base, "versions", json!({"path": path})).await;
        assert_eq!(status, 200, "{path}: {listed}");
        let mut versions: Vec<u64> = listed["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["version"].as_u64().unwrap())
            .collect();
        // `files/versions` lists the newest `max_versions_listed` (100); older ones are
        // checked by number through `files/version` below.
        versions.sort_unstable();
        let oldest = versions[0];
        let newest = *versions.last().unwrap();
        let expected: Vec<u64> = (oldest..=newest).collect();
        assert_eq!(versions, expected, "{path}: the history has gaps");
        for ack in acks.iter().filter(|ack| &ack.path == path) {
            // One older than the listing window is checked by number below.
            assert!(
                ack.version <= newest,
                "{path} v{} was acknowledged and is not in the history after the kill (newest v{newest})",
                ack.version
            );
        }
    }
    for ack in &acks {
        let (status, version) = call(
            &http,
            &restarted.base,
            "version",
            json!({"path": ack.path, "version": ack.version}),
        )
        .await;
        assert_eq!(status, 200, "{} v{}: {version}", ack.path, ack.version);
        assert_eq!(
            version["content"],
            json!(ack.content),
            "{} v{} has other content than was acknowledged",
            ack.path,
            ack.version
        );
    }
    eprintln!(
        "kill -9 after {acked_before_kill} acknowledged writes ({} in all, over {} paths; {} writes unanswered or refused): all found after the restart, checked in {:?}",
        acks.len(),
        paths.len(),
        unanswered.load(std::sync::atomic::Ordering::Relaxed),
        checking.elapsed()
    );
}
