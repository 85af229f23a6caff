//! Authentication and scopes on every route and every transport, with API keys configured:
//! every action's REST route, the action listing, `/mcp`, `/ws/mcp` and `/metrics` refuse a
//! missing or unknown key with 401 and `WWW-Authenticate: Bearer`, as does every MCP tool;
//! `/health` stays open for probes (it shows only which backends answer). A key's scopes hold
//! the same way over REST, MCP (tools and resources) and WebSocket, and so does its rate budget,
//! shared by two instances through Redis.

mod common;

use common::{mcp_rpc, mcp_session, TempRoot, TestServer};
use mcp_server::client::WsClient;
use mcp_server::config::{hash_key, ApiKey, ServerConfig};
use mcp_server::{App, Error};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token";
const MEMORY_READER: &str = "memory-reader-token";
const FILES_READER: &str = "files-reader-token";

fn key(token: &str, principal: &str, scopes: &[&str]) -> ApiKey {
    ApiKey {
        hash: hash_key(token),
        principal: principal.into(),
        scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
    }
}

async fn keyed_server(root: &TempRoot) -> (TestServer, App) {
    let config = ServerConfig {
        roots: vec![root.0.clone()],
        keys: vec![
            key(ADMIN, "admin", &["*"]),
            key(MEMORY_READER, "memory-reader", &["memory:retrieve"]),
            key(FILES_READER, "files-reader", &["files:read", "files:stat"]),
        ],
        ..ServerConfig::default()
    };
    let app = App::build(config).await.unwrap();
    (TestServer::start_app(app.clone()).await, app)
}

/// Asserts a 401 with a Bearer challenge.
fn assert_challenged(what: &str, response: &reqwest::Response) {
    assert_eq!(response.status(), 401, "{what}");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer"),
        "{what}: challenge {challenge:?}"
    );
}

/// The credentials every route must refuse: none, an unknown key, a malformed header.
const BAD_CREDENTIALS: [Option<&str>; 4] = [
    None,
    Some("Bearer not-a-key"),
    Some("Bearer "),
    Some("Basic YWRtaW46YWRtaW4="),
];

fn with_credentials(
    request: reqwest::RequestBuilder,
    authorization: Option<&str>,
) -> reqwest::RequestBuilder {
    match authorization {
        Some(value) => request.header("authorization", value),
        None => request,
    }
}

#[tokio::test]
async fn every_route_and_tool_refuses_a_missing_or_unknown_key() {
    let root = TempRoot::new();
    let (server, app) = keyed_server(&root).await;
    let http = common::http_client();
    let actions: Vec<(String, String)> = app
        .registry
        .actions()
        .into_iter()
        .map(|(service, spec)| (service.to_owned(), spec.name.clone()))
        .collect();
    assert!(actions.len() >= 30, "{} actions", actions.len());

    for authorization in BAD_CREDENTIALS {
        for (service, action) in &actions {
            let request = http
                .post(server.url(&format!("/api/mcp/{service}/{action}")))
                .json(&json!({}));
            let response = with_credentials(request, authorization)
                .send()
                .await
                .unwrap();
            assert_challenged(
                &format!("{service}/{action} with {authorization:?}"),
                &response,
            );
        }
        for (method, path) in [
            ("GET", "/api/mcp"),
            ("GET", "/metrics"),
            ("GET", "/mcp"),
            ("POST", "/mcp"),
            ("DELETE", "/mcp"),
            ("GET", "/ws/mcp"),
        ] {
            let request = http.request(method.parse().unwrap(), server.url(path));
            let response = with_credentials(request, authorization)
                .send()
                .await
                .unwrap();
            assert_challenged(
                &format!("{method} {path} with {authorization:?}"),
                &response,
            );
        }
        // Every MCP tool: the key is checked before MCP sees the request.
        for (service, action) in &actions {
            let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": format!("{service}_{action}"), "arguments": {}}});
            let request = http
                .post(server.url("/mcp"))
                .header("accept", "application/json, text/event-stream")
                .json(&call);
            let response = with_credentials(request, authorization)
                .send()
                .await
                .unwrap();
            assert_challenged(
                &format!("tool {service}_{action} with {authorization:?}"),
                &response,
            );
        }
    }

    // A WebSocket upgrade without a valid key is refused before the upgrade.
    for token in [None, Some("not-a-key")] {
        let err = WsClient::connect(&format!("ws://{}/ws/mcp", server.addr), token)
            .await
            .err()
            .expect("the upgrade is refused");
        assert!(err.to_string().contains("401"), "{err}");
    }

    // /health stays open for load balancers and orchestrators, which carry no key.
    let health = http.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // With a valid key the other routes answer.
    for path in ["/api/mcp", "/metrics"] {
        let response = http
            .get(server.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

/// REST status and error code of one call with `token`.
async fn rest_as(
    server: &TestServer,
    token: &str,
    service: &str,
    action: &str,
    body: Value,
) -> (u16, Value) {
    let response = common::http_client()
        .post(server.url(&format!("/api/mcp/{service}/{action}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// An MCP request in `session`; `Err(message)` for a JSON-RPC error or a tool error.
async fn mcp_as(
    server: &TestServer,
    token: &str,
    session: &str,
    method: &str,
    params: Value,
) -> Result<Value, String> {
    let message = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let (status, _, answer) = mcp_rpc(server, Some(token), Some(session), message).await;
    assert_eq!(status, 200, "{method}: {answer:?}");
    let answer = answer.expect("a JSON-RPC answer");
    if let Some(error) = answer.get("error") {
        return Err(error["message"].as_str().unwrap_or_default().to_owned());
    }
    let result = answer["result"].clone();
    if result["isError"] == true {
        return Err(result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned());
    }
    Ok(result)
}

fn assert_denied(what: &str, outcome: Result<Value, String>) {
    match outcome {
        Err(message) => assert!(message.contains("permission denied"), "{what}: {message}"),
        Ok(value) => panic!("{what} was allowed: {value}"),
    }
}

#[tokio::test]
async fn scopes_hold_on_rest_mcp_and_websocket_alike() {
    let root = TempRoot::new();
    std::fs::write(root.0.join("notes.txt"), "private").unwrap();
    let (server, _app) = keyed_server(&root).await;
    let (status, body) = rest_as(
        &server,
        ADMIN,
        "memory",
        "store",
        json!({"key": "k", "value": 1}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let file_uri = format!("file://{}", root.0.join("notes.txt").display());

    // memory:retrieve only: reads memory, stores nothing, reads no file and no graph.
    let (status, body) = rest_as(
        &server,
        MEMORY_READER,
        "memory",
        "store",
        json!({"key": "k", "value": 2}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("permission_denied")),
        "{body}"
    );
    let (status, body) = rest_as(
        &server,
        MEMORY_READER,
        "files",
        "read",
        json!({"path": "notes.txt"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = rest_as(
        &server,
        MEMORY_READER,
        "memory",
        "retrieve",
        json!({"key": "k"}),
    )
    .await;
    assert_eq!((status, &body["value"]), (200, &json!(1)), "{body}");

    let session = mcp_session(&server, MEMORY_READER).await;
    let call = |name: &str, arguments: Value| json!({"name": name, "arguments": arguments});
    assert_denied(
        "MCP memory_store",
        mcp_as(
            &server,
            MEMORY_READER,
            &session,
            "tools/call",
            call("memory_store", json!({"key": "k", "value": 3})),
        )
        .await,
    );
    assert_denied(
        "MCP files_write",
        mcp_as(
            &server,
            MEMORY_READER,
            &session,
            "tools/call",
            call("files_write", json!({"path": "x.txt", "content": "x"})),
        )
        .await,
    );
    let retrieved = mcp_as(
        &server,
        MEMORY_READER,
        &session,
        "tools/call",
        call("memory_retrieve", json!({"key": "k"})),
    )
    .await
    .unwrap();
    assert_eq!(retrieved["structuredContent"]["value"], 1, "{retrieved}");
    // Resources obey the same scopes as the tools behind them.
    let memory = mcp_as(
        &server,
        MEMORY_READER,
        &session,
        "resources/read",
        json!({"uri": "memory://default/k"}),
    )
    .await
    .unwrap();
    assert_eq!(memory["contents"][0]["text"], "1", "{memory}");
    for uri in [file_uri.as_str(), "context://graph"] {
        assert_denied(
            &format!("MCP resources/read {uri}"),
            mcp_as(
                &server,
                MEMORY_READER,
                &session,
                "resources/read",
                json!({"uri": uri}),
            )
            .await,
        );
    }
    assert_denied(
        "MCP resources/subscribe file",
        mcp_as(
            &server,
            MEMORY_READER,
            &session,
            "resources/subscribe",
            json!({"uri": file_uri}),
        )
        .await,
    );

    let ws = WsClient::connect(&format!("ws://{}/ws/mcp", server.addr), Some(MEMORY_READER))
        .await
        .unwrap();
    let err = ws
        .call("memory", "store", json!({"key": "k", "value": 4}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Service(mcp_core::Error::PermissionDenied(_))),
        "{err:?}"
    );
    let err = ws.subscribe("files").await.unwrap_err();
    assert!(
        matches!(err, Error::Service(mcp_core::Error::PermissionDenied(_))),
        "{err:?}"
    );
    assert_eq!(
        ws.call("memory", "retrieve", json!({"key": "k"}))
            .await
            .unwrap()["value"],
        1
    );

    // files:read + files:stat: the file resource reads, memory resources do not, no writes.
    let session = mcp_session(&server, FILES_READER).await;
    let file = mcp_as(
        &server,
        FILES_READER,
        &session,
        "resources/read",
        json!({"uri": file_uri}),
    )
    .await
    .unwrap();
    assert_eq!(file["contents"][0]["text"], "private", "{file}");
    assert_denied(
        "MCP resources/read memory as files reader",
        mcp_as(
            &server,
            FILES_READER,
            &session,
            "resources/read",
            json!({"uri": "memory://default/k"}),
        )
        .await,
    );
    assert_denied(
        "MCP resources/subscribe memory as files reader",
        mcp_as(
            &server,
            FILES_READER,
            &session,
            "resources/subscribe",
            json!({"uri": "memory://default/k"}),
        )
        .await,
    );
    let (status, _) = rest_as(
        &server,
        FILES_READER,
        "files",
        "write",
        json!({"path": "notes.txt", "content": "x"}),
    )
    .await;
    assert_eq!(status, 403);
    let ws = WsClient::connect(&format!("ws://{}/ws/mcp", server.addr), Some(FILES_READER))
        .await
        .unwrap();
    let err = ws
        .call(
            "files",
            "write",
            json!({"path": "notes.txt", "content": "x"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Service(mcp_core::Error::PermissionDenied(_))),
        "{err:?}"
    );

    // Nothing the refused calls tried was done.
    assert_eq!(
        std::fs::read_to_string(root.0.join("notes.txt")).unwrap(),
        "private"
    );
    assert!(!root.0.join("x.txt").exists());
    let (_, body) = rest_as(&server, ADMIN, "memory", "retrieve", json!({"key": "k"})).await;
    assert_eq!(body["value"], 1);
}

#[tokio::test]
async fn one_rate_budget_across_instances_and_transports() {
    let Some(redis) = mcp_backends::testing::server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let token = format!("budget-{}", uuid::Uuid::new_v4().simple());
    let mut config = ServerConfig {
        keys: vec![key(&token, &token, &["*"])],
        ..ServerConfig::default()
    };
    config.backends.rate_limit = redis;
    // One request earned per 100 s: no refill between the calls, however slow the machine.
    config.limits.rate_per_second = 0.01;
    config.limits.rate_burst = 3;
    let a = TestServer::start(config.clone()).await;
    let b = TestServer::start(config).await;
    // Sessions and sockets are opened first: only calls spend the budget.
    let session = mcp_session(&a, &token).await;
    let ws = WsClient::connect(&format!("ws://{}/ws/mcp", b.addr), Some(&token))
        .await
        .unwrap();
    let stats = json!({"name": "memory_stats", "arguments": {}});

    // The burst of 3 is spent once: REST on A, WebSocket on B, MCP on A.
    let (status, body) = rest_as(&a, &token, "memory", "stats", json!({})).await;
    assert_eq!(status, 200, "{body}");
    ws.call("memory", "stats", json!({})).await.unwrap();
    mcp_as(&a, &token, &session, "tools/call", stats.clone())
        .await
        .unwrap();

    // Then every transport on either instance is refused.
    let (status, body) = rest_as(&b, &token, "memory", "stats", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    let err = ws.call("memory", "stats", json!({})).await.unwrap_err();
    assert!(
        matches!(err, Error::Service(mcp_core::Error::RateLimited { .. })),
        "{err:?}"
    );
    let refused = mcp_as(&a, &token, &session, "tools/call", stats).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|message| message.contains("rate limited")),
        "{refused:?}"
    );
}
