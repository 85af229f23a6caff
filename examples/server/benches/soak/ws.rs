//! The WebSocket clients: each keeps one `/ws/mcp` socket, sends batches of requests pipelined
//! on it and waits for every answer by id, and reconnects after 10,000 requests: long enough
//! that per-request state a socket keeps shows as RSS growth, often enough that per-connection
//! state the server never frees shows too. The first client also subscribes to memory change
//! events and drains the pushes between answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::pool::{self, Rng, NAMESPACE};
use crate::rest::snippet;
use crate::stats::{Outcome, Recorder};

/// Requests in flight per batch.
const BATCH: usize = 4;
/// Batches per connection before a reconnect.
const BATCHES_PER_CONNECTION: u64 = 2_500;
/// How long a batch may wait for its answers.
const TIMEOUT: Duration = Duration::from_secs(40);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One WebSocket client.
pub struct WsClient {
    url: String,
    id: usize,
    subscribe: bool,
    rng: Rng,
    recorder: Arc<Recorder>,
    next_id: u64,
    /// Change events pushed to this client.
    pub pushes: u64,
}

impl WsClient {
    /// Client `id` of `ws://127.0.0.1:PORT/ws/mcp`; `subscribe` adds a memory subscription.
    pub fn new(url: &str, id: usize, subscribe: bool, recorder: Arc<Recorder>) -> WsClient {
        WsClient {
            url: url.to_owned(),
            id,
            subscribe,
            rng: Rng::new(id),
            recorder,
            next_id: 0,
            pushes: 0,
        }
    }

    /// Loops until `stop` is set or `budget` batches ran; returns the pushes received.
    pub async fn run(mut self, stop: Arc<AtomicBool>, budget: u64) -> u64 {
        let mut socket: Option<Socket> = None;
        let mut batches_on_socket = 0;
        for _ in 0..budget {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let mut open = match socket.take() {
                Some(open) if batches_on_socket < BATCHES_PER_CONNECTION => open,
                previous => {
                    if let Some(mut previous) = previous {
                        let _ = previous.close(None).await;
                    }
                    batches_on_socket = 0;
                    match self.connect().await {
                        Some(open) => open,
                        None => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    }
                }
            };
            if self.batch(&mut open).await {
                batches_on_socket += 1;
                socket = Some(open);
            }
        }
        if let Some(mut open) = socket {
            let _ = open.close(None).await;
        }
        self.pushes
    }

    async fn connect(&mut self) -> Option<Socket> {
        let started = Instant::now();
        let connected =
            tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(self.url.as_str()))
                .await;
        let mut socket = match connected {
            Ok(Ok((socket, _))) => socket,
            Ok(Err(err)) => {
                self.fail("ws:connect", started, format!("ws.connect: {err}"));
                return None;
            }
            Err(_) => {
                self.fail("ws:connect", started, "ws.connect: timed out".into());
                return None;
            }
        };
        if self.subscribe {
            let message = json!({"id": "subscription", "subscribe": "memory"});
            if socket
                .send(Message::Text(message.to_string().into()))
                .await
                .is_err()
            {
                self.fail(
                    "ws:connect",
                    started,
                    "ws.connect: subscribe send failed".into(),
                );
                return None;
            }
            let mut waiting = HashMap::from([("subscription".to_owned(), Instant::now())]);
            let ops = HashMap::from([("subscription".to_owned(), "ws:subscribe")]);
            let answered = self.answers(&mut socket, &mut waiting, &ops).await;
            if !answered {
                return None;
            }
        }
        self.recorder
            .record("ws:connect", started.elapsed(), Outcome::Ok);
        Some(socket)
    }

    /// One pipelined batch; false when the socket is no longer usable.
    async fn batch(&mut self, socket: &mut Socket) -> bool {
        let mut waiting = HashMap::new();
        let mut ops = HashMap::new();
        for _ in 0..BATCH {
            self.next_id += 1;
            let id = format!("c{}-{}", self.id, self.next_id);
            let (op, payload) = self.request();
            let name = op.trim_start_matches("ws:");
            let (service, action) = name.split_once('.').unwrap_or((name, ""));
            let message =
                json!({"id": id, "service": service, "action": action, "payload": payload});
            let started = Instant::now();
            if let Err(err) = socket.send(Message::Text(message.to_string().into())).await {
                self.fail(op, started, format!("ws {op}: send: {err}"));
                return false;
            }
            waiting.insert(id.clone(), started);
            ops.insert(id, op);
        }
        self.answers(socket, &mut waiting, &ops).await
    }

    /// Reads until every id in `waiting` is answered (recording each under its name in
    /// `ops`), counting pushes on the way; false (with the missing answers recorded as
    /// unexpected) on a timeout or a closed socket.
    async fn answers(
        &mut self,
        socket: &mut Socket,
        waiting: &mut HashMap<String, Instant>,
        ops: &HashMap<String, &'static str>,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while !waiting.is_empty() {
            let next = tokio::time::timeout_at(deadline, socket.next()).await;
            let text = match next {
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) => return self.lost(waiting, "closed"),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(err))) => return self.lost(waiting, &err.to_string()),
                Err(_) => return self.lost(waiting, "no answer in 40 s"),
            };
            let Ok(message) = serde_json::from_str::<Value>(&text) else {
                return self.lost(waiting, "a message that is not JSON");
            };
            if message.get("event").is_some() {
                self.pushes += 1;
                continue;
            }
            let Some(id) = message["id"].as_str() else {
                return self.lost(
                    waiting,
                    &format!("an answer without our id: {}", snippet(&message)),
                );
            };
            let Some(started) = waiting.remove(id) else {
                continue;
            };
            let op = ops.get(id).copied().unwrap_or("ws:unknown");
            let outcome = if message.get("result").is_some() {
                Outcome::Ok
            } else {
                let code = message["error"]["code"].as_str().unwrap_or("");
                match status_of(code) {
                    Some(status) if expected_of(op).contains(&status) => Outcome::Expected(status),
                    _ => Outcome::Unexpected(format!("ws {op}: {}", snippet(&message))),
                }
            };
            self.recorder.record(op, started.elapsed(), outcome);
        }
        true
    }

    fn lost(&self, waiting: &mut HashMap<String, Instant>, why: &str) -> bool {
        for (id, started) in waiting.drain() {
            self.recorder.record(
                "ws:lost",
                started.elapsed(),
                Outcome::Unexpected(format!("ws request {id}: {why}")),
            );
        }
        false
    }

    fn fail(&self, op: &'static str, started: Instant, message: String) {
        self.recorder
            .record(op, started.elapsed(), Outcome::Unexpected(message));
    }

    fn request(&mut self) -> (&'static str, Value) {
        let rng = &mut self.rng;
        match rng.below(5) {
            0 => {
                let words = 2 + rng.below(40) as usize;
                let value = json!({"ws": self.id, "text": rng.words(words)});
                let ttl = *rng.pick(&[2u64, 30, 0]);
                let key = pool::memory_key(rng.below(pool::MEMORY_KEYS));
                (
                    "ws:memory.store",
                    json!({"key": key, "value": value, "ttl": ttl, "namespace": NAMESPACE}),
                )
            }
            1 | 2 => {
                let key = pool::memory_key(rng.below(pool::MEMORY_KEYS));
                (
                    "ws:memory.retrieve",
                    json!({"key": key, "namespace": NAMESPACE}),
                )
            }
            3 => {
                let path = pool::shared_path(rng.below(pool::SHARED_FILES));
                ("ws:files.read", json!({"path": path}))
            }
            _ => (
                "ws:context.search",
                json!({"query": pool::query(rng.below(pool::QUERIES)), "limit": 5, "namespace": NAMESPACE}),
            ),
        }
    }
}

/// Expected error statuses per operation (same rules as over REST).
fn expected_of(op: &str) -> &'static [u16] {
    match op {
        "ws:memory.retrieve" => &[404],
        _ => &[],
    }
}

/// The HTTP status REST would answer an error code with.
fn status_of(code: &str) -> Option<u16> {
    Some(match code {
        "not_found" => 404,
        "invalid_argument" => 400,
        "conflict" => 409,
        "locked" => 423,
        "permission_denied" => 403,
        "unauthenticated" => 401,
        "rate_limited" => 429,
        "payload_too_large" => 413,
        "unavailable" => 503,
        "timeout" => 504,
        "internal" => 500,
        _ => return None,
    })
}
