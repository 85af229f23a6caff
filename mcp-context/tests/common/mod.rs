//! A registry holding one in-memory context service, and a JSON call through it, for the
//! action tests.

use std::sync::Arc;

use mcp_context::ContextService;
use mcp_core::{Error, Registry, RequestContext};
use serde_json::Value;

pub fn registry() -> Registry {
    Registry::builder()
        .service(Arc::new(ContextService::in_memory()))
        .build()
        .unwrap()
}

pub async fn call(registry: &Registry, action: &str, params: Value) -> Result<Value, Error> {
    registry
        .call("context", action, params, &RequestContext::local())
        .await
        .and_then(|output| output.to_value())
}
