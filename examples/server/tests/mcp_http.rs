//! MCP Streamable HTTP at `/mcp`: the bearer key is checked before MCP sees the request, the
//! key's scopes apply to tools exactly as on REST, and rmcp's latest protocol revision works
//! (per-request `_meta` without a session; `initialize` naming it gets the newest handshake
//! revision).

mod common;

use common::{mcp_rpc as rpc, mcp_rpc_at, TestServer};
use mcp_server::config::{hash_key, ApiKey, ServerConfig};
use rmcp::model::ProtocolVersion;
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

/// The request `_meta` that replaces the `initialize` handshake from rmcp's latest revision on.
fn latest_meta() -> serde_json::Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": ProtocolVersion::LATEST.as_str(),
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    })
}

#[tokio::test]
async fn latest_revision_over_http_needs_no_session_and_keeps_scopes() {
    assert!(!ProtocolVersion::LATEST.has_initialize());
    let latest = ProtocolVersion::LATEST.as_str();
    let config = ServerConfig {
        keys: vec![ApiKey {
            hash: hash_key("writer"),
            principal: "writer".into(),
            scopes: vec!["memory:store".into(), "memory:retrieve".into()],
        }],
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;

    let discover = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
        "params": {"_meta": latest_meta()}});
    let (status, _, _) = mcp_rpc_at(&server, latest, None, None, discover.clone()).await;
    assert_eq!(
        status, 401,
        "the key is checked before MCP sees the request"
    );
    let (status, session, discovered) =
        mcp_rpc_at(&server, latest, Some("writer"), None, discover).await;
    assert_eq!(status, 200, "{discovered:?}");
    assert_eq!(session, None, "the latest revision is sessionless");
    let discovered = discovered.expect("an answer");
    assert!(
        discovered["result"]["supportedVersions"]
            .as_array()
            .is_some_and(|versions| versions.contains(&json!(latest))),
        "{discovered}"
    );

    let store = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "memory_store", "arguments": {"key": "latest", "value": 7}, "_meta": latest_meta()}});
    let (status, _, stored) = mcp_rpc_at(&server, latest, Some("writer"), None, store).await;
    assert_eq!(status, 200, "{stored:?}");
    let stored = stored.expect("an answer");
    assert_eq!(stored["result"]["isError"], false, "{stored}");
    let retrieve = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "memory_retrieve", "arguments": {"key": "latest"}, "_meta": latest_meta()}});
    let (_, _, got) = mcp_rpc_at(&server, latest, Some("writer"), None, retrieve).await;
    let got = got.expect("an answer");
    assert_eq!(got["result"]["structuredContent"]["value"], 7, "{got}");

    let delete = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
        "name": "memory_delete", "arguments": {"key": "latest"}, "_meta": latest_meta()}});
    let (_, _, denied) = mcp_rpc_at(&server, latest, Some("writer"), None, delete).await;
    let denied = denied.expect("an answer");
    assert!(
        denied["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("permission denied")),
        "{denied}"
    );
}

#[tokio::test]
async fn initialize_naming_the_latest_revision_over_http_gets_the_newest_handshake_revision() {
    let server = TestServer::start(ServerConfig::default()).await;
    let latest = ProtocolVersion::LATEST.as_str();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": latest, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let (status, session, answer) = mcp_rpc_at(&server, latest, None, None, initialize).await;
    assert_eq!(status, 200, "{answer:?}");
    let answer = answer.expect("an answer");
    // The latest revision has no handshake, so the answer names the newest one that has.
    let negotiated = ProtocolVersion::LATEST_WITH_INITIALIZE.as_str();
    assert_eq!(answer["result"]["protocolVersion"], negotiated, "{answer}");
    let session = session.expect("a session id");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _, _) = mcp_rpc_at(&server, negotiated, None, Some(&session), initialized).await;
    assert!((200..300).contains(&status), "{status}");
    let store = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "memory_store", "arguments": {"key": "k", "value": 1}}});
    let (_, _, stored) = mcp_rpc_at(&server, negotiated, None, Some(&session), store).await;
    let stored = stored.expect("an answer");
    assert_eq!(stored["result"]["isError"], false, "{stored}");
}
