//! Using the Rust client: talks to the server at `MCP_SERVER_URL`, or starts one in process on
//! a free loopback port when that is unset, then stores, reads, searches and handles typed
//! errors over REST, and pipelines requests and receives pushed events over WebSocket.
//!
//! ```sh
//! cargo run -p mcp-server --example client
//! MCP_SERVER_URL=http://127.0.0.1:8787 cargo run -p mcp-server --example client
//! ```

use std::sync::Arc;
use std::time::Duration;

use mcp_server::client::{Client, WsClient};
use mcp_server::config::ServerConfig;
use mcp_server::serve::serve_http;
use mcp_server::{App, Error};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let base = match std::env::var("MCP_SERVER_URL") {
        Ok(url) => url,
        Err(_) => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let root = std::env::temp_dir().join(format!("mcp-client-demo-{}", std::process::id()));
            std::fs::create_dir_all(&root)?;
            let config = ServerConfig {
                roots: vec![root],
                ..ServerConfig::default()
            };
            let app = App::build(config).await?;
            tokio::spawn(serve_http(app, listener, std::future::pending()));
            println!("started an in-process server on {addr}");
            format!("http://{addr}")
        }
    };
    let token = std::env::var("MCP_SERVER_TOKEN").ok();
    let mut client = Client::new(&base)?;
    if let Some(token) = &token {
        client = client.with_token(token);
    }

    let stored = client
        .call(
            "memory",
            "store",
            json!({"key": "greeting", "value": "hello", "ttl": 60}),
        )
        .await?;
    println!("store    -> {stored}");
    let read = client
        .call("memory", "retrieve", json!({"key": "greeting"}))
        .await?;
    println!("retrieve -> {read}");
    match client
        .call("memory", "retrieve", json!({"key": "missing"}))
        .await
    {
        Err(Error::Service(mcp_core::Error::NotFound(what))) => {
            println!("missing  -> not found: {what}")
        }
        other => println!("missing  -> unexpected {other:?}"),
    }

    // files: a versioned write, an edit, the history and a diff between versions.
    let written = client
        .call(
            "files",
            "write",
            json!({"path": "demo/notes.md", "content": "# Notes\n\n- try mcp-services\n"}),
        )
        .await?;
    println!("files write   -> version {}", written["version"]);
    let edited = client
        .call(
            "files",
            "edit",
            json!({"path": "demo/notes.md", "edits": [{"old_text": "try", "new_text": "ship"}]}),
        )
        .await?;
    println!("files edit    -> version {}", edited["version"]);
    let read = client
        .call("files", "read", json!({"path": "demo/notes.md"}))
        .await?;
    println!(
        "files read    -> {:?} (source {})",
        read["content"].as_str().unwrap_or_default(),
        read["source"]
    );
    let diff = client
        .call(
            "files",
            "diff",
            json!({"path": "demo/notes.md", "from_version": 1, "to_version": 2}),
        )
        .await?;
    println!(
        "files diff 1→2:\n{}",
        diff["diff"].as_str().unwrap_or_default()
    );

    // context: documents, hybrid search, and a knowledge graph.
    for text in [
        "Redis keeps its data in memory and persists it with snapshots.",
        "PostgreSQL is a relational database with strong transactions.",
        "Neo4j stores nodes and relationships as a property graph.",
    ] {
        client.call("context", "add", json!({"text": text})).await?;
    }
    let found = client
        .call(
            "context",
            "search",
            json!({"query": "graph of nodes and relationships", "limit": 1}),
        )
        .await?;
    println!(
        "context search -> {:?}",
        found["results"][0]["text"].as_str().unwrap_or_default()
    );
    client
        .call(
            "context",
            "create_entities",
            json!({"entities": [
                {"name": "Ada", "entity_type": "person", "observations": ["writes Rust"]},
                {"name": "mcp-services", "entity_type": "project", "observations": []}
            ]}),
        )
        .await?;
    client
        .call(
            "context",
            "create_relations",
            json!({"relations": [{"from": "Ada", "to": "mcp-services", "relation_type": "maintains"}]}),
        )
        .await?;
    let graph = client
        .call(
            "context",
            "open_nodes",
            json!({"names": ["Ada", "mcp-services"]}),
        )
        .await?;
    println!("context graph  -> {}", graph["relations"]);

    let ws_url = format!("{}/ws/mcp", base.replacen("http", "ws", 1));
    let ws = Arc::new(WsClient::connect(&ws_url, token.as_deref()).await?);
    ws.subscribe("memory").await?;
    let writes: Vec<_> = (0..10)
        .map(|i| {
            let ws = ws.clone();
            tokio::spawn(async move {
                ws.call(
                    "memory",
                    "store",
                    json!({"key": format!("item:{i}"), "value": i}),
                )
                .await
            })
        })
        .collect();
    for write in writes {
        write
            .await
            .map_err(|err| Error::Transport(err.to_string()))??;
    }
    let page = ws
        .call(
            "memory",
            "search",
            json!({"pattern": "item:*", "limit": 100}),
        )
        .await?;
    println!("10 pipelined writes over one WebSocket; search -> {page}");
    if let Some(event) = ws.next_event(Duration::from_secs(2)).await {
        println!("pushed event -> {event}");
    }
    Ok(())
}
