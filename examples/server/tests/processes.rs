//! Two real `mcp-server` processes on different ports, sharing Redis (memory store, events,
//! file leases, rate limit), PostgreSQL (file versions), Neo4j (context) and one files root, as
//! two instances on one host would: what A writes B reads, B's warm caches never serve a value
//! older than a write A acknowledged, and a lease taken on A blocks writes on B.

mod common;

use std::ffi::OsStr;

use common::{http_client, ServerProcess, TempRoot};
use mcp_backends::testing::server_url;
use mcp_server::client::Client;
use mcp_server::Error;
use serde_json::{json, Value};

/// Rounds of write-on-A-then-read-on-B per value kind.
const ROUNDS: usize = 20;

/// One instance on the shared backends and `root`.
fn instance(root: &TempRoot, redis: &str, postgres: &str, neo4j: &str) -> ServerProcess {
    let flags = [
        ("--kv-url", redis),
        ("--events-url", redis),
        ("--locks-url", redis),
        ("--rate-limit-url", redis),
        ("--versions-url", postgres),
        ("--context-url", neo4j),
    ];
    let mut args: Vec<&OsStr> = flags
        .iter()
        .flat_map(|(flag, url)| [OsStr::new(flag), OsStr::new(url)])
        .collect();
    args.extend([OsStr::new("--root"), root.0.as_os_str()]);
    ServerProcess::start(args)
}

fn not_found(err: &Error) -> bool {
    matches!(err, Error::Service(mcp_core::Error::NotFound(_)))
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_on_shared_backends_stay_coherent() {
    let (Some(redis), Some(postgres), Some(neo4j)) = (
        server_url("MCP_TEST_REDIS_URL"),
        server_url("MCP_TEST_POSTGRES_URL"),
        server_url("MCP_TEST_NEO4J_URL"),
    ) else {
        return;
    };
    let root = TempRoot::new();
    let a = instance(&root, &redis, &postgres, &neo4j);
    let b = instance(&root, &redis, &postgres, &neo4j);
    assert_ne!(a.base, b.base);
    let on_a = Client::new(a.base.clone()).unwrap();
    let on_b = Client::new(b.base.clone()).unwrap();
    let run = uuid::Uuid::new_v4().simple().to_string();

    // Memory: B reads the key first (its cache is warm), then every value A stores is what B
    // reads next.
    let namespace = format!("processes-{run}");
    let key = json!({"key": "shared", "namespace": namespace});
    let stored = |value: Value| json!({"key": "shared", "namespace": namespace, "value": value});
    let values = std::iter::once(json!("initial")).chain((0..ROUNDS).map(|round| json!(round)));
    for value in values {
        on_a.call("memory", "store", stored(value.clone()))
            .await
            .unwrap();
        let got = on_b.call("memory", "retrieve", key.clone()).await.unwrap();
        assert_eq!(got["value"], value, "B served a stale memory value");
    }
    on_b.call("memory", "delete", key.clone()).await.unwrap();
    let err = on_a.call("memory", "retrieve", key).await.unwrap_err();
    assert!(not_found(&err), "{err:?}");

    // Files: the same, on the shared root with versions in PostgreSQL.
    let path = format!("processes-{run}/shared.txt");
    // The first write creates the file; each later one is a new version.
    let contents: Vec<String> = std::iter::once("initial".to_owned())
        .chain((0..ROUNDS).map(|round| format!("round {round}")))
        .collect();
    for content in &contents {
        on_a.call("files", "write", json!({"path": path, "content": content}))
            .await
            .unwrap();
        let read = on_b
            .call("files", "read", json!({"path": path}))
            .await
            .unwrap();
        assert_eq!(read["content"], json!(content), "B served a stale file");
    }
    let versions = on_b
        .call("files", "versions", json!({"path": path}))
        .await
        .unwrap();
    assert_eq!(
        versions["versions"].as_array().map(Vec::len),
        Some(ROUNDS + 1),
        "every write of either process is one version: {versions}"
    );

    // A lease taken on A blocks a write on B without its token (423), not one with it.
    let lock = on_a
        .call("files", "lock", json!({"path": path, "owner": "a"}))
        .await
        .unwrap();
    let token = lock["token"].as_u64().expect("a fencing token");
    let blocked = http_client()
        .post(format!("{}/api/mcp/files/write", b.base))
        .json(&json!({"path": path, "content": "from b"}))
        .send()
        .await
        .expect("B answers");
    assert_eq!(blocked.status(), 423);
    let body: Value = blocked.json().await.unwrap();
    assert_eq!(body["error"]["code"], "locked", "{body}");
    assert_eq!(
        &std::fs::read_to_string(root.0.join(&path)).unwrap(),
        contents.last().unwrap(),
        "the refused write left the file alone"
    );
    on_b.call(
        "files",
        "write",
        json!({"path": path, "content": "from b", "lock_token": token}),
    )
    .await
    .unwrap();
    let read = on_a
        .call("files", "read", json!({"path": path}))
        .await
        .unwrap();
    assert_eq!(read["content"], "from b", "A served a stale file");
    on_a.call("files", "unlock", json!({"path": path, "token": token}))
        .await
        .unwrap();

    // Context: a document added on A is found on B by id and by every search mode.
    let id = format!("processes-{run}");
    let text = format!("Two processes share the knowledge in Neo4j, marker {run}.");
    on_a.call("context", "add", json!({"id": id, "text": text}))
        .await
        .unwrap();
    common::document_is_shared(&on_a, &on_b, &id, &text, &format!("marker {run}")).await;
    // Dropping `a` and `b` kills both processes.
}
