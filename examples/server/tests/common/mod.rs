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

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempRoot(pub std::path::PathBuf);

impl TempRoot {
    pub fn new() -> TempRoot {
        let path =
            std::env::temp_dir().join(format!("mcp-server-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        TempRoot(path.canonicalize().unwrap())
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
