//! The MCP client: short Streamable HTTP sessions on `/mcp` one after another (initialize,
//! the initialized notification, a few `tools/call`s, then `DELETE`), so that per-session
//! handlers the server never frees would show as RSS growth. One session in 64 (by default) is
//! abandoned without `DELETE`, as a client that crashes would (rmcp's session manager drops
//! such idle sessions after its 5-minute keep-alive, so they add up to a plateau).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::pool::{self, Rng, NAMESPACE};
use crate::rest::snippet;
use crate::stats::{Outcome, Recorder};

/// Tool calls per session.
const CALLS: u64 = 8;
const PROTOCOL: &str = "2025-11-25";

/// One MCP client.
pub struct McpClient {
    http: reqwest::Client,
    url: String,
    rng: Rng,
    recorder: Arc<Recorder>,
}

/// What one JSON-RPC post came back with.
struct Answer {
    status: u16,
    session: Option<String>,
    message: Option<Value>,
}

impl McpClient {
    /// Client `id` of `http://127.0.0.1:PORT/mcp`.
    pub fn new(url: &str, id: usize, recorder: Arc<Recorder>) -> Result<McpClient, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(40))
            .build()
            .map_err(|err| format!("HTTP client: {err}"))?;
        Ok(McpClient {
            http,
            url: url.to_owned(),
            rng: Rng::new(id),
            recorder,
        })
    }

    /// Runs sessions until `stop` is set or `budget` sessions ran; one in `abandon_every`
    /// (none for 0) ends without `DELETE`.
    pub async fn run(mut self, stop: Arc<AtomicBool>, budget: u64, abandon_every: u64) {
        for session in 0..budget {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let abandon = abandon_every > 0 && session % abandon_every == abandon_every - 1;
            if !self.session(abandon, &stop).await {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// One session; false when it could not get going.
    async fn session(&mut self, abandon: bool, stop: &AtomicBool) -> bool {
        let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "soak", "version": "1"}}});
        let Some(answer) = self.post("mcp:initialize", None, &initialize).await else {
            return false;
        };
        let Some(session) = answer.session else {
            self.unexpected("mcp:initialize", "no mcp-session-id header".into());
            return false;
        };
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.post("mcp:initialized", Some(&session), &initialized)
            .await;
        for id in 1..=CALLS {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let (tool, arguments) = self.call();
            let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}});
            self.post("mcp:tools_call", Some(&session), &call).await;
        }
        if !abandon {
            self.delete(&session).await;
        }
        true
    }

    fn call(&mut self) -> (&'static str, Value) {
        let rng = &mut self.rng;
        match rng.below(3) {
            0 => {
                let key = pool::memory_key(rng.below(pool::MEMORY_KEYS));
                (
                    "memory_retrieve",
                    json!({"key": key, "namespace": NAMESPACE}),
                )
            }
            1 => {
                let path = pool::shared_path(rng.below(pool::SHARED_FILES));
                ("files_read", json!({"path": path}))
            }
            _ => (
                "context_search",
                json!({"query": pool::query(rng.below(pool::QUERIES)), "limit": 3, "namespace": NAMESPACE}),
            ),
        }
    }

    /// Posts one message and records it: a request needs 200 and a JSON-RPC result (a tool
    /// result with `isError` counts as expected only for a missing memory key), a notification
    /// needs 202.
    async fn post(
        &self,
        op: &'static str,
        session: Option<&str>,
        message: &Value,
    ) -> Option<Answer> {
        let started = Instant::now();
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL)
            .json(message);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        let answer = match read_answer(request).await {
            Ok(answer) => answer,
            Err(err) => {
                self.recorder.record(
                    op,
                    started.elapsed(),
                    Outcome::Unexpected(format!("{op}: {err}")),
                );
                return None;
            }
        };
        let latency = started.elapsed();
        let notification = message.get("id").is_none();
        let outcome = match (&answer.message, answer.status) {
            (_, 202) if notification => Outcome::Ok,
            (Some(reply), 200) if reply.get("result").is_some() => classify(reply),
            (reply, status) => Outcome::Unexpected(format!(
                "{op}: HTTP {status}: {}",
                reply.as_ref().map_or_else(String::new, snippet)
            )),
        };
        let ok = !matches!(outcome, Outcome::Unexpected(_));
        self.recorder.record(op, latency, outcome);
        ok.then_some(answer)
    }

    async fn delete(&self, session: &str) {
        let started = Instant::now();
        let response = self
            .http
            .delete(&self.url)
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", PROTOCOL)
            .send()
            .await;
        let outcome = match response {
            Ok(response) if response.status().is_success() => Outcome::Ok,
            Ok(response) => Outcome::Unexpected(format!("mcp:delete: HTTP {}", response.status())),
            Err(err) => Outcome::Unexpected(format!("mcp:delete: {err}")),
        };
        self.recorder
            .record("mcp:delete", started.elapsed(), outcome);
    }

    fn unexpected(&self, op: &'static str, message: String) {
        self.recorder.record(
            op,
            Duration::ZERO,
            Outcome::Unexpected(format!("{op}: {message}")),
        );
    }
}

/// A JSON-RPC result: a tool error is expected only when it says a key was not found.
fn classify(reply: &Value) -> Outcome {
    let result = &reply["result"];
    if result["isError"].as_bool() != Some(true) {
        return Outcome::Ok;
    }
    let text = result["content"][0]["text"].as_str().unwrap_or("");
    if text.contains("not found") || text.contains("not_found") {
        Outcome::Expected(404)
    } else {
        Outcome::Unexpected(format!("tools/call isError: {}", snippet(result)))
    }
}

/// Sends a request and reads its JSON-RPC answer, from a JSON body or SSE `data:` lines.
async fn read_answer(request: reqwest::RequestBuilder) -> Result<Answer, String> {
    let response = request
        .send()
        .await
        .map_err(|err| format!("transport: {err}"))?;
    let status = response.status().as_u16();
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let text = response
        .text()
        .await
        .map_err(|err| format!("reading the body: {err}"))?;
    let message = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .chain(std::iter::once(text.as_str()))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|value| value.get("id").is_some());
    Ok(Answer {
        status,
        session,
        message,
    })
}
