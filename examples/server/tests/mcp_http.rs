//! MCP Streamable HTTP at `/mcp`: the bearer key is checked before MCP sees the request, and the
//! key's scopes apply to tools exactly as on REST.

mod common;

use common::{mcp_rpc as rpc, TestServer};
use mcp_server::config::{hash_key, ApiKey, ServerConfig};
use serde_json::json;

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
    assert!((200..300).contains(&status), "{status}");

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
