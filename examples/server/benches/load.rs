//! Load figures for `BENCHMARKS.md`, every baseline measured in the same run on the same machine:
//!
//! - REST `memory/retrieve` (in-memory and Redis) against a bare axum JSON handler doing a
//!   HashMap lookup: req/s and p99 at 64 connections, generator and server in one process;
//! - MCP `tools/call` over stdio with pipelined requests, `mcp-server --stdio` against the
//!   reference Node servers `@modelcontextprotocol/server-memory` (and
//!   `@modelcontextprotocol/server-filesystem` when the files service is registered) doing the
//!   same work; the Node servers come from `.cache/mcp-reference` (`npm install` there);
//! - cold start (spawn to first answered request) and idle RSS of the binary.
//!
//! `cargo bench -p mcp-server --bench load` (Redis rows need `MCP_TEST_REDIS_URL`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use mcp_server::config::ServerConfig;
use mcp_server::serve::serve_http;
use mcp_server::App;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const CONNECTIONS: usize = 64;
const WARMUP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);
const PIPELINED_CALLS: usize = 5_000;

struct Load {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// Drives `url` with `CONNECTIONS` concurrent keep-alive clients posting `body`.
async fn drive(url: &str, body: &Value) -> Load {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .expect("client");
    let body = Arc::new(body.to_string());
    let run = |duration: Duration| {
        let client = client.clone();
        let body = body.clone();
        let url = url.to_owned();
        async move {
            let deadline = Instant::now() + duration;
            let mut workers = Vec::new();
            for _ in 0..CONNECTIONS {
                let client = client.clone();
                let body = body.clone();
                let url = url.clone();
                workers.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline {
                        let started = Instant::now();
                        let response = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body.as_str().to_owned())
                            .send()
                            .await
                            .expect("request");
                        assert!(response.status().is_success(), "{}", response.status());
                        response.bytes().await.expect("body");
                        latencies.push(started.elapsed());
                    }
                    latencies
                }));
            }
            let mut all = Vec::new();
            for worker in workers {
                all.extend(worker.await.expect("worker"));
            }
            all
        }
    };
    run(WARMUP).await;
    let started = Instant::now();
    let mut latencies = run(MEASURE).await;
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Load {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

async fn bare_axum() -> String {
    let mut values = HashMap::new();
    values.insert(
        "bench:key".to_owned(),
        json!({"user": 42, "theme": "dark", "tags": ["a", "b"]}),
    );
    let values = Arc::new(values);
    let router = Router::new().route(
        "/api/mcp/memory/retrieve",
        post(move |Json(params): Json<Value>| {
            let values = values.clone();
            async move {
                let key = params["key"].as_str().unwrap_or_default();
                match values.get(key) {
                    Some(value) => Json(json!({"value": value, "ttl_remaining": null})),
                    None => Json(json!({"error": "not found"})),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/api/mcp/memory/retrieve")
}

async fn mcp_server(kv: &str, events: &str) -> String {
    let mut config = ServerConfig::default();
    config.backends.kv = kv.to_owned();
    config.backends.events = events.to_owned();
    // The load test measures the transport, not the per-key budget.
    config.limits.rate_per_second = 100_000_000;
    config.limits.rate_burst = 100_000_000;
    let app = App::build(config).await.expect("app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve_http(app, listener, std::future::pending()));
    let base = format!("http://{addr}");
    let stored = reqwest::Client::new()
        .post(format!("{base}/api/mcp/memory/store"))
        .json(&json!({"key": "bench:key", "value": {"user": 42, "theme": "dark", "tags": ["a", "b"]}, "ttl": 3600}))
        .send()
        .await
        .expect("store");
    assert!(stored.status().is_success());
    format!("{base}/api/mcp/memory/retrieve")
}

/// Spawns an MCP stdio server, initializes it, runs `setup` calls, then sends `calls`
/// pipelined copies of `call` and waits for every answer. Returns calls per second.
async fn stdio_calls_per_second(
    command: &Path,
    args: &[String],
    env: &[(String, String)],
    setup: &[Value],
    call: &Value,
) -> Option<f64> {
    let mut child = Command::new(command)
        .args(args)
        .envs(env.iter().cloned())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let mut lines = BufReader::new(child.stdout.take()?).lines();
    let send = |message: Value| {
        let mut line = message.to_string();
        line.push('\n');
        line
    };
    let init = send(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}),
    );
    stdin.write_all(init.as_bytes()).await.ok()?;
    wait_for_id(&mut lines, 0).await?;
    let initialized = send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    stdin.write_all(initialized.as_bytes()).await.ok()?;
    for (i, params) in setup.iter().enumerate() {
        let id = 1 + i as u64;
        let line =
            send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}));
        stdin.write_all(line.as_bytes()).await.ok()?;
        let answer = wait_for_id(&mut lines, id).await?;
        assert!(answer.get("result").is_some(), "setup failed: {answer}");
    }
    let first = 1_000_000u64;
    let mut batch = String::new();
    for i in 0..PIPELINED_CALLS as u64 {
        batch.push_str(&send(
            json!({"jsonrpc": "2.0", "id": first + i, "method": "tools/call", "params": call}),
        ));
    }
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        stdin.write_all(batch.as_bytes()).await.ok();
        stdin
    });
    let mut answered = 0;
    while answered < PIPELINED_CALLS {
        let line = lines.next_line().await.ok()??;
        let message: Value = serde_json::from_str(&line).ok()?;
        if message["id"].as_u64().is_some_and(|id| id >= first) {
            assert!(
                message["result"]["isError"] != json!(true) && message.get("error").is_none(),
                "call failed: {message}"
            );
            answered += 1;
        }
    }
    let elapsed = started.elapsed();
    drop(writer.await.ok()?);
    Some(PIPELINED_CALLS as f64 / elapsed.as_secs_f64())
}

async fn wait_for_id(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    id: u64,
) -> Option<Value> {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .ok()?
            .ok()??;
        if let Ok(message) = serde_json::from_str::<Value>(&line) {
            if message["id"] == json!(id) {
                return Some(message);
            }
        }
    }
}

fn reference_bin(name: &str) -> Option<PathBuf> {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/mcp-reference/node_modules/.bin");
    let path = root.join(name);
    path.exists().then_some(path)
}

/// Spawn to first answered `/health`, and RSS after a second of idling.
async fn cold_start_and_idle_rss(server: &Path) -> (Duration, u64) {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let started = Instant::now();
    let mut child = Command::new(server)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/health");
    loop {
        if let Ok(response) = client.get(&url).send().await {
            if response.status().is_success() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let cold = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = child.id().expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0);
    child.kill().await.ok();
    (cold, rss_kb)
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let retrieve = json!({"key": "bench:key"});
    println!(
        "## REST memory/retrieve, {CONNECTIONS} connections, {MEASURE:?} after {WARMUP:?} warm-up"
    );
    let bare = drive(&bare_axum().await, &retrieve).await;
    println!(
        "bare axum JSON handler:        {:>9.0} req/s  p50 {}  p99 {}",
        bare.per_second,
        ms(bare.p50),
        ms(bare.p99)
    );
    let memory = drive(&mcp_server("memory://", "memory://").await, &retrieve).await;
    println!(
        "mcp-server, in-memory:         {:>9.0} req/s  p50 {}  p99 {}  ({:.2}x bare)",
        memory.per_second,
        ms(memory.p50),
        ms(memory.p99),
        memory.per_second / bare.per_second
    );
    match std::env::var("MCP_TEST_REDIS_URL") {
        Ok(redis) if !redis.is_empty() => {
            let on_redis = drive(&mcp_server(&redis, &redis).await, &retrieve).await;
            println!(
                "mcp-server, Redis (L1 cache):  {:>9.0} req/s  p50 {}  p99 {}  ({:.2}x bare)",
                on_redis.per_second,
                ms(on_redis.p50),
                ms(on_redis.p99),
                on_redis.per_second / bare.per_second
            );
        }
        _ => println!("mcp-server, Redis: skipped (MCP_TEST_REDIS_URL unset)"),
    }

    let server = PathBuf::from(env!("CARGO_BIN_EXE_mcp-server"));
    // Pipelined calls measure the transport, not the per-key budget.
    let config_file = std::env::temp_dir().join(format!("mcp-bench-{}.toml", std::process::id()));
    std::fs::write(
        &config_file,
        "[limits]\nrate_per_second = 100000000\nrate_burst = 100000000\n",
    )
    .expect("bench config");
    let config_arg = config_file.display().to_string();
    println!("\n## MCP tools/call over stdio, {PIPELINED_CALLS} pipelined calls");
    let create = json!({"name": "context_create_entities", "arguments": {"entities": [
        {"name": "Ada", "entityType": "person", "observations": ["writes Rust"]},
        {"name": "Acme", "entityType": "company", "observations": ["makes tools"]}]}});
    let open = json!({"name": "context_open_nodes", "arguments": {"names": ["Ada"]}});
    let ours = stdio_calls_per_second(
        &server,
        &["--stdio".into(), "--config".into(), config_arg.clone()],
        &[],
        std::slice::from_ref(&create),
        &open,
    )
    .await;
    let memory_file =
        std::env::temp_dir().join(format!("mcp-bench-memory-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&memory_file);
    let reference = match reference_bin("mcp-server-memory") {
        Some(bin) => {
            let mut create = create.clone();
            create["name"] = json!("create_entities");
            let mut open = open.clone();
            open["name"] = json!("open_nodes");
            stdio_calls_per_second(
                &bin,
                &[],
                &[("MEMORY_FILE_PATH".into(), memory_file.display().to_string())],
                &[create],
                &open,
            )
            .await
        }
        None => None,
    };
    let _ = std::fs::remove_file(&memory_file);
    match (ours, reference) {
        (Some(ours), Some(reference)) => println!(
            "open_nodes: mcp-server {ours:.0} calls/s, @modelcontextprotocol/server-memory {reference:.0} calls/s ({:.1}x)",
            ours / reference
        ),
        (Some(ours), None) => println!("open_nodes: mcp-server {ours:.0} calls/s; reference server not installed in .cache/mcp-reference"),
        _ => println!("open_nodes: mcp-server run failed"),
    }

    let dir = std::env::temp_dir().join(format!("mcp-bench-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let dir = dir.canonicalize().expect("canonical");
    std::fs::write(
        dir.join("notes.md"),
        "# Notes\n\n".to_owned() + &"a line of text\n".repeat(64),
    )
    .expect("bench file");
    let file = dir.join("notes.md").display().to_string();
    let read_ours = json!({"name": "files_read", "arguments": {"path": file}});
    let ours = stdio_calls_per_second(
        &server,
        &[
            "--stdio".into(),
            "--config".into(),
            config_arg.clone(),
            "--root".into(),
            dir.display().to_string(),
        ],
        &[],
        &[],
        &read_ours,
    )
    .await;
    let reference = match reference_bin("mcp-server-filesystem") {
        Some(bin) => {
            let read = json!({"name": "read_text_file", "arguments": {"path": file}});
            stdio_calls_per_second(&bin, &[dir.display().to_string()], &[], &[], &read).await
        }
        None => None,
    };
    let _ = std::fs::remove_dir_all(&dir);
    match (ours, reference) {
        (Some(ours), Some(reference)) => println!(
            "read file:  mcp-server {ours:.0} calls/s, @modelcontextprotocol/server-filesystem {reference:.0} calls/s ({:.1}x)",
            ours / reference
        ),
        (Some(ours), None) => println!("read file:  mcp-server {ours:.0} calls/s; reference server not installed in .cache/mcp-reference"),
        _ => println!("read file:  mcp-server run failed"),
    }

    println!("\n## Cold start and idle RSS (mcp-server --listen, in-memory)");
    let (cold, rss_kb) = cold_start_and_idle_rss(&server).await;
    let _ = std::fs::remove_file(&config_file);
    println!("spawn to first answered /health: {}", ms(cold));
    println!("idle RSS after 1 s: {:.1} MiB", rss_kb as f64 / 1024.0);
}
