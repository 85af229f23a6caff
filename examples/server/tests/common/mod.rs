//! Starts a real server in process on 127.0.0.1:0 for the integration tests.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::net::SocketAddr;

use mcp_server::config::ServerConfig;
use mcp_server::serve::serve_http;
use mcp_server::App;
use tokio::sync::oneshot;

/// A running server; dropping it shuts the server down.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(config: ServerConfig) -> TestServer {
        let app = App::build(config).await.expect("server assembly");
        TestServer::start_app(app).await
    }

    pub async fn start_app(app: App) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            serve_http(app, listener, async move {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        TestServer {
            addr,
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A real `mcp-server` child process serving HTTP; dropping it kills the process.
pub struct ServerProcess {
    child: std::process::Child,
    /// `http://ADDR` of the server.
    pub base: String,
}

impl ServerProcess {
    /// Starts the binary with `--listen 127.0.0.1:0` and `args`, and waits until it logs the
    /// address it bound.
    pub fn start<I, S>(args: I) -> ServerProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-server"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("mcp-server starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            // Read to the end, so the server never blocks on a full stderr pipe.
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(rest) = line.split("address=").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                        sent = found.send(addr).is_ok();
                    }
                }
            }
        });
        let Ok(addr) = address.recv_timeout(std::time::Duration::from_secs(30)) else {
            let _ = child.kill();
            let status = child.wait();
            panic!("mcp-server did not log its address within 30 s (exit: {status:?})");
        };
        ServerProcess {
            child,
            base: format!("http://{addr}"),
        }
    }

    /// SIGKILL: no shutdown, no flush, no drain.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempRoot(pub std::path::PathBuf);

impl TempRoot {
    pub fn new() -> TempRoot {
        let path =
            std::env::temp_dir().join(format!("mcp-server-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        TempRoot(path.canonicalize().unwrap())
    }

    /// The default (in-memory) server configuration with this directory as its only root.
    pub fn config(&self) -> ServerConfig {
        ServerConfig {
            roots: vec![self.0.clone()],
            ..ServerConfig::default()
        }
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `scripts/services.sh` with `args` (e.g. `["down", "redis"]`), panicking on failure.
pub fn services(args: &[&str]) {
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("scripts/services.sh runs");
    assert!(status.success(), "services.sh {args:?} failed");
}

/// Brings every shared server back up when dropped, so a failing outage test never leaves
/// Redis, PostgreSQL or Neo4j stopped for the other tests.
pub struct ServicesUp;

impl Drop for ServicesUp {
    fn drop(&mut self) {
        let script =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services.sh");
        let _ = std::process::Command::new("bash")
            .arg(script)
            .arg("up")
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// How long a test HTTP request may take before it fails: a hung server fails the test
/// instead of hanging the run.
pub const HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The HTTP client every test uses, with [`HTTP_TIMEOUT`] per request.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// One REST call: status, JSON body (`Null` when the body is not JSON) and how long it took.
pub async fn rest(
    http: &reqwest::Client,
    server: &TestServer,
    service: &str,
    action: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value, std::time::Duration) {
    let started = std::time::Instant::now();
    let response = http
        .post(server.url(&format!("/api/mcp/{service}/{action}")))
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body, started.elapsed())
}

/// Posts one JSON-RPC message to `/mcp` under protocol revision 2025-11-25 and returns the
/// status, the session id header and the JSON-RPC answer (from JSON or SSE framing).
pub async fn mcp_rpc(
    server: &TestServer,
    token: Option<&str>,
    session: Option<&str>,
    message: serde_json::Value,
) -> (u16, Option<String>, Option<serde_json::Value>) {
    mcp_rpc_at(server, "2025-11-25", token, session, message).await
}

/// [`mcp_rpc`] with `MCP-Protocol-Version: protocol`; from the revision that standardized
/// HTTP headers (SEP-2243) on, also `Mcp-Method` and, for `tools/call`, `Mcp-Name`.
pub async fn mcp_rpc_at(
    server: &TestServer,
    protocol: &str,
    token: Option<&str>,
    session: Option<&str>,
    message: serde_json::Value,
) -> (u16, Option<String>, Option<serde_json::Value>) {
    let mut request = http_client()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", protocol)
        .json(&message);
    if protocol >= rmcp::model::ProtocolVersion::STANDARD_HEADERS.as_str() {
        if let Some(method) = message["method"].as_str() {
            request = request.header("mcp-method", method);
            if let Some(name) = message["params"]["name"].as_str() {
                request = request.header("mcp-name", name);
            }
        }
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap_or_default();
    let answer = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .chain(std::iter::once(text.as_str()))
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data.trim()).ok())
        .find(|value| value.get("id").is_some());
    (status, session, answer)
}

/// Opens an MCP session over Streamable HTTP with `token` and returns its id.
pub async fn mcp_session(server: &TestServer, token: &str) -> String {
    let initialize = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
    let (status, session, answer) = mcp_rpc(server, Some(token), None, initialize).await;
    assert_eq!(status, 200, "{answer:?}");
    let session = session.expect("a session id");
    let initialized = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _, _) = mcp_rpc(server, Some(token), Some(&session), initialized).await;
    assert!((200..300).contains(&status), "{status}");
    session
}

/// Checks a document added on one instance from the others: `on_b` reads `id` back with
/// `text` and finds it for `query` in keyword, semantic and hybrid search, deletes it, and
/// `on_a` no longer has it.
pub async fn document_is_shared(
    on_a: &mcp_server::client::Client,
    on_b: &mcp_server::client::Client,
    id: &str,
    text: &str,
    query: &str,
) {
    use serde_json::{json, Value};
    let got = on_b
        .call("context", "get", json!({"id": id}))
        .await
        .unwrap();
    assert_eq!(got["text"], json!(text), "{got}");
    for mode in ["keyword", "semantic", "hybrid"] {
        let found = on_b
            .call(
                "context",
                "search",
                json!({"query": query, "mode": mode, "limit": 5}),
            )
            .await
            .unwrap();
        let ids: Vec<&Value> = found["results"]
            .as_array()
            .map(|hits| hits.iter().map(|hit| &hit["id"]).collect())
            .unwrap_or_default();
        assert!(ids.contains(&&json!(id)), "{mode} search on B: {found}");
    }
    on_b.call("context", "delete", json!({"id": id}))
        .await
        .unwrap();
    let err = on_a
        .call("context", "get", json!({"id": id}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            mcp_server::Error::Service(mcp_core::Error::NotFound(_))
        ),
        "{err:?}"
    );
}
