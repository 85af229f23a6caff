//! REST transport: the status of every error kind, authentication and scopes, body limit,
//! rate limit, `/health`, `/metrics`, Origin checks and the action listing.

mod common;

use common::{TempRoot, TestServer};
use mcp_server::config::{hash_key, ApiKey, ServerConfig};
use serde_json::{json, Value};

async fn post(server: &TestServer, path: &str, body: Value) -> reqwest::Response {
    common::http_client()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    (status, code)
}

fn keyed_config() -> ServerConfig {
    ServerConfig {
        keys: vec![
            ApiKey {
                hash: hash_key("admin-token"),
                principal: "admin".into(),
                scopes: vec!["*".into()],
            },
            ApiKey {
                hash: hash_key("reader-token"),
                principal: "reader".into(),
                scopes: vec!["memory:retrieve".into()],
            },
        ],
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn round_trip_and_error_statuses() {
    let server = TestServer::start(ServerConfig::default()).await;
    let stored = post(
        &server,
        "/api/mcp/memory/store",
        json!({"key": "k", "value": {"a": 1}}),
    )
    .await;
    assert_eq!(stored.status(), 200);
    let got: Value = post(&server, "/api/mcp/memory/retrieve", json!({"key": "k"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["value"], json!({"a": 1}));

    // 400: wrong argument type, malformed JSON.
    let wrong = post(
        &server,
        "/api/mcp/memory/store",
        json!({"key": 7, "value": 1}),
    )
    .await;
    assert_eq!(error_code(wrong).await, (400, "invalid_argument".into()));
    let malformed = common::http_client()
        .post(server.url("/api/mcp/memory/store"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(malformed).await,
        (400, "invalid_argument".into())
    );
    // 404: missing key, unknown action, unknown service.
    let missing = post(&server, "/api/mcp/memory/retrieve", json!({"key": "nope"})).await;
    assert_eq!(error_code(missing).await, (404, "not_found".into()));
    let unknown = post(&server, "/api/mcp/memory/frobnicate", json!({})).await;
    assert_eq!(error_code(unknown).await, (404, "not_found".into()));
    let unknown = post(&server, "/api/mcp/nosuch/read", json!({})).await;
    assert_eq!(error_code(unknown).await, (404, "not_found".into()));
    // 409: if_absent on an existing key; the value is unchanged.
    let conflict = post(
        &server,
        "/api/mcp/memory/store",
        json!({"key": "k", "value": 2, "if_absent": true}),
    )
    .await;
    assert_eq!(error_code(conflict).await, (409, "conflict".into()));
    let got: Value = post(&server, "/api/mcp/memory/retrieve", json!({"key": "k"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["value"], json!({"a": 1}));
}

#[tokio::test]
async fn body_limit_gives_413_and_stores_nothing() {
    let mut config = ServerConfig::default();
    config.limits.max_body_bytes = 1024;
    let server = TestServer::start(config).await;
    let big = "x".repeat(4096);
    let response = post(
        &server,
        "/api/mcp/memory/store",
        json!({"key": "big", "value": big}),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (413, "payload_too_large".into())
    );
    let missing = post(&server, "/api/mcp/memory/retrieve", json!({"key": "big"})).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn keys_scopes_401_403() {
    let server = TestServer::start(keyed_config()).await;
    let client = common::http_client();
    let url = server.url("/api/mcp/memory/store");
    let body = json!({"key": "k", "value": 1});

    let anonymous = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert_eq!(error_code(anonymous).await, (401, "unauthenticated".into()));

    let bad = client
        .post(&url)
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert!(bad.headers().contains_key("www-authenticate"));

    let reader = client
        .post(&url)
        .bearer_auth("reader-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(reader).await, (403, "permission_denied".into()));

    let admin = client
        .post(&url)
        .bearer_auth("admin-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    let read = client
        .post(server.url("/api/mcp/memory/retrieve"))
        .bearer_auth("reader-token")
        .json(&json!({"key": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    // The health probe needs no key.
    assert_eq!(
        client
            .get(server.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn rate_limit_gives_429_with_retry_after() {
    let mut config = ServerConfig::default();
    // One request earned per 100 s: no refill between the calls, however slow the machine.
    config.limits.rate_per_second = 0.01;
    config.limits.rate_burst = 2;
    let server = TestServer::start(config).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let response = post(&server, "/api/mcp/memory/stats", json!({})).await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
            assert!(body["error"]["retry_after_ms"].as_u64().unwrap() > 0);
        }
    }
    assert_eq!(&statuses[..2], &[200, 200], "{statuses:?}");
    assert!(statuses[2..].iter().all(|s| *s == 429), "{statuses:?}");
    // The next request is earned 100 s after the first, minus the time the calls took.
    assert!(
        retry_after.is_some_and(|seconds| (99..=100).contains(&seconds)),
        "{retry_after:?}"
    );
}

#[tokio::test]
async fn foreign_origin_is_refused() {
    let server = TestServer::start(ServerConfig::default()).await;
    let client = common::http_client();
    for path in ["/mcp", "/api/mcp/memory/stats", "/ws/mcp"] {
        let response = client
            .post(server.url(path))
            .header("origin", "https://evil.example")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    let local = client
        .post(server.url("/api/mcp/memory/stats"))
        .header("origin", "http://localhost:3000")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), 200);
}

#[tokio::test]
async fn health_metrics_and_listing() {
    let root = TempRoot::new();
    let server = TestServer::start(root.config()).await;
    post(
        &server,
        "/api/mcp/memory/store",
        json!({"key": "m", "value": 1}),
    )
    .await;
    post(
        &server,
        "/api/mcp/memory/retrieve",
        json!({"key": "absent"}),
    )
    .await;

    post(
        &server,
        "/api/mcp/files/write",
        json!({"path": "metered.txt", "content": "cached"}),
    )
    .await;
    for _ in 0..5 {
        post(
            &server,
            "/api/mcp/files/read",
            json!({"path": "metered.txt"}),
        )
        .await;
    }
    for _ in 0..2 {
        post(
            &server,
            "/api/mcp/context/search",
            json!({"query": "repeated query"}),
        )
        .await;
    }

    let health: Value = common::http_client()
        .get(server.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["ready"], true);
    assert_eq!(health["services"]["memory"][0]["backend"], "memory");
    assert!(health["services"]["context"].is_array());

    let metrics = common::http_client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mcp_requests_total{service=\"memory\",action=\"store\",outcome=\"ok\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("outcome=\"not_found\""), "{metrics}");
    assert!(
        metrics.contains("mcp_request_duration_seconds_bucket"),
        "{metrics}"
    );
    let counter = |name: &str, service: &str| -> u64 {
        let prefix = format!("{name}{{service=\"{service}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
            .parse()
            .unwrap()
    };
    // Every files read is one L1 lookup, hit or miss; a read after the fill is a hit.
    let (hits, misses) = (
        counter("mcp_cache_hits_total", "files"),
        counter("mcp_cache_misses_total", "files"),
    );
    assert_eq!(hits + misses, 5, "{metrics}");
    assert!(hits >= 1, "{metrics}");
    assert_eq!(counter("mcp_cache_misses_total", "memory"), 1, "{metrics}");
    // The second search embeds its query from the embedding cache.
    assert!(counter("mcp_cache_hits_total", "context") >= 1, "{metrics}");
    assert!(
        metrics.contains("mcp_cache_hit_ratio{service=\"files\"}"),
        "{metrics}"
    );

    let listing: Value = common::http_client()
        .get(server.url("/api/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tools = listing["tools"].as_array().unwrap();
    let retrieve = tools
        .iter()
        .find(|t| t["name"] == "memory_retrieve")
        .unwrap();
    assert_eq!(retrieve["read_only"], true);
    assert_eq!(retrieve["idempotent"], true);
    let store = tools.iter().find(|t| t["name"] == "memory_store").unwrap();
    assert_eq!(store["read_only"], false);
}

#[tokio::test]
async fn files_round_trip_and_lock_gives_423() {
    let root = TempRoot::new();
    let config = root.config();
    let server = TestServer::start(config).await;
    let written = post(
        &server,
        "/api/mcp/files/write",
        json!({"path": "notes.md", "content": "one"}),
    )
    .await;
    assert_eq!(written.status(), 200);
    assert_eq!(
        std::fs::read_to_string(root.0.join("notes.md")).unwrap(),
        "one"
    );
    let read: Value = post(&server, "/api/mcp/files/read", json!({"path": "notes.md"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["content"], "one");

    let lock: Value = post(
        &server,
        "/api/mcp/files/lock",
        json!({"path": "notes.md", "owner": "a"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let token = lock["token"].as_u64().expect("fencing token");
    let blocked = post(
        &server,
        "/api/mcp/files/write",
        json!({"path": "notes.md", "content": "two"}),
    )
    .await;
    assert_eq!(error_code(blocked).await, (423, "locked".into()));
    assert_eq!(
        std::fs::read_to_string(root.0.join("notes.md")).unwrap(),
        "one"
    );
    let with_token = post(
        &server,
        "/api/mcp/files/write",
        json!({"path": "notes.md", "content": "two", "lock_token": token}),
    )
    .await;
    assert_eq!(with_token.status(), 200);
    // Outside the roots: refused, nothing read.
    let escape = post(
        &server,
        "/api/mcp/files/read",
        json!({"path": "../../etc/passwd"}),
    )
    .await;
    assert!(
        matches!(escape.status().as_u16(), 400 | 403 | 404),
        "{}",
        escape.status()
    );
}

/// A service whose one action waits far longer than any test deadline.
struct Slow {
    actions: Vec<mcp_core::ActionSpec>,
}

#[async_trait::async_trait]
impl mcp_core::Service for Slow {
    fn name(&self) -> &str {
        "slow"
    }

    fn actions(&self) -> &[mcp_core::ActionSpec] {
        &self.actions
    }

    async fn call(
        &self,
        _action: &str,
        _params: mcp_core::Params,
        _ctx: &mcp_core::RequestContext,
    ) -> mcp_core::Result<mcp_core::ActionOutput> {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        mcp_core::to_result(&json!({"woke": true}))
    }
}

#[tokio::test]
async fn a_call_past_the_request_deadline_is_504() {
    let root = TempRoot::new();
    let config = root.config();
    let mut app = mcp_server::App::build(ServerConfig {
        limits: mcp_server::config::Limits {
            request_timeout_ms: 100,
            ..config.limits.clone()
        },
        ..config
    })
    .await
    .unwrap();
    // The server's own router and deadline over a registry holding one action that never
    // finishes in time: whatever the machine's speed, the answer must be the 504.
    app.registry = mcp_core::Registry::builder()
        .service(std::sync::Arc::new(Slow {
            actions: vec![mcp_core::ActionSpec::new::<Value, Value>(
                "wait",
                "Waits 30 s",
            )],
        }))
        .build()
        .unwrap();
    let server = TestServer::start_app(app).await;
    let started = std::time::Instant::now();
    let response = post(&server, "/api/mcp/slow/wait", json!({})).await;
    assert_eq!(response.status().as_u16(), 504);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the deadline did not cut the call short: {:?}",
        started.elapsed()
    );
    let (_, code) = error_code(response).await;
    assert_eq!(code, "timeout");
}
