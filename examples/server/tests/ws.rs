//! WebSocket transport and the Rust client: many requests in flight on one socket answered by
//! id, typed errors, pushed memory change and expiry events, pushed file change events, and
//! REST retries only for idempotent actions.

mod common;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TempRoot, TestServer};
use mcp_server::client::{Client, Retry, WsClient};
use mcp_server::config::ServerConfig;
use mcp_server::Error;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn many_requests_in_flight_are_answered_by_id() {
    let server = TestServer::start(ServerConfig::default()).await;
    let ws = Arc::new(
        WsClient::connect(&format!("ws://{}/ws/mcp", server.addr), None)
            .await
            .unwrap(),
    );
    let mut calls = Vec::new();
    for i in 0..200u32 {
        let ws = ws.clone();
        calls.push(tokio::spawn(async move {
            ws.call(
                "memory",
                "store",
                json!({"key": format!("k{i}"), "value": i}),
            )
            .await
            .unwrap();
            let got = ws
                .call("memory", "retrieve", json!({"key": format!("k{i}")}))
                .await
                .unwrap();
            assert_eq!(got["value"], json!(i));
        }));
    }
    for call in calls {
        call.await.unwrap();
    }
    let err = ws
        .call("memory", "retrieve", json!({"key": "absent"}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Service(mcp_core::Error::NotFound(_))),
        "{err:?}"
    );
    let err = ws
        .call("memory", "store", json!({"key": 1}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Service(mcp_core::Error::InvalidArgument(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn subscribers_receive_memory_change_events() {
    let server = TestServer::start(ServerConfig::default()).await;
    let url = format!("ws://{}/ws/mcp", server.addr);
    let watcher = WsClient::connect(&url, None).await.unwrap();
    let ack = watcher.subscribe("memory").await.unwrap();
    assert_eq!(ack["subscribed"], "memory");
    let writer = Client::new(format!("http://{}", server.addr)).unwrap();
    writer
        .call("memory", "store", json!({"key": "watched", "value": 1}))
        .await
        .unwrap();
    let event = watcher
        .next_event(Duration::from_secs(5))
        .await
        .expect("an event");
    assert_eq!(event["event"], "memory.changed");
    assert_eq!(event["data"]["key"], "mem:default:watched");
    let err = watcher.subscribe("nosuch").await.unwrap_err();
    assert!(
        matches!(err, Error::Service(mcp_core::Error::NotFound(_))),
        "{err:?}"
    );
}

/// Waits for a `files.changed` event naming `path` (other events are skipped).
async fn file_change_named(watcher: &WsClient, path: &std::path::Path) -> serde_json::Value {
    let mut seen = Vec::new();
    while let Some(event) = watcher.next_event(Duration::from_secs(5)).await {
        if event["event"] == "files.changed" && event["data"]["path"].as_str() == path.to_str() {
            return event;
        }
        seen.push(event);
    }
    panic!(
        "no files.changed event for {}; got {seen:?}",
        path.display()
    );
}

#[tokio::test]
async fn subscribers_receive_file_change_events() {
    let root = TempRoot::new();
    let config = root.config();
    let server = TestServer::start(config).await;
    let url = format!("ws://{}/ws/mcp", server.addr);
    let watcher = WsClient::connect(&url, None).await.unwrap();
    let ack = watcher.subscribe("files").await.unwrap();
    assert_eq!(ack["subscribed"], "files");

    // A write over REST is pushed with the file's absolute path under the root.
    let rest = Client::new(format!("http://{}", server.addr)).unwrap();
    rest.call(
        "files",
        "write",
        json!({"path": "watched/notes.md", "content": "one"}),
    )
    .await
    .unwrap();
    let event = file_change_named(&watcher, &root.0.join("watched/notes.md")).await;
    assert!(event["data"]["instance"].is_string(), "{event}");

    // So is a write over another WebSocket.
    let writer = WsClient::connect(&url, None).await.unwrap();
    writer
        .call(
            "files",
            "write",
            json!({"path": "other.txt", "content": "two"}),
        )
        .await
        .unwrap();
    file_change_named(&watcher, &root.0.join("other.txt")).await;
}

#[tokio::test]
async fn subscribers_are_told_when_a_memory_value_expires() {
    let server = TestServer::start(ServerConfig::default()).await;
    let watcher = WsClient::connect(&format!("ws://{}/ws/mcp", server.addr), None)
        .await
        .unwrap();
    watcher.subscribe("memory").await.unwrap();
    let writer = Client::new(format!("http://{}", server.addr)).unwrap();
    writer
        .call(
            "memory",
            "store",
            json!({"key": "brief", "value": 1, "ttl": 1, "namespace": "ws"}),
        )
        .await
        .unwrap();
    let mut kinds = Vec::new();
    while let Some(event) = watcher.next_event(Duration::from_secs(4)).await {
        kinds.push(event["event"].as_str().unwrap_or_default().to_owned());
        if event["event"] == "memory.expired" {
            assert_eq!(event["data"], json!({"namespace": "ws", "key": "brief"}));
            let err = writer
                .call(
                    "memory",
                    "retrieve",
                    json!({"key": "brief", "namespace": "ws"}),
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::Service(mcp_core::Error::NotFound(_))),
                "{err:?}"
            );
            return;
        }
    }
    panic!("no memory.expired event; got {kinds:?}");
}

/// A WebSocket server on a real local socket that completes the handshake, then reads every
/// request and never answers one. Returns its `ws://` URL.
async fn silent_ws_server() -> String {
    use futures_util::StreamExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(_)) = socket.next().await {}
            });
        }
    });
    format!("ws://{addr}/ws/mcp")
}

#[tokio::test]
async fn ws_calls_that_are_never_answered_time_out_and_leave_no_entry() {
    let url = silent_ws_server().await;
    let ws = Arc::new(
        WsClient::connect_with_timeout(&url, None, Duration::from_millis(100))
            .await
            .unwrap(),
    );
    let mut calls = Vec::new();
    for i in 0..20u32 {
        let ws = ws.clone();
        calls.push(tokio::spawn(async move {
            ws.call("memory", "retrieve", json!({"key": format!("k{i}")}))
                .await
        }));
    }
    for call in calls {
        let err = call.await.unwrap().unwrap_err();
        assert!(
            matches!(err, Error::Service(mcp_core::Error::Timeout(_))),
            "{err:?}"
        );
    }
    let err = ws.subscribe("memory").await.unwrap_err();
    assert!(
        matches!(err, Error::Service(mcp_core::Error::Timeout(_))),
        "{err:?}"
    );
    assert_eq!(
        ws.in_flight(),
        0,
        "timed-out calls must not stay in the id table"
    );

    // A call whose caller gives up first leaves no entry either.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(10),
        ws.call("memory", "stats", json!({})),
    )
    .await;
    assert!(abandoned.is_err());
    assert_eq!(ws.in_flight(), 0);
}

#[tokio::test]
async fn ws_connect_times_out_when_the_handshake_is_never_answered() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts the TCP connection and holds it open without answering the upgrade.
    let holder = tokio::spawn(async move { listener.accept().await });
    let err = WsClient::connect_with_timeout(
        &format!("ws://{addr}/ws/mcp"),
        None,
        Duration::from_millis(100),
    )
    .await
    .err()
    .expect("no handshake, no client");
    assert!(
        matches!(err, Error::Service(mcp_core::Error::Timeout(_))),
        "{err:?}"
    );
    holder.abort();
}

#[tokio::test]
async fn ws_call_slower_than_the_timeout_fails_typed_and_the_late_answer_is_dropped() {
    let root = TempRoot::new();
    let config = root.config();
    let server = TestServer::start(config).await;
    let url = format!("ws://{}/ws/mcp", server.addr);
    let hasty = WsClient::connect_with_timeout(&url, None, Duration::from_millis(1))
        .await
        .unwrap();
    // Sending, parsing and writing 2 MB takes far longer than 1 ms.
    let content = "x".repeat(2 * 1024 * 1024);
    let err = hasty
        .call(
            "files",
            "write",
            json!({"path": "big.txt", "content": content}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Service(mcp_core::Error::Timeout(_))),
        "{err:?}"
    );
    assert_eq!(hasty.in_flight(), 0);

    // The server still did the write; its late answer found no waiter and is dropped.
    let patient = WsClient::connect(&url, None).await.unwrap();
    let mut size = None;
    for _ in 0..100 {
        if let Ok(stat) = patient
            .call("files", "stat", json!({"path": "big.txt"}))
            .await
        {
            size = stat["size"].as_u64();
            if size == Some(content.len() as u64) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(size, Some(content.len() as u64));
    assert_eq!(hasty.in_flight(), 0);
    // An answer with an id is never handed out as a pushed event, late or not.
    assert_eq!(hasty.next_event(Duration::from_millis(300)).await, None);
}

/// Errors a fault layer in front of the real router answers to REST calls instead of passing
/// them on, and when each REST call arrived; both keyed by the request path.
#[derive(Default)]
struct Faults {
    script: HashMap<String, VecDeque<mcp_core::Error>>,
    arrivals: HashMap<String, Vec<Instant>>,
}

impl Faults {
    fn refuse(&mut self, path: &str, errors: impl IntoIterator<Item = mcp_core::Error>) {
        self.script
            .insert(path.to_owned(), errors.into_iter().collect());
    }

    fn arrivals(&self, path: &str) -> Vec<Instant> {
        self.arrivals.get(path).cloned().unwrap_or_default()
    }
}

/// Serves the real router for `config` on a local socket, behind a layer that records every
/// `POST /api/mcp/...` and answers the next scripted error for its path, if any, with the
/// server's own error response (status, JSON body, `Retry-After`).
async fn serve_with_faults(config: ServerConfig, faults: Arc<Mutex<Faults>>) -> String {
    let app = mcp_server::App::build(config)
        .await
        .expect("server assembly");
    let fault_layer = axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let faults = faults.clone();
            async move {
                let path = request.uri().path().to_owned();
                if request.method() == axum::http::Method::POST && path.starts_with("/api/mcp/") {
                    let injected = {
                        let mut faults = faults.lock().unwrap();
                        faults
                            .arrivals
                            .entry(path.clone())
                            .or_default()
                            .push(Instant::now());
                        faults.script.get_mut(&path).and_then(VecDeque::pop_front)
                    };
                    if let Some(err) = injected {
                        return mcp_server::http::error_response(&err);
                    }
                }
                next.run(request).await
            }
        },
    );
    let routes = mcp_server::http::router(app, CancellationToken::new()).layer(fault_layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            routes.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    format!("http://{addr}")
}

/// The retryable refusals the client acts on: 429 (with the server's wait) and 503.
fn rate_limited(retry_after_ms: u64) -> mcp_core::Error {
    mcp_core::Error::RateLimited {
        retry_after: Duration::from_millis(retry_after_ms),
    }
}

fn unavailable() -> mcp_core::Error {
    mcp_core::Error::Unavailable("injected by the test".into())
}

/// Every decision below is counted in requests the server received, not inferred from how
/// long a call took; the only time checks are lower bounds on the waits between attempts,
/// which a loaded machine can only make longer.
#[tokio::test]
async fn client_retries_idempotent_actions_only() {
    let faults = Arc::new(Mutex::new(Faults::default()));
    let base = serve_with_faults(ServerConfig::default(), faults.clone()).await;
    let retry = Retry {
        attempts: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_secs(1),
    };
    let client = Client::new(&base).unwrap().with_retry(retry.clone());

    // An idempotent read refused with 429 then 503 is retried until its third attempt
    // reaches the service, waiting the server's Retry-After, then the doubled backoff.
    const STATS: &str = "/api/mcp/memory/stats";
    faults
        .lock()
        .unwrap()
        .refuse(STATS, [rate_limited(60), unavailable()]);
    let stats = client.call("memory", "stats", json!({})).await.unwrap();
    assert!(stats.is_object(), "{stats}");
    let arrivals = faults.lock().unwrap().arrivals(STATS);
    assert_eq!(arrivals.len(), 3, "two refusals, then the answer");
    let first_wait = retry.backoff(0, &Error::Service(rate_limited(60)));
    let second_wait = retry.backoff(1, &Error::Service(unavailable()));
    assert_eq!(
        first_wait,
        Duration::from_millis(60),
        "Retry-After beats 20 ms"
    );
    assert_eq!(second_wait, Duration::from_millis(40), "20 ms doubled");
    assert!(arrivals[1] - arrivals[0] >= first_wait);
    assert!(arrivals[2] - arrivals[1] >= second_wait);

    // An idempotent read that keeps failing is sent `attempts` times; the last refusal comes
    // back typed.
    const RETRIEVE: &str = "/api/mcp/memory/retrieve";
    faults
        .lock()
        .unwrap()
        .refuse(RETRIEVE, std::iter::repeat_with(unavailable).take(10));
    let err = client
        .call("memory", "retrieve", json!({"key": "k"}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Service(mcp_core::Error::Unavailable(_))),
        "{err:?}"
    );
    assert_eq!(faults.lock().unwrap().arrivals(RETRIEVE).len(), 4);
    faults.lock().unwrap().refuse(RETRIEVE, []);

    // A write refused once is not retried, though a second attempt would have gone through:
    // the server sees it once and the value is never stored.
    const STORE: &str = "/api/mcp/memory/store";
    for (refusal, sent) in [(unavailable(), 1), (rate_limited(1), 2)] {
        faults.lock().unwrap().refuse(STORE, [refusal.clone()]);
        let err = client
            .call("memory", "store", json!({"key": "w", "value": 1}))
            .await
            .unwrap_err();
        match err {
            Error::Service(got) => assert_eq!(got, refusal),
            other => panic!("expected {refusal:?}, got {other:?}"),
        }
        assert_eq!(faults.lock().unwrap().arrivals(STORE).len(), sent);
    }
    let err = client
        .call("memory", "retrieve", json!({"key": "w"}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Service(mcp_core::Error::NotFound(_))),
        "{err:?}"
    );

    // Connection refused is a transport error, retried then reported.
    let dead = Client::with_timeout("http://127.0.0.1:9", Duration::from_millis(200))
        .unwrap()
        .with_retry(Retry {
            attempts: 2,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        });
    let err = dead
        .call("memory", "retrieve", json!({"key": "k"}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
}

/// The server's own rate limiter at one request a day: after the burst of one no call can
/// earn a new slot during the test, so what happens does not depend on timing.
#[tokio::test]
async fn a_write_refused_by_the_real_rate_limiter_is_not_retried() {
    let mut config = ServerConfig::default();
    config.limits.rate_per_second = mcp_server::config::MIN_RATE_PER_SECOND;
    config.limits.rate_burst = 1;
    let faults = Arc::new(Mutex::new(Faults::default()));
    let base = serve_with_faults(config, faults.clone()).await;
    let client = Client::new(&base).unwrap().with_retry(Retry {
        attempts: 5,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
    });
    client.call("memory", "stats", json!({})).await.unwrap();
    // A retry would first wait out the server's Retry-After of about a day; the bound only
    // turns such a hang into a failure.
    let err = tokio::time::timeout(
        Duration::from_secs(60),
        client.call("memory", "store", json!({"key": "w", "value": 1})),
    )
    .await
    .expect("a refused write is answered at once, not retried")
    .unwrap_err();
    match err {
        Error::Service(mcp_core::Error::RateLimited { retry_after }) => {
            assert!(retry_after > Duration::from_secs(3600), "{retry_after:?}")
        }
        other => panic!("expected the typed 429, got {other:?}"),
    }
    assert_eq!(
        faults
            .lock()
            .unwrap()
            .arrivals("/api/mcp/memory/store")
            .len(),
        1
    );
}
