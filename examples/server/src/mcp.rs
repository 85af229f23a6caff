//! MCP over the official Rust SDK (`rmcp`): every registry action is the tool
//! `{service}_{action}` with its input and output schemas and annotations; files under the
//! roots (`file:///abs/path`), memory keys (`memory://{namespace}/{key}`) and the knowledge
//! graph (`context://graph`) are resources, and a subscribed file or memory key gets
//! `notifications/resources/updated` when it changes (for a memory key: is written, deleted
//! or expires).
//!
//! The same handler serves stdio (trusted local caller) and Streamable HTTP, where the HTTP
//! layer's authenticated [`RequestContext`] travels in the request parts, so scopes apply to MCP
//! exactly as to REST.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_backends::{Delivery, EventBus};
use mcp_core::{ActionOutput, ActionSpec, Error, Params, Registry, RequestContext};
use mcp_memory::{EXPIRY_TOPIC, INVALIDATION_TOPIC};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode,
    Implementation, InitializeResult, JsonObject, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    Resource, ResourceContents, ResourceUpdatedNotificationParam, ServerCapabilities,
    SubscribeRequestParams, Tool, ToolAnnotations, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext as McpContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::App;

/// The MCP server handler; one per session (stdio has one, HTTP one per session).
pub struct McpHandler {
    roots: Arc<Vec<PathBuf>>,
    events: Arc<dyn EventBus>,
    /// The registry, the tool list and the request deadline.
    calls: ToolCalls,
    subscriptions: Mutex<HashMap<String, JoinHandle<()>>>,
}

/// Answers `tools/call`: shared by the handler and the stdio transport, which answers calls
/// itself once the session is initialized (see [`crate::stdio`]).
#[derive(Clone)]
pub struct ToolCalls {
    registry: Registry,
    tools: Arc<Vec<Tool>>,
    /// What every tool name calls.
    targets: Arc<HashMap<String, ToolTarget>>,
    timeout: Duration,
}

/// The action behind a tool.
struct ToolTarget {
    service: String,
    action: String,
}

impl ToolCalls {
    fn new(registry: &Registry, timeout: Duration) -> Self {
        let actions = registry.actions();
        let targets = actions
            .iter()
            .map(|(service, spec)| {
                let target = ToolTarget {
                    service: (*service).to_owned(),
                    action: spec.name.clone(),
                };
                (tool_name(service, spec), target)
            })
            .collect();
        ToolCalls {
            registry: registry.clone(),
            tools: Arc::new(
                actions
                    .into_iter()
                    .map(|(service, spec)| tool_of(service, spec))
                    .collect(),
            ),
            targets: Arc::new(targets),
            timeout,
        }
    }

    /// The trusted local caller of a stdio session, with a request id of its own for every
    /// call and the configured deadline.
    pub fn local_caller(&self) -> RequestContext {
        RequestContext::local()
            .with_principal("stdio")
            .with_timeout(self.timeout)
    }

    /// Calls the tool `name` (`{service}_{action}`) for `caller`. A failed action is a tool
    /// result with `isError`; an unknown tool or a protocol problem is a JSON-RPC error.
    pub async fn call(
        &self,
        name: &str,
        arguments: Params,
        caller: &RequestContext,
    ) -> Result<ToolOutcome, ErrorData> {
        let Some(target) = self.targets.get(name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool `{name}`"),
                None,
            ));
        };
        match self
            .registry
            .call(&target.service, &target.action, arguments, caller)
            .await
        {
            Ok(output) if output.is_object() => Ok(ToolOutcome::Structured(output)),
            Ok(output) => Ok(ToolOutcome::Other(
                CallToolResult::success(vec![ContentBlock::text(output.json())]).into(),
            )),
            Err(err) if err.is_protocol_error() => Err(protocol_error(&err)),
            Err(err) => Ok(ToolOutcome::Other(
                CallToolResult::error(vec![ContentBlock::text(err.to_string())]).into(),
            )),
        }
    }
}

/// A tool call's result.
pub enum ToolOutcome {
    /// Success with an object: the structured content, which the result also carries as text
    /// (for clients that predate structured content, and for the model): the whole result as
    /// JSON, or, for a result made in pieces ([`ActionOutput::with_text`]), the other fields
    /// as JSON followed by the text as is.
    Structured(ActionOutput),
    /// Any other result: a non-object value as text, or an action failure (`isError`).
    Other(CallToolResponse),
}

impl From<ToolOutcome> for CallToolResponse {
    fn from(outcome: ToolOutcome) -> Self {
        match outcome {
            ToolOutcome::Structured(output) => {
                let content = match output.text_pieces() {
                    Some(pieces) => vec![
                        ContentBlock::text(pieces.rest.get()),
                        ContentBlock::text(
                            serde_json::from_str::<String>(pieces.text.get()).unwrap_or_default(),
                        ),
                    ],
                    None => vec![ContentBlock::text(output.json())],
                };
                match output.to_value() {
                    Ok(value) => {
                        let mut response = CallToolResult::success(content);
                        response.structured_content = Some(value);
                        response.into()
                    }
                    Err(err) => {
                        CallToolResult::error(vec![ContentBlock::text(err.to_string())]).into()
                    }
                }
            }
            ToolOutcome::Other(response) => response,
        }
    }
}

impl McpHandler {
    /// A handler over the app's registry whose tools are listed once from its actions.
    pub fn new(app: &App) -> Self {
        McpHandler {
            calls: ToolCalls::new(&app.registry, app.config.limits.request_timeout()),
            roots: app.roots.clone(),
            events: app.events.clone(),
            subscriptions: Mutex::new(HashMap::new()),
        }
    }

    /// Another handler sharing this one's registry and tool list (for a new HTTP session).
    pub fn for_session(&self) -> Self {
        McpHandler {
            roots: self.roots.clone(),
            events: self.events.clone(),
            calls: self.calls.clone(),
            subscriptions: Mutex::new(HashMap::new()),
        }
    }

    /// What answers `tools/call` for this handler, to share with the stdio transport.
    pub fn tool_calls(&self) -> ToolCalls {
        self.calls.clone()
    }

    /// The caller's context: the one the HTTP layer authenticated, else the local one (stdio),
    /// with the configured deadline.
    fn caller(&self, mcp: &McpContext<RoleServer>) -> RequestContext {
        match mcp.extensions.get::<axum::http::request::Parts>() {
            Some(parts) => parts
                .extensions
                .get::<RequestContext>()
                .cloned()
                .unwrap_or_else(RequestContext::anonymous)
                .with_timeout(self.calls.timeout),
            None => self.calls.local_caller(),
        }
    }
}

impl McpHandler {
    /// Remembers the task serving the subscription to `uri`, replacing an earlier one.
    fn track(&self, uri: String, task: JoinHandle<()>) -> Result<(), ErrorData> {
        let previous = self
            .subscriptions
            .lock()
            .map_err(|_| ErrorData::internal_error("subscription table poisoned", None))?
            .insert(uri, task);
        if let Some(previous) = previous {
            previous.abort();
        }
        Ok(())
    }
}

impl Drop for McpHandler {
    fn drop(&mut self) {
        if let Ok(subscriptions) = self.subscriptions.get_mut() {
            for (_, task) in subscriptions.drain() {
                task.abort();
            }
        }
    }
}

fn tool_name(service: &str, spec: &ActionSpec) -> String {
    format!("{service}_{}", spec.name)
}

fn tool_of(service: &str, spec: &ActionSpec) -> Tool {
    let mut tool = Tool::new(
        tool_name(service, spec),
        spec.description.clone(),
        Arc::new(object_schema(&spec.params_schema).unwrap_or_else(empty_object_schema)),
    )
    .with_annotations(
        ToolAnnotations::new()
            .read_only(spec.annotations.read_only)
            .destructive(spec.annotations.destructive)
            .idempotent(spec.annotations.idempotent)
            .open_world(false),
    );
    if let Some(output) = object_schema(&spec.result_schema) {
        tool = tool.with_raw_output_schema(Arc::new(output));
    }
    tool
}

/// The schema as a JSON object when it describes an object (MCP requires `type: object`).
fn object_schema(schema: &Value) -> Option<JsonObject> {
    match schema {
        Value::Object(map) if map.get("type") == Some(&json!("object")) => Some(map.clone()),
        _ => None,
    }
}

fn empty_object_schema() -> JsonObject {
    let mut map = JsonObject::new();
    map.insert("type".into(), json!("object"));
    map
}

/// The JSON-RPC error for a registry error that is a protocol problem.
fn protocol_error(err: &Error) -> ErrorData {
    let code = i32::try_from(err.jsonrpc_code()).unwrap_or(-32000);
    ErrorData::new(ErrorCode(code), err.to_string(), Some(err.to_body()))
}

/// Splits `memory://{namespace}/{key}`.
fn memory_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("memory://")?;
    let (namespace, key) = rest.split_once('/')?;
    (!namespace.is_empty() && !key.is_empty()).then_some((namespace, key))
}

const GRAPH_URI: &str = "context://graph";

/// How often a subscribed file is checked for changes.
const FILE_POLL: Duration = Duration::from_millis(200);

/// Where a `resources/list` page continues: files of root `n` (then the next roots), then
/// memory keys; the inner cursor is the service's own.
enum ListPosition {
    Files(usize, Option<String>),
    Memory(Option<String>),
}

impl ListPosition {
    fn parse(cursor: &str) -> Option<Self> {
        let inner = |text: &str| (!text.is_empty()).then(|| text.to_owned());
        if let Some(rest) = cursor.strip_prefix("files:") {
            let (index, rest) = rest.split_once(':')?;
            return Some(ListPosition::Files(index.parse().ok()?, inner(rest)));
        }
        cursor
            .strip_prefix("memory:")
            .map(|rest| ListPosition::Memory(inner(rest)))
    }
}

/// A subscribed file as a path beneath one root's directory handle, so polling it can never
/// look outside the roots: cap-std resolves `rel` beneath `dir` and refuses `..` or symlinks
/// that leave it (a link swapped in after the subscription just reads as "gone").
struct WatchedFile {
    dir: cap_std::fs::Dir,
    rel: PathBuf,
}

impl WatchedFile {
    /// The root holding `path` (absolute, or relative to the first root) and the rest of it.
    fn open(roots: &[PathBuf], path: &Path) -> std::io::Result<WatchedFile> {
        let (root, rel) = roots
            .iter()
            .find_map(|root| Some((root, path.strip_prefix(root).ok()?)))
            .or_else(|| Some((roots.first()?, path)).filter(|_| path.is_relative()))
            .ok_or_else(|| std::io::Error::other("not under a root"))?;
        Ok(WatchedFile {
            dir: cap_std::fs::Dir::open_ambient_dir(root, cap_std::ambient_authority())?,
            rel: rel.to_path_buf(),
        })
    }

    /// The file's modification time and size, or `None` when it is gone (or out of reach).
    fn signature(&self) -> Option<(cap_std::time::SystemTime, u64)> {
        let metadata = self.dir.metadata(&self.rel).ok()?;
        Some((metadata.modified().ok()?, metadata.len()))
    }
}

/// Sends `notifications/resources/updated` for `uri` whenever the file's signature changes,
/// until the peer goes away or the subscription is dropped.
async fn watch_file(file: WatchedFile, uri: String, peer: rmcp::Peer<RoleServer>) {
    let mut last = file.signature();
    loop {
        tokio::time::sleep(FILE_POLL).await;
        let now = file.signature();
        if now != last {
            last = now;
            if peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri.clone()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

#[allow(deprecated)] // resources/subscribe is what 2025-11-25 clients use.
impl ServerHandler for McpHandler {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(Implementation::new("mcp-server", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Tools are {service}_{action} for the files, memory and context services; \
             memory keys are resources memory://{namespace}/{key}, the knowledge graph is \
             context://graph.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: McpContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            self.calls.tools.as_ref().clone(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.calls
            .tools
            .iter()
            .find(|tool| tool.name == name)
            .cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: McpContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = self.caller(&context);
        self.calls
            .call(
                &request.name,
                request.arguments.map_or(Value::Null, Value::Object).into(),
                &caller,
            )
            .await
            .map(CallToolResponse::from)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: McpContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let ctx = self.caller(&context);
        let cursor = request.and_then(|params| params.cursor);
        let position = match cursor.as_deref() {
            None => ListPosition::Files(0, None),
            Some(cursor) => ListPosition::parse(cursor).ok_or_else(|| {
                ErrorData::invalid_params(format!("invalid cursor `{cursor}`"), None)
            })?,
        };
        let mut resources = Vec::new();
        if cursor.is_none() {
            resources.push(
                Resource::new(GRAPH_URI, "knowledge graph")
                    .with_description("Every entity and relation of the context knowledge graph")
                    .with_mime_type("application/json"),
            );
        }
        let next = match position {
            ListPosition::Files(index, inner) => {
                let root = &self.roots[index.min(self.roots.len().saturating_sub(1))];
                let page = self
                    .calls
                    .registry
                    .call(
                        "files",
                        "list",
                        json!({"path": root.display().to_string(), "recursive": true, "cursor": inner, "limit": 500}),
                        &ctx,
                    )
                    .await
                    .and_then(|output| output.to_value())
                    .map_err(|err| protocol_error(&err))?;
                for entry in page["entries"].as_array().into_iter().flatten() {
                    let (Some(path), Some("file")) =
                        (entry["path"].as_str(), entry["kind"].as_str())
                    else {
                        continue;
                    };
                    let absolute = root.join(path);
                    let name = entry["name"].as_str().unwrap_or(path).to_owned();
                    let mut resource =
                        Resource::new(format!("file://{}", absolute.display()), name);
                    resource.size = entry["size"].as_u64();
                    resources.push(resource);
                }
                match page["next_cursor"].as_str() {
                    Some(inner) => Some(format!("files:{index}:{inner}")),
                    None if index + 1 < self.roots.len() => Some(format!("files:{}:", index + 1)),
                    None => Some("memory:".to_owned()),
                }
            }
            ListPosition::Memory(inner) => {
                let page = self
                    .calls
                    .registry
                    .call(
                        "memory",
                        "search",
                        json!({"pattern": "*", "cursor": inner}),
                        &ctx,
                    )
                    .await
                    .and_then(|output| output.to_value())
                    .map_err(|err| protocol_error(&err))?;
                let namespace = ctx.namespace().unwrap_or("default");
                for key in page["keys"].as_array().into_iter().flatten() {
                    if let Some(key) = key.as_str() {
                        resources.push(
                            Resource::new(format!("memory://{namespace}/{key}"), key.to_owned())
                                .with_mime_type("application/json"),
                        );
                    }
                }
                page["next_cursor"]
                    .as_str()
                    .map(|inner| format!("memory:{inner}"))
            }
        };
        let mut result = ListResourcesResult::with_all_items(resources);
        result.next_cursor = next;
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: McpContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let ctx = self.caller(&context);
        let uri = request.uri;
        if let Some(path) = uri.strip_prefix("file://") {
            let read = self
                .calls
                .registry
                .call("files", "read", json!({"path": path}), &ctx)
                .await
                .and_then(|output| output.to_value());
            return match read {
                Ok(file) => {
                    let contents = match (file["content"].as_str(), file["content_base64"].as_str())
                    {
                        (Some(text), _) => ResourceContents::text(text, uri.clone()),
                        (None, Some(blob)) => ResourceContents::blob(blob, uri.clone()),
                        (None, None) => ResourceContents::text("", uri.clone()),
                    };
                    Ok(ReadResourceResult::new(vec![contents]).into())
                }
                Err(Error::NotFound(message)) => Err(ErrorData::resource_not_found(message, None)),
                Err(err) => Err(protocol_error(&err)),
            };
        }
        let value = if uri == GRAPH_URI {
            self.calls
                .registry
                .call("context", "read_graph", json!({}), &ctx)
                .await
                .and_then(|output| output.to_value())
        } else if let Some((namespace, key)) = memory_uri(&uri) {
            self.calls
                .registry
                .call(
                    "memory",
                    "retrieve",
                    json!({"namespace": namespace, "key": key}),
                    &ctx,
                )
                .await
                .and_then(|output| output.to_value())
                .map(|retrieved| retrieved["value"].clone())
        } else {
            return Err(ErrorData::resource_not_found(
                format!("no resource `{uri}`"),
                None,
            ));
        };
        match value {
            Ok(value) => Ok(ReadResourceResult::new(vec![ResourceContents::text(
                value.to_string(),
                uri,
            )
            .with_mime_type("application/json")])
            .into()),
            Err(Error::NotFound(message)) => Err(ErrorData::resource_not_found(message, None)),
            Err(err) => Err(protocol_error(&err)),
        }
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: McpContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let uri = request.uri;
        if let Some(path) = uri.strip_prefix("file://") {
            let ctx = self.caller(&context);
            // The stat goes through the sandbox and the caller's scopes.
            match self
                .calls
                .registry
                .call("files", "stat", json!({"path": path}), &ctx)
                .await
            {
                Ok(_) => {}
                Err(Error::NotFound(message)) => {
                    return Err(ErrorData::resource_not_found(message, None))
                }
                Err(err) => return Err(protocol_error(&err)),
            }
            let file = WatchedFile::open(&self.roots, Path::new(path)).map_err(|err| {
                ErrorData::internal_error(format!("cannot watch `{uri}`: {err}"), None)
            })?;
            let task = tokio::spawn(watch_file(file, uri.clone(), context.peer.clone()));
            return self.track(uri, task);
        }
        let Some((namespace, key)) = memory_uri(&uri) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "only memory://{{namespace}}/{{key}} resources can be subscribed, not `{uri}`"
                ),
                None,
            ));
        };
        let ctx = self.caller(&context);
        if !ctx.scopes().allows("memory", "retrieve") {
            return Err(protocol_error(&Error::PermissionDenied(
                "subscribing to memory keys needs memory:retrieve".into(),
            )));
        }
        let stored_key = format!("mem:{namespace}:{key}");
        let expired_notice = json!({"namespace": namespace, "key": key});
        let subscribe = |topic| async move {
            self.events
                .subscribe(topic)
                .await
                .map_err(|err| protocol_error(&err.into()))
        };
        let mut writes = subscribe(INVALIDATION_TOPIC).await?;
        let mut expiries = subscribe(EXPIRY_TOPIC).await?;
        let peer = context.peer.clone();
        let watched = uri.clone();
        let task = tokio::spawn(async move {
            loop {
                // A write of the key (its store key), or its expiry (namespace and key).
                let (delivery, concerns): (_, &dyn Fn(&Value) -> bool) = tokio::select! {
                    delivery = writes.recv() => (delivery, &|payload| payload["key"] == stored_key.as_str()),
                    delivery = expiries.recv() => (delivery, &|payload| *payload == expired_notice),
                };
                let changed = match delivery {
                    None => break,
                    Some(Delivery::Event(event)) => serde_json::from_slice::<Value>(&event.payload)
                        .map(|payload| concerns(&payload))
                        .unwrap_or(false),
                    // Missed events may have concerned this key.
                    Some(Delivery::Lagged { .. }) => true,
                };
                if changed
                    && peer
                        .notify_resource_updated(ResourceUpdatedNotificationParam::new(
                            watched.clone(),
                        ))
                        .await
                        .is_err()
                {
                    break;
                }
            }
        });
        self.track(uri, task)
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: McpContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let task = self
            .subscriptions
            .lock()
            .map_err(|_| ErrorData::internal_error("subscription table poisoned", None))?
            .remove(&request.uri);
        if let Some(task) = task {
            task.abort();
        }
        Ok(())
    }
}
