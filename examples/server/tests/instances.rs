//! Several instances on real shared backends (Redis, PostgreSQL, Neo4j): what one instance
//! writes (memory, files, context documents) the other reads, its cache never serves a value older than a returned write, the Redis rate
//! limit is one budget for both, and a backend that goes away turns into 503.

mod common;

use std::net::SocketAddr;

use common::{TempRoot, TestServer};
use mcp_backends::testing::server_url;
use mcp_server::client::Client;
use mcp_server::config::{hash_key, ApiKey, ServerConfig};
use mcp_server::Error;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

fn shared_config(kv: &str, events: &str) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.backends.kv = kv.to_owned();
    config.backends.events = events.to_owned();
    config
}

async fn coherent_pair(kv: &str, events: &str) {
    let a = TestServer::start(shared_config(kv, events)).await;
    let b = TestServer::start(shared_config(kv, events)).await;
    let on_a = Client::new(a.url("")).unwrap();
    let on_b = Client::new(b.url("")).unwrap();
    let key = format!("coherence:{}", uuid::Uuid::new_v4().simple());
    for round in 0..50 {
        on_a.call("memory", "store", json!({"key": key, "value": round}))
            .await
            .unwrap();
        // B has the previous value cached from the last round; it must not serve it.
        let got = on_b
            .call("memory", "retrieve", json!({"key": key}))
            .await
            .unwrap();
        assert_eq!(
            got["value"],
            json!(round),
            "instance B served a stale value"
        );
    }
    on_b.call("memory", "delete", json!({"key": key}))
        .await
        .unwrap();
    let err = on_a
        .call("memory", "retrieve", json!({"key": key}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Service(mcp_core::Error::NotFound(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn two_instances_on_redis_stay_coherent() {
    let Some(redis) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    coherent_pair(&redis, &redis).await;
}

#[tokio::test]
async fn two_instances_on_postgres_with_redis_events_stay_coherent() {
    let (Some(postgres), Some(redis)) = (
        server_url("MCP_TEST_POSTGRES_URL"),
        server_url("MCP_TEST_REDIS_URL"),
    ) else {
        return;
    };
    coherent_pair(&postgres, &redis).await;
}

#[tokio::test]
async fn redis_rate_limit_is_one_budget_for_both_instances() {
    let Some(redis) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut config = ServerConfig::default();
    config.backends.rate_limit = redis;
    // One request earned per 100 s: no refill between the calls, however slow the machine.
    config.limits.rate_per_second = 0.01;
    config.limits.rate_burst = 2;
    config.keys = vec![ApiKey {
        hash: hash_key(&token),
        principal: format!("budget-{token}"),
        scopes: vec!["*".into()],
    }];
    let a = TestServer::start(config.clone()).await;
    let b = TestServer::start(config).await;
    let http = common::http_client();
    let mut statuses = Vec::new();
    for server in [&a, &b, &a, &b] {
        let response = http
            .post(server.url("/api/mcp/memory/stats"))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
}

/// Forwards loopback connections to `target` until the returned set is dropped or aborted.
async fn forwarder(target: SocketAddr) -> (SocketAddr, JoinSet<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            connections.spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, tasks)
}

#[tokio::test]
async fn backend_gone_gives_503_and_unready_health() {
    let Some(redis) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let host_port = redis
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let target: SocketAddr = tokio::net::lookup_host(host_port)
        .await
        .unwrap()
        .next()
        .unwrap();
    let (proxy, mut link) = forwarder(target).await;
    let url = format!("redis://{proxy}");
    let server = TestServer::start(shared_config(&url, "memory://")).await;
    let http = common::http_client();
    let stored = http
        .post(server.url("/api/mcp/memory/store"))
        .json(&json!({"key": "outage", "value": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);

    link.abort_all();
    while link.join_next().await.is_some() {}

    let started = std::time::Instant::now();
    let response = http
        .post(server.url("/api/mcp/memory/store"))
        .json(&json!({"key": "outage", "value": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(
        started.elapsed().as_secs() < 10,
        "the outage must be reported fast"
    );
    let health = http.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["ready"], false);
}

#[tokio::test]
async fn files_written_on_a_read_on_b_and_a_lock_on_a_blocks_b() {
    let (Some(redis), Some(postgres)) = (
        server_url("MCP_TEST_REDIS_URL"),
        server_url("MCP_TEST_POSTGRES_URL"),
    ) else {
        return;
    };
    let root = TempRoot::new();
    let mut config = shared_config(&redis, &redis);
    config.roots = vec![root.0.clone()];
    config.backends.locks = redis.clone();
    config.backends.versions = postgres;
    let a = TestServer::start(config.clone()).await;
    let b = TestServer::start(config).await;
    let on_a = Client::new(a.url("")).unwrap();
    let on_b = Client::new(b.url("")).unwrap();

    for round in 0..10 {
        let text = format!("round {round}");
        on_a.call(
            "files",
            "write",
            json!({"path": "shared.txt", "content": text}),
        )
        .await
        .unwrap();
        let read = on_b
            .call("files", "read", json!({"path": "shared.txt"}))
            .await
            .unwrap();
        assert_eq!(
            read["content"],
            json!(text),
            "instance B served a stale file"
        );
    }
    let lock = on_a
        .call("files", "lock", json!({"path": "shared.txt", "owner": "a"}))
        .await
        .unwrap();
    let err = on_b
        .call(
            "files",
            "write",
            json!({"path": "shared.txt", "content": "b"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Service(mcp_core::Error::Locked(_))),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read_to_string(root.0.join("shared.txt")).unwrap(),
        "round 9"
    );
    on_a.call(
        "files",
        "unlock",
        json!({"path": "shared.txt", "token": lock["token"]}),
    )
    .await
    .unwrap();
    on_b.call(
        "files",
        "write",
        json!({"path": "shared.txt", "content": "b"}),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_document_added_on_a_is_found_on_b() {
    let Some(neo4j) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let mut config = ServerConfig::default();
    config.backends.vectors = neo4j.clone();
    config.backends.graph = neo4j;
    let a = TestServer::start(config.clone()).await;
    let b = TestServer::start(config).await;
    let on_a = Client::new(a.url("")).unwrap();
    let on_b = Client::new(b.url("")).unwrap();
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let id = format!("doc-{marker}");
    let text = format!("Instances share the knowledge in Neo4j, marker {marker}.");
    on_a.call(
        "context",
        "add",
        json!({"id": id, "text": text, "metadata": {"origin": "a"}}),
    )
    .await
    .unwrap();

    common::document_is_shared(&on_a, &on_b, &id, &text, &format!("marker {marker}")).await;
}
