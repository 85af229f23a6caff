//! A small Rust client for the REST and WebSocket transports: typed errors (the server's
//! [`mcp_core::Error`] comes back as the same variant), a timeout per request, and retries with
//! exponential backoff for idempotent actions only (a retried write could apply twice).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use crate::Error;

/// How long a call of [`Client::new`] or [`WsClient::connect`] waits for its answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Retry policy for idempotent actions.
#[derive(Clone, Debug, PartialEq)]
pub struct Retry {
    /// Attempts in total (1 = no retry).
    pub attempts: u32,
    /// Wait before the first retry; doubles each time.
    pub initial_backoff: Duration,
    /// Upper bound of one wait.
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 4,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl Retry {
    /// The wait before retry number `retry` (0-based), or the server's `Retry-After` when it
    /// asked for longer.
    pub fn backoff(&self, retry: u32, error: &Error) -> Duration {
        let exponential = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_backoff);
        match error {
            Error::Service(err) => err
                .retry_after()
                .map_or(exponential, |r| r.max(exponential)),
            _ => exponential,
        }
    }
}

/// Client of `POST /api/mcp/{service}/{action}`.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    retry: Retry,
    idempotent: Arc<Mutex<Option<HashMap<String, bool>>>>,
}

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8787`) with the
    /// [`DEFAULT_TIMEOUT`] per request.
    pub fn new(base: impl Into<String>) -> Result<Self, Error> {
        Client::with_timeout(base, DEFAULT_TIMEOUT)
    }

    /// A client whose requests each time out after `timeout`.
    pub fn with_timeout(base: impl Into<String>, timeout: Duration) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|err| Error::Transport(err.to_string()))?;
        Ok(Client {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
            token: None,
            retry: Retry::default(),
            idempotent: Arc::new(Mutex::new(None)),
        })
    }

    /// Sends `token` as the bearer API key.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Calls `service`/`action` with `arguments`. Idempotent actions (as the server's
    /// `GET /api/mcp` listing says) are retried on retryable failures (unavailable, timeout,
    /// rate limited, connection errors) with exponential backoff; others are sent once.
    pub async fn call(
        &self,
        service: &str,
        action: &str,
        arguments: Value,
    ) -> Result<Value, Error> {
        let idempotent = self.is_idempotent(service, action).await;
        let attempts = if idempotent {
            self.retry.attempts.max(1)
        } else {
            1
        };
        let mut retry = 0;
        loop {
            match self.call_once(service, action, &arguments).await {
                Ok(value) => return Ok(value),
                Err(err) if retry + 1 < attempts && retryable(&err) => {
                    tokio::time::sleep(self.retry.backoff(retry, &err)).await;
                    retry += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// One attempt, no retry.
    pub async fn call_once(
        &self,
        service: &str,
        action: &str,
        arguments: &Value,
    ) -> Result<Value, Error> {
        let url = format!("{}/api/mcp/{service}/{action}", self.base);
        let mut request = self.http.post(url).json(arguments);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let body: Value = response.json().await.map_err(transport_error)?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(Error::Service(error_from_body(&body["error"])))
        }
    }

    /// Whether the server marks `service`/`action` idempotent (fetched once from
    /// `GET /api/mcp`; unknown → not idempotent, so never retried).
    async fn is_idempotent(&self, service: &str, action: &str) -> bool {
        let name = format!("{service}_{action}");
        if let Ok(known) = self.idempotent.lock() {
            if let Some(known) = known.as_ref() {
                return known.get(&name).copied().unwrap_or(false);
            }
        }
        let mut request = self.http.get(format!("{}/api/mcp", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let Ok(response) = request.send().await else {
            return false;
        };
        let Ok(listing) = response.json::<Value>().await else {
            return false;
        };
        let table: HashMap<String, bool> = listing["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|tool| {
                Some((
                    tool["name"].as_str()?.to_owned(),
                    tool["idempotent"].as_bool()?,
                ))
            })
            .collect();
        let answer = table.get(&name).copied().unwrap_or(false);
        if let Ok(mut known) = self.idempotent.lock() {
            *known = Some(table);
        }
        answer
    }
}

fn retryable(err: &Error) -> bool {
    match err {
        Error::Service(err) => err.is_retryable(),
        Error::Transport(_) => true,
        _ => false,
    }
}

fn transport_error(err: reqwest::Error) -> Error {
    if err.is_timeout() {
        Error::Service(mcp_core::Error::Timeout(err.to_string()))
    } else if err.is_decode() {
        Error::Protocol(err.to_string())
    } else {
        Error::Transport(err.to_string())
    }
}

/// Turns `{"code", "message", "retry_after_ms"?}` back into the server's typed error.
pub fn error_from_body(body: &Value) -> mcp_core::Error {
    use mcp_core::Error as E;
    let message = body["message"].as_str().unwrap_or("").to_owned();
    // The message is the error's Display, `"<kind>: <detail>"`; keep the detail.
    let detail = message
        .split_once(": ")
        .map_or(message.clone(), |(_, detail)| detail.to_owned());
    match body["code"].as_str().unwrap_or("") {
        "not_found" => E::NotFound(detail),
        "invalid_argument" => E::InvalidArgument(detail),
        "conflict" => E::Conflict(detail),
        "locked" => E::Locked(detail),
        "permission_denied" => E::PermissionDenied(detail),
        "unauthenticated" => E::Unauthenticated(detail),
        "rate_limited" => E::RateLimited {
            retry_after: Duration::from_millis(body["retry_after_ms"].as_u64().unwrap_or(1000)),
        },
        "payload_too_large" => E::PayloadTooLarge(detail),
        "unavailable" => E::Unavailable(detail),
        "timeout" => E::Timeout(detail),
        _ => E::Internal(message),
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, mcp_core::Error>>>>>;

/// Client of `/ws/mcp`: many requests in flight on one socket, answered by id, plus the
/// server's pushed events. Every call gives up after the client's timeout with
/// [`mcp_core::Error::Timeout`], and a call that ends unanswered (timed out, failed to send, or
/// dropped by its caller) leaves no entry behind in the table of requests in flight.
pub struct WsClient {
    outgoing: mpsc::Sender<Message>,
    pending: Pending,
    next_id: AtomicU64,
    timeout: Duration,
    events: tokio::sync::Mutex<mpsc::Receiver<Value>>,
}

impl WsClient {
    /// Connects to `url` (e.g. `ws://127.0.0.1:8787/ws/mcp`), with an optional bearer key and
    /// the [`DEFAULT_TIMEOUT`] for the handshake and for each call.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Self, Error> {
        WsClient::connect_with_timeout(url, token, DEFAULT_TIMEOUT).await
    }

    /// Connects like [`WsClient::connect`]; the handshake and then each call fail with
    /// [`mcp_core::Error::Timeout`] when not answered within `timeout`.
    pub async fn connect_with_timeout(
        url: &str,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let mut request = url
            .into_client_request()
            .map_err(|err| Error::Transport(err.to_string()))?;
        if let Some(token) = token {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|err| Error::Transport(err.to_string()))?;
            request.headers_mut().insert("authorization", value);
        }
        let (socket, _) = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| timed_out("WebSocket handshake", timeout))?
            .map_err(|err| Error::Transport(err.to_string()))?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut to_send) = mpsc::channel::<Message>(1024);
        let (event_tx, events) = mpsc::channel::<Value>(1024);
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        tokio::spawn(async move {
            while let Some(message) = to_send.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
        });
        let readers = pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                match value["id"].as_u64() {
                    Some(id) => {
                        let waiter = readers.lock().ok().and_then(|mut map| map.remove(&id));
                        if let Some(waiter) = waiter {
                            let answer = if value.get("error").is_some() {
                                Err(error_from_body(&value["error"]))
                            } else {
                                Ok(value["result"].clone())
                            };
                            let _ = waiter.send(answer);
                        }
                    }
                    None => {
                        let _ = event_tx.try_send(value);
                    }
                }
            }
            // The socket closed: fail every waiter.
            if let Ok(mut map) = readers.lock() {
                map.clear();
            }
        });
        Ok(WsClient {
            outgoing,
            pending,
            next_id: AtomicU64::new(1),
            timeout,
            events: tokio::sync::Mutex::new(events),
        })
    }

    /// Sends one request and waits for its answer (others may be in flight meanwhile).
    pub async fn call(&self, service: &str, action: &str, payload: Value) -> Result<Value, Error> {
        let message = json!({"service": service, "action": action, "payload": payload});
        self.request(message).await
    }

    /// Subscribes to `service`'s change events; read them with [`WsClient::next_event`].
    pub async fn subscribe(&self, service: &str) -> Result<Value, Error> {
        self.request(json!({"subscribe": service})).await
    }

    /// The next pushed event, waiting at most `wait`.
    pub async fn next_event(&self, wait: Duration) -> Option<Value> {
        let mut events = self.events.lock().await;
        tokio::time::timeout(wait, events.recv())
            .await
            .ok()
            .flatten()
    }

    /// How many calls are waiting for their answer.
    pub fn in_flight(&self) -> usize {
        self.pending.lock().map_or(0, |map| map.len())
    }

    async fn request(&self, mut message: Value) -> Result<Value, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        message["id"] = json!(id);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| Error::Transport("client state poisoned".into()))?
            .insert(id, tx);
        // Removes the entry however this call ends; after an answer the reader already did.
        let _entry = PendingEntry {
            pending: &self.pending,
            id,
        };
        let exchange = async {
            self.outgoing
                .send(Message::Text(message.to_string().into()))
                .await
                .map_err(|_| Error::Transport("the socket is closed".into()))?;
            match rx.await {
                Ok(answer) => answer.map_err(Error::Service),
                Err(_) => Err(Error::Transport(
                    "the socket closed before the answer".into(),
                )),
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| timed_out("answer", self.timeout))?
    }
}

/// A request's entry in the table of calls in flight, removed when the call ends.
struct PendingEntry<'a> {
    pending: &'a Pending,
    id: u64,
}

impl Drop for PendingEntry<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.pending.lock() {
            map.remove(&self.id);
        }
    }
}

/// The client's timeout error: nothing came for `what` within `timeout`.
fn timed_out(what: &str, timeout: Duration) -> Error {
    Error::Service(mcp_core::Error::Timeout(format!(
        "no {what} within {timeout:?}"
    )))
}
