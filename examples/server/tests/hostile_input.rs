//! Hostile request bodies get clear errors on every transport: oversized bodies (REST 413,
//! MCP HTTP 413, WebSocket close 1009), 10,000 nested arrays (a clean 400 / error, no stack
//! overflow), invalid UTF-8, huge TTLs, negative limits and unknown fields (refused naming
//! the field, in every action's arguments and in nested ones), while MCP's own `_meta` still
//! works. Over stdio, lines that are not JSON are dropped by rmcp and the session keeps
//! serving. After each refusal the server keeps serving.

mod common;

use std::time::Duration;

use common::{TempRoot, TestServer};
use futures_util::{SinkExt, StreamExt};
use mcp_server::config::{Limits, ServerConfig};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const MAX_BODY: usize = 64 * 1024;

async fn server(root: &TempRoot) -> TestServer {
    std::fs::write(root.0.join("a.txt"), "alpha\n").unwrap();
    TestServer::start(ServerConfig {
        roots: vec![root.0.clone()],
        limits: Limits {
            max_body_bytes: MAX_BODY,
            ..Limits::default()
        },
        ..ServerConfig::default()
    })
    .await
}

fn deep(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// POSTs raw bytes to a REST action; returns the status and the `error` object (or body).
async fn rest_raw(server: &TestServer, path: &str, body: Vec<u8>) -> (u16, Value) {
    let response = common::http_client()
        .post(server.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text}));
    (status, body)
}

async fn rest(server: &TestServer, service: &str, action: &str, args: Value) -> (u16, Value) {
    rest_raw(
        server,
        &format!("/api/mcp/{service}/{action}"),
        args.to_string().into_bytes(),
    )
    .await
}

/// Asserts a REST refusal with `status`, `code` and a message containing every `words`.
fn refused(answer: &(u16, Value), status: u16, code: &str, words: &[&str]) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    for word in words {
        assert!(message.contains(word), "{message:?} lacks {word:?}");
    }
}

async fn still_serving(server: &TestServer) {
    let (status, body) = rest(
        server,
        "memory",
        "store",
        json!({"key": "alive", "value": 1}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_refuses_hostile_bodies_clearly() {
    let root = TempRoot::new();
    let server = server(&root).await;

    let huge = json!({"key": "k", "value": "x".repeat(MAX_BODY)});
    let answer = rest(&server, "memory", "store", huge).await;
    refused(
        &answer,
        413,
        "payload_too_large",
        &["exceeds", &MAX_BODY.to_string()],
    );

    for body in [
        deep(10_000),
        format!("{{\"key\":\"k\",\"value\":{}}}", deep(10_000)),
    ] {
        let answer = rest_raw(&server, "/api/mcp/memory/store", body.into_bytes()).await;
        refused(&answer, 400, "invalid_argument", &["recursion limit"]);
    }

    let invalid = b"{\"key\": \"k\xff\xfe\", \"value\": 1}".to_vec();
    let answer = rest_raw(&server, "/api/mcp/memory/store", invalid).await;
    refused(&answer, 400, "invalid_argument", &["UTF-8"]);

    let answer = rest(
        &server,
        "memory",
        "store",
        json!({"key": "k", "value": 1, "ttl": u64::MAX}),
    )
    .await;
    refused(&answer, 400, "invalid_argument", &["ttl", "exceeds"]);
    let answer = rest(
        &server,
        "memory",
        "expire",
        json!({"key": "k", "ttl": u64::MAX}),
    )
    .await;
    refused(&answer, 400, "invalid_argument", &["ttl", "exceeds"]);
    let answer = rest(
        &server,
        "files",
        "lock",
        json!({"path": "a.txt", "ttl_ms": u64::MAX}),
    )
    .await;
    refused(&answer, 400, "invalid_argument", &["ttl"]);
    let answer = rest(
        &server,
        "memory",
        "store",
        json!({"key": "k", "value": 1, "ttl": 1e300}),
    )
    .await;
    refused(&answer, 400, "invalid_argument", &["ttl"]);

    for (service, action, args) in [
        ("files", "list", json!({"path": ".", "limit": -1})),
        (
            "files",
            "search",
            json!({"path": ".", "query": "a", "limit": -1}),
        ),
        ("memory", "search", json!({"pattern": "*", "limit": -1})),
        ("context", "search", json!({"query": "a", "limit": -1})),
        ("context", "read_graph", json!({"limit": -1})),
        ("files", "tree", json!({"path": ".", "depth": -1})),
        ("files", "read", json!({"path": "a.txt", "head": -1})),
    ] {
        let answer = rest(&server, service, action, args).await;
        refused(&answer, 400, "invalid_argument", &[action, "-1"]);
    }
    for (service, action) in [
        ("memory", "search"),
        ("context", "search"),
        ("context", "read_graph"),
    ] {
        let args = if service == "memory" {
            json!({"pattern": "*", "limit": 0})
        } else {
            json!({"query": "a", "limit": 0})
        };
        let args = if action == "read_graph" {
            json!({"limit": 0})
        } else {
            args
        };
        let answer = rest(&server, service, action, args).await;
        refused(&answer, 400, "invalid_argument", &["limit"]);
    }
    still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_are_refused_by_name_in_every_action() {
    let root = TempRoot::new();
    let server = server(&root).await;
    let listing: Value = common::http_client()
        .get(server.url("/api/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tools = listing["tools"].as_array().unwrap();
    assert!(tools.len() >= 40);
    for tool in tools {
        let (service, action) = (
            tool["service"].as_str().unwrap(),
            tool["action"].as_str().unwrap(),
        );
        let answer = rest(&server, service, action, json!({"no_such_field": 1})).await;
        refused(
            &answer,
            400,
            "invalid_argument",
            &["unknown field", "no_such_field"],
        );
    }
    // Unknown fields inside nested argument objects too.
    for (service, action, args) in [
        (
            "files",
            "edit",
            json!({"path": "a.txt", "edits": [{"old_text": "alpha", "new_text": "b", "no_such_field": 1}]}),
        ),
        (
            "context",
            "add_many",
            json!({"documents": [{"text": "t", "no_such_field": 1}]}),
        ),
        (
            "context",
            "create_entities",
            json!({"entities": [{"name": "n", "entity_type": "t", "observations": [], "no_such_field": 1}]}),
        ),
        (
            "context",
            "create_relations",
            json!({"relations": [{"from": "a", "to": "b", "relation_type": "r", "no_such_field": 1}]}),
        ),
    ] {
        let answer = rest(&server, service, action, args).await;
        refused(
            &answer,
            400,
            "invalid_argument",
            &["unknown field", "no_such_field"],
        );
    }
    assert_eq!(
        std::fs::read_to_string(root.0.join("a.txt")).unwrap(),
        "alpha\n"
    );
}

async fn ws_connect(
    server: &TestServer,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws/mcp", server.addr))
        .await
        .unwrap();
    socket
}

async fn ws_next(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an answer in time")
            .expect("the socket open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

fn ws_refused(answer: &Value, code: &str, words: &[&str]) {
    assert_eq!(answer["error"]["code"], code, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    for word in words {
        assert!(message.contains(word), "{message:?} lacks {word:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_refuses_hostile_messages_clearly() {
    let root = TempRoot::new();
    let server = server(&root).await;
    let mut socket = ws_connect(&server).await;

    let message = format!(
        r#"{{"id": 1, "service": "memory", "action": "store", "payload": {{"key": "k", "value": {}}}}}"#,
        deep(10_000)
    );
    socket.send(Message::text(message)).await.unwrap();
    ws_refused(
        &ws_next(&mut socket).await,
        "invalid_argument",
        &["recursion limit"],
    );

    socket
        .send(Message::binary(b"{\"id\": 2, \"service\": \"memory\", \"action\": \"store\", \"payload\": {\"key\": \"\xff\", \"value\": 1}}".to_vec()))
        .await
        .unwrap();
    ws_refused(&ws_next(&mut socket).await, "invalid_argument", &["UTF-8"]);

    for (id, payload, words) in [
        (
            3,
            json!({"key": "k", "value": 1, "ttl": u64::MAX}),
            vec!["ttl", "exceeds"],
        ),
        (4, json!({"pattern": "*", "limit": -1}), vec!["-1"]),
        (
            5,
            json!({"key": "k", "value": 1, "no_such_field": true}),
            vec!["no_such_field"],
        ),
    ] {
        let action = if id == 4 { "search" } else { "store" };
        let request = json!({"id": id, "service": "memory", "action": action, "payload": payload});
        socket
            .send(Message::text(request.to_string()))
            .await
            .unwrap();
        let answer = ws_next(&mut socket).await;
        assert_eq!(answer["id"], id, "{answer}");
        ws_refused(&answer, "invalid_argument", &words);
    }
    let request = json!({"id": 6, "service": "memory", "action": "store", "payload": {"key": "k", "value": 1}, "no_such_field": 1});
    socket
        .send(Message::text(request.to_string()))
        .await
        .unwrap();
    ws_refused(
        &ws_next(&mut socket).await,
        "invalid_argument",
        &["no_such_field"],
    );

    // The socket still serves.
    let request = json!({"id": 7, "service": "memory", "action": "store", "payload": {"key": "k", "value": 1}});
    socket
        .send(Message::text(request.to_string()))
        .await
        .unwrap();
    let answer = ws_next(&mut socket).await;
    assert_eq!(answer["result"]["status"], "stored", "{answer}");

    // An oversized message closes the socket with 1009 (message too big).
    let big = json!({"id": 8, "service": "memory", "action": "store", "payload": {"key": "k", "value": "x".repeat(MAX_BODY)}});
    socket.send(Message::text(big.to_string())).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Close(frame)) => return frame.map(|f| f.code),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the socket closes");
    assert_eq!(
        closed,
        Some(CloseCode::Size),
        "an oversized message closes with 1009"
    );
    still_serving(&server).await;
}

/// POSTs raw bytes as one MCP message to `/mcp` (with `session`); status and body text.
async fn mcp_raw(server: &TestServer, session: Option<&str>, body: Vec<u8>) -> (u16, String) {
    let mut request = common::http_client()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .body(body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn rpc_answer(text: &str) -> Value {
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .chain(std::iter::once(text))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|value| value.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC answer in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_http_refuses_hostile_messages_clearly() {
    let root = TempRoot::new();
    let server = server(&root).await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let response = common::http_client()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = response.text().await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    mcp_raw(
        &server,
        Some(&session),
        initialized.to_string().into_bytes(),
    )
    .await;

    let call = |id: u64, arguments: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "memory_store", "arguments": arguments}})
        .to_string()
        .into_bytes()
    };
    let (status, text) = mcp_raw(
        &server,
        Some(&session),
        call(2, json!({"key": "k", "value": "x".repeat(MAX_BODY)})),
    )
    .await;
    assert_eq!(status, 413, "{text}");

    let body = format!(
        r#"{{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {{"name": "memory_store", "arguments": {{"key": "k", "value": {}}}}}}}"#,
        deep(10_000)
    );
    let (status, text) = mcp_raw(&server, Some(&session), body.into_bytes()).await;
    assert!((400..500).contains(&status), "{status} {text}");
    assert!(text.contains("recursion limit"), "{text}");

    let (status, text) = mcp_raw(&server, Some(&session), b"{\"jsonrpc\": \"2.0\", \"id\": 4, \"method\": \"tools/call\", \"params\": {\"name\": \"memory_store\", \"arguments\": {\"key\": \"\xff\", \"value\": 1}}}".to_vec()).await;
    assert!((400..500).contains(&status), "{status} {text}");

    for (id, arguments, word) in [
        (
            5,
            json!({"key": "k", "value": 1, "ttl": u64::MAX}),
            "exceeds",
        ),
        (
            6,
            json!({"key": "k", "value": 1, "no_such_field": 1}),
            "no_such_field",
        ),
    ] {
        let (status, text) = mcp_raw(&server, Some(&session), call(id, arguments)).await;
        assert_eq!(status, 200, "{text}");
        let answer = rpc_answer(&text);
        assert_eq!(answer["result"]["isError"], true, "{answer}");
        assert!(answer.to_string().contains(word), "{answer}");
    }
    // `_meta` belongs to MCP, not to the arguments: a call carrying it works.
    let with_meta = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "memory_store", "arguments": {"key": "k", "value": 1},
        "_meta": {"progressToken": "p1", "vendor/extra": {"a": 1}}}});
    let (status, text) = mcp_raw(&server, Some(&session), with_meta.to_string().into_bytes()).await;
    assert_eq!(status, 200, "{text}");
    let answer = rpc_answer(&text);
    assert_eq!(
        answer["result"]["structuredContent"]["status"], "stored",
        "{answer}"
    );
    still_serving(&server).await;
}

/// The binary over stdio: raw lines in, JSON-RPC answers out.
struct StdioPipe {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl StdioPipe {
    /// The binary over `root`, with a body (line) limit of `MAX_BODY`.
    fn start(root: &TempRoot) -> StdioPipe {
        use tokio::io::AsyncBufReadExt;
        let config = root.0.join("server.toml");
        std::fs::write(&config, format!("[limits]\nmax_body_bytes = {MAX_BODY}\n")).unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-server"))
            .arg("--stdio")
            .arg("--config")
            .arg(&config)
            .arg("--root")
            .arg(&root.0)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        StdioPipe {
            stdin: child.stdin.take().unwrap(),
            stdout: tokio::io::BufReader::new(child.stdout.take().unwrap()).lines(),
            _child: child,
        }
    }

    async fn send(&mut self, line: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stdin.write_all(line).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
    }

    /// The answer with `id`; every line on stdout must be JSON.
    async fn answer(&mut self, id: u64) -> Value {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(20), self.stdout.next_line())
                .await
                .expect("an answer in time")
                .unwrap()
                .expect("stdout open");
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["id"] == id {
                return message;
            }
        }
    }

    async fn call(&mut self, id: u64, arguments: Value) -> Value {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "memory_store", "arguments": arguments}});
        self.send(call.to_string().as_bytes()).await;
        self.answer(id).await
    }
}

/// Over stdio, rmcp drops lines that are not JSON (as the other official SDKs do: answering
/// garbage can start an error storm with a peer that echoes it) and lines over the body limit,
/// so the check there is that oversized lines, deep nesting, invalid UTF-8 and garbage neither
/// crash nor wedge the session (and the oversized call is not served), and that bad arguments
/// inside a well-formed call still get a clear `isError` answer.
#[tokio::test]
async fn mcp_stdio_survives_hostile_lines_and_refuses_bad_arguments() {
    let root = TempRoot::new();
    let mut pipe = StdioPipe::start(&root);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    pipe.send(init.to_string().as_bytes()).await;
    let answer = pipe.answer(1).await;
    assert!(answer["result"]["protocolVersion"].is_string(), "{answer}");
    pipe.send(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
            .to_string()
            .as_bytes(),
    )
    .await;
    // A line over the body limit is dropped unread (the key must not be stored).
    let oversized = json!({"jsonrpc": "2.0", "id": 89, "method": "tools/call", "params": {
        "name": "memory_store", "arguments": {"key": "oversized", "value": "x".repeat(MAX_BODY)}}});
    let hostile = [
        oversized.to_string().into_bytes(),
        format!(r#"{{"jsonrpc": "2.0", "id": 90, "method": "tools/call", "params": {{"name": "memory_store", "arguments": {{"key": "k", "value": {}}}}}}}"#, deep(10_000)).into_bytes(),
        b"{\"jsonrpc\": \"2.0\", \"id\": 91, \"method\": \"ping\", \"params\": {\"x\": \"\xff\xfe\"}}".to_vec(),
        b"not json at all \x00\x01".to_vec(),
        deep(10_000).into_bytes(),
    ];
    // Each hostile line is followed by a real call that must be answered.
    for (n, line) in hostile.iter().enumerate() {
        pipe.send(line).await;
        let id = 10 + n as u64;
        let answer = pipe.call(id, json!({"key": "alive", "value": n})).await;
        assert_eq!(
            answer["result"]["structuredContent"]["status"], "stored",
            "{answer}"
        );
    }
    let retrieve = json!({"jsonrpc": "2.0", "id": 30, "method": "tools/call",
        "params": {"name": "memory_retrieve", "arguments": {"key": "oversized"}}});
    pipe.send(retrieve.to_string().as_bytes()).await;
    let answer = pipe.answer(30).await;
    assert_eq!(
        answer["result"]["isError"], true,
        "the oversized line was served"
    );
    for (id, arguments, word) in [
        (
            20,
            json!({"key": "k", "value": 1, "ttl": u64::MAX}),
            "exceeds",
        ),
        (
            21,
            json!({"key": "k", "value": 1, "no_such_field": 1}),
            "no_such_field",
        ),
        (22, json!({"key": "k", "value": 1, "ttl": -1}), "ttl"),
    ] {
        let answer = pipe.call(id, arguments).await;
        assert_eq!(answer["result"]["isError"], true, "{answer}");
        assert!(answer.to_string().contains(word), "{answer}");
    }
}
