//! MCP Streamable HTTP at `/mcp`: the bearer key is checked before MCP sees the request, and the
//! key's scopes apply to tools exactly as on REST.

mod common;

use common::TestServer;
use mcp_server::config::{hash_key, ApiKey, ServerConfig};
use serde_json::{json, Value};

/// Posts one JSON-RPC message and returns the JSON-RPC answer (from JSON or SSE framing).
async fn rpc(
    server: &TestServer,
    token: Option<&str>,
    session: Option<&str>,
    message: Value,
) -> (reqwest::StatusCode, Option<String>, Option<Value>) {
    let mut request = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&message);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let answer = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .chain(std::iter::once(text.as_str()))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|value| value.get("id").is_some());
    (status, session, answer)
}

#[tokio::test]
async fn mcp_over_http_enforces_keys_and_scopes() {
    let config = ServerConfig {
        keys: vec![ApiKey {
            hash: hash_key("reader"),
            principal: "reader".into(),
            scopes: vec!["memory:retrieve".into()],
        }],
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});

    let (status, _, _) = rpc(&server, None, None, initialize.clone()).await;
    assert_eq!(status, 401);

    let (status, session, answer) = rpc(&server, Some("reader"), None, initialize).await;
    assert_eq!(status, 200);
    assert_eq!(answer.unwrap()["result"]["protocolVersion"], "2025-11-25");
    let session = session.expect("a session id");
    let (status, _, _) = rpc(
        &server,
        Some("reader"),
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert!(status.is_success(), "{status}");

    let (_, _, denied) = rpc(
        &server,
        Some("reader"),
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "memory_store", "arguments": {"key": "k", "value": 1}}}),
    )
    .await;
    let denied = denied.expect("an answer");
    assert!(
        denied["error"]["message"]
            .as_str()
            .unwrap()
            .contains("permission denied"),
        "{denied}"
    );
    let (_, _, missing) = rpc(
        &server,
        Some("reader"),
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "memory_retrieve", "arguments": {"key": "k"}}}),
    )
    .await;
    let missing = missing.expect("an answer");
    assert_eq!(missing["result"]["isError"], true, "{missing}");
}
