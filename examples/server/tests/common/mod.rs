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
