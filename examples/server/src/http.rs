//! The HTTP side: one axum router with MCP Streamable HTTP at `/mcp`, REST at
//! `/api/mcp/{service}/{action}`, WebSocket at `/ws/mcp`, `/health` and `/metrics`.
//!
//! Every request first passes the Origin check (a browser origin that is not loopback or
//! configured gets 403), then authentication turns the bearer key into the
//! [`RequestContext`] all three transports hand to the registry, whose middleware enforces
//! scopes and the per-key rate limit. REST and WebSocket errors are
//! `{"error": {"code", "message"}}` with the status of [`mcp_core::Error::http_status`].

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use mcp_core::{Error, RequestContext};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::assemble::App;
use crate::auth::KeyRing;
use crate::mcp::McpHandler;
use crate::ws;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Services, event bus and configuration.
    pub app: App,
    /// The configured API keys.
    pub keys: KeyRing,
    /// Renders the Prometheus text.
    pub metrics: PrometheusHandle,
}

/// Latency histogram buckets in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    5.0,
];

/// The process-wide Prometheus recorder (installed on first use; the `metrics` facade has one
/// global recorder, shared by every router in the process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics stays empty");
            }
            handle
        })
        .clone()
}

/// The full router for `app`. `shutdown` ends open MCP streams when the server stops.
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so loopback checks
/// see the peer.
pub fn router(app: App, shutdown: CancellationToken) -> Router {
    let state = AppState {
        keys: KeyRing::new(&app.config.keys),
        metrics: metrics_handle(),
        app,
    };
    let limits = state.app.config.limits.clone();
    let prototype = McpHandler::new(&state.app);
    let mut mcp_config = StreamableHttpServerConfig::default()
        .with_cancellation_token(shutdown)
        .with_max_request_body_bytes(limits.max_body_bytes);
    if !state.app.config.listen.ip().is_loopback() {
        // Behind a published port the Host header is the public name; Origin checks and API
        // keys protect the server instead.
        mcp_config = mcp_config.disable_allowed_hosts();
    }
    let mcp = StreamableHttpService::new(
        move || Ok(prototype.for_session()),
        Arc::new(LocalSessionManager::default()),
        mcp_config,
    );
    // Everything but /health needs a key when keys are configured: /metrics shows the traffic
    // per action and the cache contents' hit ratio, while /health (for probes, which carry no
    // key) shows only which backends answer.
    let authenticated = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/api/mcp", get(list_actions))
        .route("/api/mcp/{service}/{action}", post(rest_call))
        .route("/ws/mcp", get(ws::upgrade))
        .route_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/health", get(health))
        .merge(authenticated)
        .layer(middleware::from_fn_with_state(state.clone(), check_origin))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(state)
}

/// The error response every REST and HTTP-level refusal uses.
pub fn error_response(err: &Error) -> Response {
    let status =
        StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(json!({ "error": err.to_body() }))).into_response();
    let headers = response.headers_mut();
    if let Some(retry_after) = err.retry_after() {
        // Whole seconds, rounded up, never 0 for a refused request.
        let seconds = retry_after.as_millis().div_ceil(1000).max(1);
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            headers.insert(header::RETRY_AFTER, value);
        }
    }
    if matches!(err, Error::Unauthenticated(_)) {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"mcp-server\""),
        );
    }
    response
}

/// Refuses requests whose browser `Origin` is neither loopback nor configured (403): a page
/// on another site must not drive a local server.
async fn check_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .map(|origin| origin_allowed(origin, &state.app.config.allowed_origins))
            .unwrap_or(false);
        if !allowed {
            return error_response(&Error::PermissionDenied(format!(
                "origin {origin:?} is not allowed"
            )));
        }
    }
    next.run(request).await
}

/// Whether `origin` is a loopback origin or one of `configured` (exact match).
pub fn origin_allowed(origin: &str, configured: &[String]) -> bool {
    if configured.iter().any(|allowed| allowed == origin) {
        return true;
    }
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if let Some(bracketed) = rest.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        rest.split(':').next().unwrap_or("")
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// Authenticates the caller and stores its [`RequestContext`] in the request extensions.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    match state.keys.authenticate(peer, authorization) {
        Ok(mut ctx) => {
            if let Some(id) = request
                .headers()
                .get("x-request-id")
                .and_then(|value| value.to_str().ok())
            {
                ctx = ctx.with_request_id(id);
            }
            request.extensions_mut().insert(ctx);
            next.run(request).await
        }
        Err(err) => error_response(&err),
    }
}

/// `POST /api/mcp/{service}/{action}`: the JSON body is the arguments.
async fn rest_call(
    State(state): State<AppState>,
    Path((service, action)): Path<(String, String)>,
    Extension(ctx): Extension<RequestContext>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error_response(&Error::PayloadTooLarge(format!(
                "the request body exceeds {} bytes",
                state.app.config.limits.max_body_bytes
            )))
        }
        Err(rejection) => {
            return error_response(&Error::InvalidArgument(rejection.body_text()));
        }
    };
    let params = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(params) => params,
            // Only a refused body pays for the UTF-8 check that makes its message clear.
            Err(err) => {
                let message = match std::str::from_utf8(&body) {
                    Err(utf8) => format!(
                        "the body is not valid UTF-8 (invalid byte at offset {})",
                        utf8.valid_up_to()
                    ),
                    Ok(_) => format!("the body is not JSON: {err}"),
                };
                return error_response(&Error::InvalidArgument(message));
            }
        }
    };
    let ctx = ctx.with_timeout(state.app.config.limits.request_timeout());
    match state
        .app
        .registry
        .call(&service, &action, params, &ctx)
        .await
    {
        // The service's JSON text, as it is.
        Ok(result) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            result.into_json(),
        )
            .into_response(),
        Err(err) => error_response(&err),
    }
}

/// `GET /api/mcp`: every action with its annotations and argument schema.
async fn list_actions(State(state): State<AppState>) -> Response {
    let tools: Vec<Value> = state
        .app
        .registry
        .actions()
        .into_iter()
        .map(|(service, spec)| {
            json!({
                "name": format!("{service}_{}", spec.name),
                "service": service,
                "action": spec.name,
                "description": spec.description,
                "read_only": spec.annotations.read_only,
                "destructive": spec.annotations.destructive,
                "idempotent": spec.annotations.idempotent,
                "input_schema": spec.params_schema,
            })
        })
        .collect();
    Json(json!({ "tools": tools })).into_response()
}

/// `GET /health`: liveness (it answers) and readiness of every backend (503 when one is down).
async fn health(State(state): State<AppState>) -> Response {
    let report = state.app.registry.health().await;
    let status = if report.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if report.ok { "ok" } else { "degraded" },
        "live": true,
        "ready": report.ok,
        "services": report.services,
    });
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text, plus the cache counters of every service that has a
/// cache (files: L1 content cache; memory: reads that found a live value; context: the
/// embedding cache).
async fn metrics_text(State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render();
    let registry = &state.app.registry;
    let caches: Vec<(&str, mcp_core::CacheStats)> = registry
        .service_names()
        .filter_map(|name| Some((name, registry.service(name)?.cache_stats()?)))
        .collect();
    if !caches.is_empty() {
        let mut hits = String::from("# TYPE mcp_cache_hits_total counter\n");
        let mut misses = String::from("# TYPE mcp_cache_misses_total counter\n");
        let mut ratio = String::from("# TYPE mcp_cache_hit_ratio gauge\n");
        for (service, stats) in caches {
            let label = format!("{{service=\"{service}\"}}");
            hits.push_str(&format!("mcp_cache_hits_total{label} {}\n", stats.hits));
            misses.push_str(&format!("mcp_cache_misses_total{label} {}\n", stats.misses));
            ratio.push_str(&format!(
                "mcp_cache_hit_ratio{label} {}\n",
                stats.hit_ratio()
            ));
        }
        text.push_str(&hits);
        text.push_str(&misses);
        text.push_str(&ratio);
    }
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_configured_origins_pass() {
        let configured = vec!["https://app.example.com".to_owned()];
        assert!(origin_allowed("http://localhost:3000", &configured));
        assert!(origin_allowed("http://127.0.0.1", &configured));
        assert!(origin_allowed("http://[::1]:8080", &configured));
        assert!(origin_allowed("https://app.example.com", &configured));
        assert!(!origin_allowed("https://evil.example", &configured));
        assert!(!origin_allowed(
            "http://localhost.evil.example",
            &configured
        ));
        assert!(!origin_allowed("null", &configured));
    }

    #[tokio::test]
    async fn a_passed_deadline_is_504_with_code_timeout() {
        let response = error_response(&Error::Timeout(
            "memory/store did not finish before the request deadline".into(),
        ));
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("the error body");
        let body: Value = serde_json::from_slice(&body).expect("a JSON error body");
        assert_eq!(body["error"]["code"], "timeout");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("request deadline")));
    }
}
