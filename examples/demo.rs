//! The demo behind `./run`: builds the registry with the memory and context services on the
//! in-memory backends (offline, nothing to install), puts the middleware chain in front, and
//! drives a short agent session through the same JSON calls every transport uses.

use std::sync::Arc;
use std::time::Instant;

use mcp_services::backends::memory::{MemoryAuditLog, MemoryKvStore};
use mcp_services::backends::{AuditLog, AuditLogSink, AuditQuery};
use mcp_services::context::ContextService;
use mcp_services::core::middleware::{Audit, Authorize, GcraLimiter, Metrics, Quota, RateLimit};
use mcp_services::core::Scopes;
use mcp_services::memory::MemoryService;
use mcp_services::{Registry, RequestContext};
use serde_json::{json, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let audit_log = Arc::new(MemoryAuditLog::new());
    let registry = Registry::builder()
        .layer(Authorize)
        .layer(RateLimit::new(Arc::new(GcraLimiter::new(
            Quota::per_second(100, 20),
        ))))
        .layer(Metrics)
        .layer(Audit::new(Arc::new(AuditLogSink(audit_log.clone()))))
        .service(Arc::new(MemoryService::new(Arc::new(MemoryKvStore::new()))))
        .service(Arc::new(ContextService::in_memory()))
        .build()?;

    println!("mcp-services demo: every service on in-memory backends, offline\n");
    println!("{} actions registered:", registry.actions().len());
    for (service, action) in registry.actions() {
        println!("  {service}_{:<20} {}", action.name, action.description);
    }

    let agent = RequestContext::anonymous()
        .with_principal("demo-agent")
        .with_scopes(Scopes::new(["memory:*", "context:*"]));
    let reader = RequestContext::anonymous()
        .with_principal("read-only-agent")
        .with_scopes(Scopes::new(["memory:retrieve"]));

    let calls: Vec<(&RequestContext, &str, &str, Value)> = vec![
        (
            &agent,
            "memory",
            "store",
            json!({"key": "user:42:prefs", "value": {"theme": "dark", "lang": "en"}, "ttl": 600}),
        ),
        (
            &agent,
            "memory",
            "retrieve",
            json!({"key": "user:42:prefs"}),
        ),
        (
            &agent,
            "memory",
            "search",
            json!({"pattern": "user:*", "with_values": true}),
        ),
        (&reader, "memory", "store", json!({"key": "x", "value": 1})),
        (&agent, "memory", "retrieve", json!({"key": "missing"})),
        (&agent, "memory", "store", json!({"key": 7, "value": 1})),
        (
            &agent,
            "context",
            "add",
            json!({"id": "rust", "text": "Rust is a systems programming language focused on memory safety without a garbage collector."}),
        ),
        (
            &agent,
            "context",
            "add",
            json!({"id": "tokio", "text": "Tokio is an asynchronous runtime for Rust with timers, networking and task scheduling."}),
        ),
        (
            &agent,
            "context",
            "add",
            json!({"id": "bread", "text": "Sourdough bread rises slowly thanks to wild yeast and lactic acid bacteria."}),
        ),
        (
            &agent,
            "context",
            "search",
            json!({"query": "async runtime for Rust", "limit": 2}),
        ),
        (
            &agent,
            "context",
            "create_entities",
            json!({"entities": [{"name": "Ada", "entity_type": "person", "observations": ["writes Rust"]}, {"name": "Acme", "entity_type": "company", "observations": []}]}),
        ),
        (
            &agent,
            "context",
            "create_relations",
            json!({"relations": [{"from": "Ada", "to": "Acme", "relation_type": "works_at"}]}),
        ),
        (&agent, "context", "search_nodes", json!({"query": "rust"})),
    ];
    for (ctx, service, action, params) in calls {
        let started = Instant::now();
        let outcome = registry.call(service, action, params.clone(), ctx).await;
        let took = started.elapsed();
        println!(
            "\n> {service}/{action} as {} {params}",
            ctx.principal().unwrap_or("anonymous")
        );
        match outcome {
            Ok(result) => println!("  ok in {took:?}: {}", compact(result.json())),
            Err(err) => println!(
                "  {} (HTTP {}) in {took:?}: {err}",
                err.code(),
                err.http_status()
            ),
        }
    }

    let health = registry.health().await;
    println!(
        "\nhealth: ok={} {}",
        health.ok,
        serde_json::to_string(&health.services)?
    );
    let records = audit_log
        .query(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await?;
    let refused = records.iter().filter(|r| r.outcome != "ok").count();
    println!(
        "audit log: {} calls recorded, {refused} refused or failed",
        records.len()
    );
    Ok(())
}

/// The result as one line, shortened for the terminal.
fn compact(text: &str) -> String {
    if text.chars().count() > 220 {
        format!("{}…", text.chars().take(220).collect::<String>())
    } else {
        text.to_owned()
    }
}
