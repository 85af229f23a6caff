//! WebSocket `/ws/mcp`: requests `{"id", "service", "action", "payload"}` run concurrently and
//! are answered by id (`{"id", "result"}` or `{"id", "error": {"code", "message"}}`), so many
//! can be in flight on one socket. `{"id", "subscribe": "memory"}` subscribes the socket to a
//! service's events, pushed as `{"event": "memory.changed", "data": {...}}` (every write) and
//! `{"event": "memory.expired", "data": {"namespace", "key"}}` (a TTL ran out); `"files"`
//! pushes `files.changed`.

use std::sync::Arc;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use futures_util::{SinkExt, StreamExt};
use mcp_backends::Delivery;
use mcp_core::{Error, RequestContext};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use crate::http::AppState;

/// Requests one socket may have running at once; further ones wait for a slot.
pub const MAX_IN_FLIGHT: usize = 256;

/// One incoming message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Incoming {
    id: Value,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    payload: Value,
    #[serde(default)]
    subscribe: Option<String>,
}

/// Parses one message; serde's error (including the nesting limit) becomes the message.
fn parse(text: &str) -> Result<Incoming, String> {
    serde_json::from_str(text).map_err(|err| format!("malformed message: {err}"))
}

pub(crate) async fn upgrade(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let max = state.app.config.limits.max_body_bytes;
    upgrade
        .max_message_size(max)
        .on_upgrade(move |socket| serve(socket, state, ctx))
}

async fn serve(socket: WebSocket, state: AppState, ctx: RequestContext) {
    let (mut sink, mut stream) = socket.split();
    let (outgoing, mut to_send) = mpsc::channel::<Value>(1024);
    let writer = tokio::spawn(async move {
        while let Some(message) = to_send.recv().await {
            if sink
                .send(Message::Text(message.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
        sink
    });
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    let mut too_big = false;
    while let Some(received) = stream.next().await {
        let message = match received {
            Ok(message) => message,
            Err(err) => {
                // The only typed view axum gives of tungstenite's capacity error is its text.
                too_big = err.to_string().contains("Message too long");
                break;
            }
        };
        let parsed = match &message {
            Message::Text(text) => parse(text.as_str()),
            // Binary frames carry the same JSON; bytes that are not UTF-8 are refused, not
            // replaced (a lossy decode would store U+FFFD in place of the caller's bytes).
            Message::Binary(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => parse(text),
                Err(err) => Err(format!(
                    "the binary message is not valid UTF-8 (invalid byte at offset {})",
                    err.valid_up_to()
                )),
            },
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        let incoming = match parsed {
            Ok(incoming) => incoming,
            Err(message) => {
                let error = Error::InvalidArgument(message);
                let _ = outgoing
                    .send(json!({"id": null, "error": error.to_body()}))
                    .await;
                continue;
            }
        };
        if let Some(service) = incoming.subscribe {
            tasks.spawn(forward_events(
                state.clone(),
                ctx.clone(),
                incoming.id,
                service,
                outgoing.clone(),
            ));
            continue;
        }
        let (Some(service), Some(action)) = (incoming.service, incoming.action) else {
            let error = Error::InvalidArgument(
                "a message needs `service` and `action` (or `subscribe`)".into(),
            );
            let _ = outgoing
                .send(json!({"id": incoming.id, "error": error.to_body()}))
                .await;
            continue;
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let registry = state.app.registry.clone();
        let ctx = ctx
            .clone()
            .with_timeout(state.app.config.limits.request_timeout());
        let outgoing = outgoing.clone();
        tasks.spawn(async move {
            let answer = match registry
                .call(&service, &action, incoming.payload, &ctx)
                .await
            {
                Ok(result) => json!({"id": incoming.id, "result": result}),
                Err(err) => json!({"id": incoming.id, "error": err.to_body()}),
            };
            drop(permit);
            let _ = outgoing.send(answer).await;
        });
        // A JoinSet keeps every finished task until it is joined: reap them as we go, or a
        // long-lived socket holds one task allocation per request it ever served.
        while tasks.try_join_next().is_some() {}
    }
    tasks.abort_all();
    drop(outgoing);
    if let Ok(mut sink) = writer.await {
        if too_big {
            let reason = format!(
                "a message exceeds {} bytes",
                state.app.config.limits.max_body_bytes
            );
            let close = CloseFrame {
                code: close_code::SIZE,
                reason: reason.into(),
            };
            let _ = sink.send(Message::Close(Some(close))).await;
        }
    }
}

/// The bus topics of a service's events and the event name each is pushed as.
fn topics_of(service: &str) -> &'static [(&'static str, &'static str)] {
    match service {
        "memory" => &[
            (mcp_memory::INVALIDATION_TOPIC, "memory.changed"),
            (mcp_memory::EXPIRY_TOPIC, "memory.expired"),
        ],
        "files" => &[(mcp_files::INVALIDATION_TOPIC, "files.changed")],
        _ => &[],
    }
}

async fn forward_events(
    state: AppState,
    ctx: RequestContext,
    id: Value,
    service: String,
    outgoing: mpsc::Sender<Value>,
) {
    let topics = topics_of(&service);
    let subscribed = if topics.is_empty() {
        Err(Error::NotFound(format!(
            "no change events for service `{service}`"
        )))
    } else if !read_allowed(&ctx, &service) {
        Err(Error::PermissionDenied(format!(
            "subscribing to {service} needs a read scope"
        )))
    } else {
        subscribe_all(&state, topics).await
    };
    let subscriptions = match subscribed {
        Ok(subscriptions) => subscriptions,
        Err(err) => {
            let _ = outgoing
                .send(json!({"id": id, "error": err.to_body()}))
                .await;
            return;
        }
    };
    if outgoing
        .send(json!({"id": id, "result": {"subscribed": service}}))
        .await
        .is_err()
    {
        return;
    }
    let mut forwarders = JoinSet::new();
    for (event, subscription) in subscriptions {
        forwarders.spawn(forward_topic(event, subscription, outgoing.clone()));
    }
    // Every forwarder ends when the socket's sender closes; aborted with the socket's tasks.
    while forwarders.join_next().await.is_some() {}
}

async fn subscribe_all(
    state: &AppState,
    topics: &[(&'static str, &'static str)],
) -> Result<Vec<(&'static str, mcp_backends::Subscription)>, Error> {
    let mut subscriptions = Vec::with_capacity(topics.len());
    for (topic, event) in topics {
        subscriptions.push((*event, state.app.events.subscribe(topic).await?));
    }
    Ok(subscriptions)
}

/// Pushes every event of `subscription` to the socket as `{"event", "data"}` (or
/// `{"event", "lagged"}`) until the socket goes away.
async fn forward_topic(
    event: &'static str,
    mut subscription: mcp_backends::Subscription,
    outgoing: mpsc::Sender<Value>,
) {
    while let Some(delivery) = subscription.recv().await {
        let message = match delivery {
            Delivery::Event(event_data) => json!({
                "event": event,
                "data": serde_json::from_slice::<Value>(&event_data.payload).unwrap_or(Value::Null),
            }),
            Delivery::Lagged { missed } => json!({"event": event, "lagged": missed}),
        };
        if outgoing.send(message).await.is_err() {
            return;
        }
    }
}

fn read_allowed(ctx: &RequestContext, service: &str) -> bool {
    match service {
        "memory" => ctx.scopes().allows("memory", "retrieve"),
        "files" => ctx.scopes().allows("files", "read"),
        _ => false,
    }
}
