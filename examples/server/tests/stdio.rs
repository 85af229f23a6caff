//! The binary over stdio: initialize (2025-11-25), rmcp's latest revision (per-request `_meta`
//! instead of a handshake, and `initialize` naming it answered with the newest handshake
//! revision), tools/list with every registry action, a tools/call round trip, an action failure
//! as `isError`, an unknown tool as a JSON-RPC error, and nothing but JSON-RPC on stdout.

use std::process::Stdio;
use std::time::Duration;

use rmcp::model::ProtocolVersion;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

struct Session {
    /// A directory made for this session only, removed on drop.
    _scratch: Option<Scratch>,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Session {
    async fn start(protocol: &str) -> (Session, Value) {
        let (mut session, root) = Session::spawn_scratch();
        let init = session.initialize(protocol).await;
        session._scratch = Some(root);
        (session, init)
    }

    /// The binary on an empty scratch root, before any message.
    fn spawn_scratch() -> (Session, Scratch) {
        let root =
            std::env::temp_dir().join(format!("mcp-stdio-empty-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&root).unwrap();
        (Session::spawn(&root), Scratch(root))
    }

    async fn start_in(protocol: &str, root: &std::path::Path) -> (Session, Value) {
        let mut session = Session::spawn(root);
        let init = session.initialize(protocol).await;
        (session, init)
    }

    fn spawn(root: &std::path::Path) -> Session {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-server"))
            .arg("--stdio")
            .arg("--root")
            .arg(root)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Session {
            _scratch: None,
            child,
            stdin,
            stdout,
        }
    }

    /// The `initialize` handshake naming `protocol`; returns the answer.
    async fn initialize(&mut self, protocol: &str) -> Value {
        let init = self
            .request(
                1,
                "initialize",
                json!({"protocolVersion": protocol, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}),
            )
            .await;
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        init
    }

    async fn send(&mut self, message: Value) {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
    }

    async fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let message = self.next_message().await;
            if message["id"] == json!(id) {
                return message;
            }
        }
    }

    /// The next message on stdout, which must be a JSON-RPC message.
    async fn next_message(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(20), self.stdout.next_line())
            .await
            .expect("an answer in time")
            .unwrap()
            .expect("stdout open");
        let message: Value = serde_json::from_str(&line)
            .unwrap_or_else(|err| panic!("stdout carried a non-JSON line {line:?}: {err}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
        message
    }
}

struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn stdio_tools_round_trip() {
    let (mut session, init) = Session::start("2025-11-25").await;
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(init["result"]["serverInfo"]["name"], "mcp-server");

    let tools = session.request(2, "tools/list", json!({})).await;
    let tools = tools["result"]["tools"].as_array().unwrap().clone();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    for expected in [
        "memory_store",
        "memory_retrieve",
        "context_add",
        "context_search",
        "context_read_graph",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for tool in &tools {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert!(tool["annotations"]["readOnlyHint"].is_boolean(), "{tool}");
    }
    let retrieve = tools
        .iter()
        .find(|t| t["name"] == "memory_retrieve")
        .unwrap();
    assert_eq!(retrieve["annotations"]["readOnlyHint"], true);
    assert!(retrieve["outputSchema"].is_object());

    let stored = session
        .request(
            3,
            "tools/call",
            json!({"name": "memory_store", "arguments": {"key": "k", "value": [1, 2]}}),
        )
        .await;
    assert_eq!(stored["result"]["isError"], false, "{stored}");
    let got = session
        .request(
            4,
            "tools/call",
            json!({"name": "memory_retrieve", "arguments": {"key": "k"}}),
        )
        .await;
    assert_eq!(
        got["result"]["structuredContent"]["value"],
        json!([1, 2]),
        "{got}"
    );

    let bad = session
        .request(
            5,
            "tools/call",
            json!({"name": "memory_store", "arguments": {"key": 3}}),
        )
        .await;
    assert_eq!(bad["result"]["isError"], true, "{bad}");
    let text = bad["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("invalid argument"), "{text}");

    let unknown = session
        .request(
            6,
            "tools/call",
            json!({"name": "nope_nothing", "arguments": {}}),
        )
        .await;
    assert!(unknown["error"]["code"].is_i64(), "{unknown}");

    let mut uris = Vec::new();
    let mut params = json!({});
    for page in 0..10 {
        let resources = session
            .request(100 + page, "resources/list", params.clone())
            .await;
        for resource in resources["result"]["resources"].as_array().unwrap() {
            uris.push(resource["uri"].as_str().unwrap().to_owned());
        }
        match resources["result"]["nextCursor"].as_str() {
            Some(cursor) => params = json!({"cursor": cursor}),
            None => break,
        }
    }
    assert!(uris.iter().any(|u| u == "memory://default/k"), "{uris:?}");
    assert!(uris.iter().any(|u| u == "context://graph"), "{uris:?}");
    let read = session
        .request(8, "resources/read", json!({"uri": "memory://default/k"}))
        .await;
    assert_eq!(read["result"]["contents"][0]["text"], "[1,2]", "{read}");

    // Closing stdin ends the server cleanly.
    drop(session.stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), session.child.wait())
        .await
        .expect("exit after stdin closes")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn stdio_subscription_gets_resource_updates() {
    let (mut session, _) = Session::start("2025-11-25").await;
    session
        .request(
            2,
            "tools/call",
            json!({"name": "memory_store", "arguments": {"key": "w", "value": 1}}),
        )
        .await;
    let subscribed = session
        .request(
            3,
            "resources/subscribe",
            json!({"uri": "memory://default/w"}),
        )
        .await;
    assert!(subscribed.get("result").is_some(), "{subscribed}");
    session
        .send(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "memory_store", "arguments": {"key": "w", "value": 2}}}))
        .await;
    let mut updated = false;
    for _ in 0..4 {
        let line = tokio::time::timeout(Duration::from_secs(10), session.stdout.next_line())
            .await
            .expect("messages in time")
            .unwrap()
            .unwrap();
        let message: Value = serde_json::from_str(&line).unwrap();
        if message["method"] == "notifications/resources/updated" {
            assert_eq!(message["params"]["uri"], "memory://default/w");
            updated = true;
            break;
        }
    }
    assert!(updated, "no notifications/resources/updated");
}

#[tokio::test]
async fn stdio_subscription_is_told_when_the_key_expires() {
    let (mut session, _) = Session::start("2025-11-25").await;
    session
        .request(
            2,
            "tools/call",
            json!({"name": "memory_store", "arguments": {"key": "brief", "value": 1, "ttl": 1}}),
        )
        .await;
    let subscribed = session
        .request(
            3,
            "resources/subscribe",
            json!({"uri": "memory://default/brief"}),
        )
        .await;
    assert!(subscribed.get("result").is_some(), "{subscribed}");
    // No write follows: the only reason for an update is the expiry.
    let line = tokio::time::timeout(Duration::from_secs(10), session.stdout.next_line())
        .await
        .expect("an update in time")
        .unwrap()
        .unwrap();
    let message: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        message["method"], "notifications/resources/updated",
        "{message}"
    );
    assert_eq!(message["params"]["uri"], "memory://default/brief");
    let read = session
        .request(
            4,
            "resources/read",
            json!({"uri": "memory://default/brief"}),
        )
        .await;
    assert!(
        read.get("error").is_some(),
        "expired key still readable: {read}"
    );
}

#[tokio::test]
async fn stdio_file_resources_list_read_and_update() {
    let root = std::env::temp_dir().join(format!("mcp-stdio-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let root = root.canonicalize().unwrap();
    std::fs::write(root.join("a.txt"), "alpha").unwrap();
    let uri = format!("file://{}", root.join("a.txt").display());
    let (mut session, _) = Session::start_in("2025-11-25", &root).await;
    let listed = session.request(2, "resources/list", json!({})).await;
    let uris: Vec<String> = listed["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["uri"].as_str().map(str::to_owned))
        .collect();
    assert!(uris.contains(&uri), "{uris:?}");
    let read = session
        .request(3, "resources/read", json!({"uri": uri}))
        .await;
    assert_eq!(read["result"]["contents"][0]["text"], "alpha", "{read}");
    let subscribed = session
        .request(4, "resources/subscribe", json!({"uri": uri}))
        .await;
    assert!(subscribed.get("result").is_some(), "{subscribed}");
    // A change made outside the server is noticed too.
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::write(root.join("a.txt"), "alpha, changed").unwrap();
    let line = tokio::time::timeout(Duration::from_secs(10), session.stdout.next_line())
        .await
        .expect("an update in time")
        .unwrap()
        .unwrap();
    let message: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        message["method"], "notifications/resources/updated",
        "{message}"
    );
    assert_eq!(message["params"]["uri"], json!(uri));
    let outside = session
        .request(5, "resources/read", json!({"uri": "file:///etc/passwd"}))
        .await;
    assert!(outside.get("error").is_some(), "{outside}");
    std::fs::remove_dir_all(&root).ok();
}

/// A subscribed file swapped for a symlink to a file outside the root: the swap itself may be
/// announced (the file is gone), but changes of the outside file never are, so a subscription
/// cannot be used to watch outside files.
#[tokio::test]
async fn a_subscription_never_follows_a_symlink_swapped_in_outside_the_root() {
    let base =
        std::env::temp_dir().join(format!("mcp-stdio-swap-{}", uuid::Uuid::new_v4().simple()));
    let (root, outside) = (base.join("root"), base.join("outside"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let root = root.canonicalize().unwrap();
    std::fs::write(root.join("watched.txt"), "inside").unwrap();
    std::fs::write(outside.join("secret.txt"), "s").unwrap();
    let uri = format!("file://{}", root.join("watched.txt").display());
    let (mut session, _) = Session::start_in("2025-11-25", &root).await;
    let subscribed = session
        .request(2, "resources/subscribe", json!({"uri": uri}))
        .await;
    assert!(subscribed.get("result").is_some(), "{subscribed}");
    std::fs::remove_file(root.join("watched.txt")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("watched.txt")).unwrap();
    let mut updates = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut grow = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => break,
            _ = grow.tick() => {
                // The outside file changes size every 100 ms.
                let mut secret = std::fs::read_to_string(outside.join("secret.txt")).unwrap();
                secret.push('s');
                std::fs::write(outside.join("secret.txt"), secret).unwrap();
            }
            line = session.stdout.next_line() => {
                let message: Value = serde_json::from_str(&line.unwrap().unwrap()).unwrap();
                assert_eq!(message["method"], "notifications/resources/updated", "{message}");
                updates += 1;
            }
        }
    }
    assert!(
        updates <= 1,
        "{updates} updates: the outside file's changes leaked"
    );
    std::fs::remove_dir_all(&base).ok();
}

/// `files_read` gives the file's text as a text block of its own, after the other fields as
/// JSON, read from disk or from the cache, on the direct path and through rmcp alike.
#[tokio::test]
async fn a_file_read_shows_the_text_as_it_is() {
    let (mut session, _) = Session::start("2025-11-25").await;
    let root = session._scratch.as_ref().unwrap().0.clone();
    let text = "line one\n\"two\" \\ tab\t é\n";
    std::fs::write(root.join("shown.txt"), text).unwrap();
    let read = json!({"name": "files_read", "arguments": {"path": "shown.txt"}});
    let mut through_rmcp = read.clone();
    through_rmcp["_meta"] = json!({});
    let check = |answer: &Value| {
        let result = &answer["result"];
        assert_eq!(result["isError"], false, "{answer}");
        let blocks = result["content"].as_array().unwrap();
        assert_eq!(blocks.len(), 2, "{answer}");
        assert_eq!(blocks[1]["text"], text, "{answer}");
        let fields: Value = serde_json::from_str(blocks[0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(fields["version"], 1, "{answer}");
        assert_eq!(fields["path"], "shown.txt", "{answer}");
        assert!(fields.get("content").is_none(), "{answer}");
        assert_eq!(result["structuredContent"]["content"], text, "{answer}");
        result["structuredContent"]["source"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // The first read comes from disk. The watcher's event for the write above may still
    // empty the cache after it, so read until a read comes from the cache (made in pieces).
    assert_eq!(
        check(&session.request(700, "tools/call", read.clone()).await),
        "disk"
    );
    let mut id = 701;
    while check(&session.request(id, "tools/call", read.clone()).await) != "cache" {
        assert!(id < 900, "no read came from the cache");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        id += 1;
    }
    check(&session.request(id + 1, "tools/call", through_rmcp).await);
}

/// Plain `tools/call` requests are answered by the transport next to rmcp (`stdio.rs`); the same
/// call with a `_meta` goes through rmcp's handler. Both must give the same answer.
#[tokio::test]
async fn plain_calls_get_the_answers_rmcp_gives() {
    let (mut session, _) = Session::start("2025-11-25").await;
    let root = session._scratch.as_ref().unwrap().0.clone();
    std::fs::write(root.join("note.txt"), "x".repeat(1024)).unwrap();
    let setup = [
        json!({"name": "memory_store", "arguments": {"key": "k", "value": {"a": [1, "two"]}}}),
        json!({"name": "context_create_entities", "arguments": {"entities": [
            {"name": "Ada", "entity_type": "person", "observations": ["wrote \"notes\""]},
            {"name": "Charles", "entity_type": "person", "observations": []}]}}),
        // Fills the cache, so that both reads below say `"source": "cache"`.
        json!({"name": "files_read", "arguments": {"path": "note.txt"}}),
    ];
    for (i, params) in setup.into_iter().enumerate() {
        let answer = session.request(10 + i as u64, "tools/call", params).await;
        assert_eq!(answer["result"]["isError"], false, "{answer}");
    }
    let calls = [
        json!({"name": "memory_retrieve", "arguments": {"key": "k"}}),
        json!({"name": "context_open_nodes", "arguments": {"names": ["Ada"]}}),
        json!({"name": "files_read", "arguments": {"path": "note.txt"}}),
        // An action failure (a tool result with isError), a bad argument, an unknown tool
        // (a JSON-RPC error) and no arguments at all.
        json!({"name": "memory_retrieve", "arguments": {"key": "missing"}}),
        json!({"name": "memory_store", "arguments": {"key": 3}}),
        json!({"name": "nope_nothing", "arguments": {}}),
        json!({"name": "memory_list"}),
        // Arguments that are not an object, and a wrong type deeper in them.
        json!({"name": "memory_list", "arguments": [1]}),
        json!({"name": "files_read", "arguments": {"path": "note.txt", "head": "2"}}),
    ];
    for (i, plain) in calls.into_iter().enumerate() {
        let mut through_rmcp = plain.clone();
        through_rmcp["_meta"] = json!({});
        let id = 100 + 2 * i as u64;
        let direct = session.request(id, "tools/call", plain.clone()).await;
        let handled = session.request(id + 1, "tools/call", through_rmcp).await;
        assert!(
            direct.get("result").is_some() || direct.get("error").is_some(),
            "{direct}"
        );
        assert_eq!(direct["result"], handled["result"], "{plain}");
        assert_eq!(direct["error"], handled["error"], "{plain}");
    }
}

/// Pipelined plain calls, some finishing at once and some (file writes, on the blocking pool)
/// going on in tasks of their own, each get exactly one right answer.
#[tokio::test]
async fn pipelined_plain_calls_each_get_one_answer() {
    let (mut session, _) = Session::start("2025-11-25").await;
    let stored = session
        .request(
            2,
            "tools/call",
            json!({"name": "memory_store", "arguments": {"key": "k", "value": 7}}),
        )
        .await;
    assert_eq!(stored["result"]["isError"], false, "{stored}");
    let mut batch = String::new();
    for id in 1000..1300u64 {
        let params = if id.is_multiple_of(3) {
            json!({"name": "files_write", "arguments": {"path": format!("w/{id}.txt"), "content": format!("file {id}")}})
        } else {
            json!({"name": "memory_retrieve", "arguments": {"key": "k"}})
        };
        batch.push_str(
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
                .to_string(),
        );
        batch.push('\n');
    }
    session.stdin.write_all(batch.as_bytes()).await.unwrap();
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < 300 {
        let answer = session.next_message().await;
        let id = answer["id"].as_u64().unwrap();
        assert!(answered.insert(id), "answered twice: {id}");
        assert_eq!(answer["result"]["isError"], false, "{answer}");
        if !id.is_multiple_of(3) {
            assert_eq!(
                answer["result"]["structuredContent"]["value"], 7,
                "{answer}"
            );
        }
    }
    let root = &session._scratch.as_ref().unwrap().0;
    for id in (1000..1300u64).filter(|id| id.is_multiple_of(3)) {
        let written = std::fs::read_to_string(root.join(format!("w/{id}.txt"))).unwrap();
        assert_eq!(written, format!("file {id}"));
    }
}

/// A client that stops reading (closes its end of the server's stdout) while it still sends
/// calls: the server notices at the next answer it cannot write and exits, instead of reading
/// and answering into nowhere until stdin closes.
#[tokio::test]
async fn the_server_exits_when_its_stdout_is_gone() {
    let (session, _) = Session::start("2025-11-25").await;
    let Session {
        mut child,
        mut stdin,
        stdout,
        _scratch,
    } = session;
    drop(stdout);
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "memory_retrieve", "arguments": {"key": "k"}}});
    let line = format!("{call}\n");
    let exited = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            // Once the server is gone, writing to its stdin fails too.
            if stdin.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.wait().await.unwrap()
    })
    .await;
    assert!(
        exited.is_ok(),
        "the server kept running with stdin open and stdout gone"
    );
}

/// The request `_meta` that replaces the `initialize` handshake from rmcp's latest revision on
/// (SEP-2567): protocol version, client capabilities and client info on every request.
fn latest_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": ProtocolVersion::LATEST.as_str(),
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    })
}

#[tokio::test]
async fn stdio_latest_revision_serves_calls_without_a_handshake() {
    assert!(
        !ProtocolVersion::LATEST.has_initialize(),
        "rmcp's latest revision has an initialize handshake again: test it like 2025-11-25"
    );
    let (mut session, _root) = Session::spawn_scratch();
    let discovered = session
        .request(1, "server/discover", json!({"_meta": latest_meta()}))
        .await;
    let versions = discovered["result"]["supportedVersions"]
        .as_array()
        .unwrap_or_else(|| panic!("{discovered}"));
    assert!(
        versions.contains(&json!(ProtocolVersion::LATEST.as_str())),
        "{discovered}"
    );
    assert!(versions.contains(&json!("2025-11-25")), "{discovered}");

    let stored = session
        .request(
            2,
            "tools/call",
            json!({"name": "memory_store", "arguments": {"key": "latest", "value": 7},
                "_meta": latest_meta()}),
        )
        .await;
    assert_eq!(stored["result"]["isError"], false, "{stored}");
    let got = session
        .request(
            3,
            "tools/call",
            json!({"name": "memory_retrieve", "arguments": {"key": "latest"},
                "_meta": latest_meta()}),
        )
        .await;
    assert_eq!(got["result"]["structuredContent"]["value"], 7, "{got}");
}

#[tokio::test]
async fn stdio_initialize_naming_the_latest_revision_gets_the_newest_handshake_revision() {
    // The latest revision has no handshake, so a server can never answer `initialize` with it:
    // rmcp answers with the newest revision that has one, and the session works on that.
    let (mut session, init) = Session::start(ProtocolVersion::LATEST.as_str()).await;
    assert_eq!(
        init["result"]["protocolVersion"],
        ProtocolVersion::LATEST_WITH_INITIALIZE.as_str(),
        "{init}"
    );
    let stored = session
        .request(
            2,
            "tools/call",
            json!({"name": "memory_store", "arguments": {"key": "k", "value": 1}}),
        )
        .await;
    assert_eq!(stored["result"]["isError"], false, "{stored}");
}
