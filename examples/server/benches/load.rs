//! Load figures for `BENCHMARKS.md`, every baseline measured in the same run on the same machine,
//! interleaved round by round so that baseline and candidate see the same background load:
//!
//! - REST `memory/retrieve` at 64 connections, generator and servers in one process:
//!   `mcp-server` on in-memory backends and on Redis, against a bare axum JSON handler doing a
//!   `HashMap` lookup and a bare axum handler doing one raw Redis `GET` on one multiplexed
//!   connection;
//! - MCP `tools/call` over stdio with pipelined requests, `mcp-server --stdio` against the
//!   reference Node servers `@modelcontextprotocol/server-memory` (a 2-entity graph and a
//!   1,000-entity graph, the same data loaded into both) and
//!   `@modelcontextprotocol/server-filesystem` doing the same work; the Node servers are
//!   installed into `.cache/mcp-reference` with `npm` on first use (pinned versions);
//! - cold start (spawn to first answered request) and idle RSS of the binary.
//!
//! `cargo bench -p mcp-server --bench load [-- rest|stdio|startup ...]` (Redis rows need
//! `MCP_TEST_REDIS_URL`; no section named runs them all).

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
/// Short slices, many rounds: on a shared machine the load changes within seconds, so every
/// REST row runs once per round and ratios are taken within a round.
const WARMUP: Duration = Duration::from_millis(500);
const MEASURE: Duration = Duration::from_millis(1500);
const REST_ROUNDS: usize = 8;
/// Rounds of the stdio rows and startup runs; figures are medians over rounds.
const ROUNDS: usize = 3;
/// Enough calls that a round of ours lasts a few hundred milliseconds (5,000 took ~50 ms,
/// and single rounds swung by 2x).
const PIPELINED_CALLS: usize = 100_000;
/// Fewer calls for the large graph: the Node server re-reads its whole file on every call.
const PIPELINED_CALLS_LARGE: usize = 2_000;
/// Pipelined calls are written this many at a time ...
const PIPELINE_CHUNK: usize = 100;
/// ... with at most this many unanswered.
const PIPELINE_WINDOW: usize = 1_000;
/// The large knowledge graph: entities, observations per entity, relations per entity.
const LARGE_ENTITIES: usize = 1_000;
const LARGE_OBSERVATIONS: usize = 3;
const LARGE_RELATIONS_PER_ENTITY: usize = 2;
/// The reference servers, pinned so that reruns compare against the same code.
const REFERENCE_PACKAGES: [&str; 2] = [
    "@modelcontextprotocol/server-memory@2026.8.31",
    "@modelcontextprotocol/server-filesystem@2026.8.31",
];
const STORED_VALUE: &str = r#"{"user": 42, "theme": "dark", "tags": ["a", "b"]}"#;

/// The allocator `mcp-server` ships with, for every server in this process (ours and the bare
/// baselines alike), so the REST rows measure the binary's configuration.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Load {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
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
                        let answer = response.bytes().await.expect("body");
                        assert!(
                            answer.windows(8).any(|w| w == b"\"value\":"),
                            "unexpected answer"
                        );
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

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/api/mcp/memory/retrieve")
}

/// Baseline: parse the JSON body, look the key up in a `HashMap`, answer JSON.
async fn bare_axum() -> String {
    let mut values = HashMap::new();
    values.insert(
        "bench:key".to_owned(),
        serde_json::from_str::<Value>(STORED_VALUE).expect("value"),
    );
    let values = Arc::new(values);
    serve(Router::new().route(
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
    ))
    .await
}

/// Baseline on Redis: parse the JSON body, one raw `GET` on one multiplexed connection, parse
/// the stored JSON, answer JSON.
async fn bare_axum_redis(url: &str) -> String {
    let client = redis::Client::open(url).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let _: () = redis::cmd("SET")
        .arg("bench:bare:bench:key")
        .arg(STORED_VALUE)
        .arg("EX")
        .arg(3600)
        .query_async(&mut conn)
        .await
        .expect("redis set");
    serve(Router::new().route(
        "/api/mcp/memory/retrieve",
        post(move |Json(params): Json<Value>| {
            let mut conn = conn.clone();
            async move {
                let key = format!("bench:bare:{}", params["key"].as_str().unwrap_or_default());
                let stored: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .expect("redis get");
                match stored.and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok()) {
                    Some(value) => Json(json!({"value": value, "ttl_remaining": null})),
                    None => Json(json!({"error": "not found"})),
                }
            }
        }),
    ))
    .await
}

async fn mcp_server(kv: &str, events: &str) -> String {
    let mut config = ServerConfig::default();
    config.backends.kv = kv.to_owned();
    config.backends.events = events.to_owned();
    // The load test measures the transport, not the per-key budget.
    config.limits.rate_per_second = 100_000_000.0;
    config.limits.rate_burst = 100_000_000;
    let app = App::build(config).await.expect("app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve_http(app, listener, std::future::pending()));
    let base = format!("http://{addr}");
    let value: Value = serde_json::from_str(STORED_VALUE).expect("value");
    let stored = reqwest::Client::new()
        .post(format!("{base}/api/mcp/memory/store"))
        .json(&json!({"key": "bench:key", "value": value, "ttl": 3600}))
        .send()
        .await
        .expect("store");
    assert!(stored.status().is_success());
    format!("{base}/api/mcp/memory/retrieve")
}

async fn rest_section() {
    let retrieve = json!({"key": "bench:key"});
    println!(
        "## REST memory/retrieve, {CONNECTIONS} connections, {MEASURE:?} after {WARMUP:?} warm-up, {REST_ROUNDS} interleaved rounds"
    );
    let redis = std::env::var("MCP_TEST_REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let mut rows: Vec<(&str, String)> = vec![
        ("bare axum, HashMap", bare_axum().await),
        (
            "mcp-server, in-memory",
            mcp_server("memory://", "memory://").await,
        ),
    ];
    match &redis {
        Some(url) => {
            rows.push(("bare axum, Redis GET", bare_axum_redis(url).await));
            rows.push(("mcp-server, Redis", mcp_server(url, url).await));
        }
        None => println!("Redis rows skipped (MCP_TEST_REDIS_URL unset)"),
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut ratios: HashMap<&str, Vec<f64>> = HashMap::new();
    for round in 1..=REST_ROUNDS {
        let mut this_round = Vec::new();
        for (i, (name, url)) in rows.iter().enumerate() {
            let load = drive(url, &retrieve).await;
            println!(
                "round {round}  {name:<24} {:>9.0} req/s  p50 {}  p99 {}",
                load.per_second,
                ms(load.p50),
                ms(load.p99)
            );
            rates[i].push(load.per_second);
            this_round.push(load.per_second);
        }
        ratios
            .entry("in-memory / bare HashMap")
            .or_default()
            .push(this_round[1] / this_round[0]);
        if this_round.len() == 4 {
            ratios
                .entry("Redis / bare HashMap")
                .or_default()
                .push(this_round[3] / this_round[0]);
            ratios
                .entry("Redis / bare Redis GET")
                .or_default()
                .push(this_round[3] / this_round[2]);
        }
    }
    for ((name, _), rates) in rows.iter().zip(rates) {
        println!("median  {name:<24} {:>9.0} req/s", median(rates));
    }
    let mut names: Vec<_> = ratios.keys().copied().collect();
    names.sort();
    for name in names {
        let values = &ratios[name];
        let shown: Vec<String> = values.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "ratio   {name:<26} median {:.2}x  (rounds: {})",
            median(values.clone()),
            shown.join(", ")
        );
    }
}

/// Spawns an MCP stdio server, initializes it, runs `setup` calls, then sends `calls`
/// pipelined copies of `call` and waits for every answer.
async fn stdio_calls_per_second(
    command: &Path,
    args: &[String],
    env: &[(String, String)],
    setup: &[Value],
    call: &Value,
    calls: usize,
) -> Option<StdioRun> {
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
    // A pipe's worth per read: with the default 8 KiB the generator made a system call per
    // two or three 1 KB-file answers.
    let mut lines = BufReader::with_capacity(1 << 16, child.stdout.take()?).lines();
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
        assert!(
            answer.get("result").is_some() && answer["result"]["isError"] != json!(true),
            "setup failed: {answer}"
        );
    }
    let first = 1_000_000u64;
    // Calls go out in chunks of `PIPELINE_CHUNK`, with at most `PIPELINE_WINDOW` unanswered:
    // the Node servers open a file per call and run out of descriptors (EMFILE) when tens of
    // thousands arrive at once.
    let chunks: Vec<String> = (0..calls as u64)
        .collect::<Vec<_>>()
        .chunks(PIPELINE_CHUNK)
        .map(|ids| {
            ids.iter()
                .map(|i| send(json!({"jsonrpc": "2.0", "id": first + i, "method": "tools/call", "params": call})))
                .collect()
        })
        .collect();
    let window = Arc::new(tokio::sync::Semaphore::new(PIPELINE_WINDOW));
    let server_cpu_before = child.id().and_then(cpu_seconds);
    let own_cpu_before = cpu_seconds(std::process::id());
    let started = Instant::now();
    let writer = {
        let window = window.clone();
        tokio::spawn(async move {
            for chunk in chunks {
                let lines = chunk.matches('\n').count() as u32;
                window.acquire_many(lines).await.ok()?.forget();
                stdin.write_all(chunk.as_bytes()).await.ok()?;
            }
            Some(stdin)
        })
    };
    // While the clock runs the generator only collects the answers' bytes and counts their
    // lines (the generator shares the 2 cores with the server, and parsing every answer as it
    // arrives cost it a large share of them); every answer is checked once the clock stops.
    let mut stdout = lines.into_inner();
    // Kept as the chunks read: one growing buffer cost the generator a copy of everything
    // received so far at every doubling.
    let mut received: Vec<Vec<u8>> = Vec::with_capacity(calls / 8);
    let mut answered = 0;
    while answered < calls {
        let available = stdout.fill_buf().await.ok()?;
        if available.is_empty() {
            return None;
        }
        let lines = available.iter().filter(|&&byte| byte == b'\n').count();
        received.push(available.to_vec());
        let taken = available.len();
        stdout.consume(taken);
        answered += lines;
        window.add_permits(lines);
    }
    let elapsed = started.elapsed();
    let per_call = |cpu: Option<f64>| {
        // /proc counts 10 ms ticks: under 0.1 s the figure would be mostly rounding.
        cpu.filter(|&seconds| seconds >= 0.1)
            .map(|seconds| seconds / calls as f64 * 1e6)
    };
    let server_cpu_per_call = per_call(
        child
            .id()
            .and_then(cpu_seconds)
            .zip(server_cpu_before)
            .map(|(after, before)| after - before),
    );
    let generator_cpu_per_call = per_call(
        cpu_seconds(std::process::id())
            .zip(own_cpu_before)
            .map(|(after, before)| after - before),
    );
    check_answers(&received.concat(), first, calls);
    drop(writer.await.ok()?);
    Some(StdioRun {
        per_second: calls as f64 / elapsed.as_secs_f64(),
        server_cpu_per_call,
        generator_cpu_per_call,
    })
}

/// One pipelined stdio run: calls per second, and the CPU time per call of the server and of
/// the generator (which share the machine's cores), when the run was long enough to tell.
struct StdioRun {
    per_second: f64,
    server_cpu_per_call: Option<f64>,
    generator_cpu_per_call: Option<f64>,
}

impl std::fmt::Display for StdioRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let micros = |cpu: Option<f64>| cpu.map_or("-".to_owned(), |us| format!("{us:.1} µs"));
        write!(
            f,
            "{:.0} calls/s (CPU per call: server {}, generator {})",
            self.per_second,
            micros(self.server_cpu_per_call),
            micros(self.generator_cpu_per_call)
        )
    }
}

/// The user plus system CPU time `pid` has used, in seconds (Linux `/proc`; the tick is
/// 10 ms, fine against rounds of hundreds of milliseconds).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Every line of `received` must be the successful answer to one of the `calls` pipelined
/// requests (ids from `first`), each answered once.
fn check_answers(received: &[u8], first: u64, calls: usize) {
    let mut seen = vec![false; calls];
    for line in received
        .split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
    {
        let text = String::from_utf8_lossy(line);
        let answer: Answer = serde_json::from_slice(line)
            .unwrap_or_else(|err| panic!("not a JSON-RPC answer ({err}): {text}"));
        let index = answer
            .id
            .and_then(|id| id.checked_sub(first))
            .and_then(|index| usize::try_from(index).ok())
            .filter(|&index| index < calls)
            .unwrap_or_else(|| panic!("a message that answers no pipelined call: {text}"));
        assert!(
            answer.error.is_none() && answer.result.is_some_and(|result| !result.is_error),
            "call failed: {text}"
        );
        assert!(!seen[index], "answered twice: {text}");
        seen[index] = true;
    }
    assert!(
        seen.iter().all(|&answered| answered),
        "calls left unanswered"
    );
}

/// The parts of a JSON-RPC answer the pipelined check reads; the rest is skipped unparsed.
#[derive(serde::Deserialize)]
struct Answer {
    id: Option<u64>,
    result: Option<AnswerResult>,
    error: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct AnswerResult {
    #[serde(rename = "isError", default)]
    is_error: bool,
}

async fn wait_for_id(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    id: u64,
) -> Option<Value> {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
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

/// The reference Node servers' directory, installing them with `npm` when missing.
fn reference_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/mcp-reference");
    let bin = root.join("node_modules/.bin");
    let installed = ["mcp-server-memory", "mcp-server-filesystem"]
        .iter()
        .all(|name| bin.join(name).exists());
    if !installed {
        println!(
            "installing {} into {} with npm",
            REFERENCE_PACKAGES.join(" "),
            root.display()
        );
        std::fs::create_dir_all(&root).ok()?;
        if !root.join("package.json").exists() {
            std::fs::write(root.join("package.json"), "{\"private\": true}\n").ok()?;
        }
        let status = std::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&root)
            .args(REFERENCE_PACKAGES)
            .stdout(Stdio::null())
            .status();
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => {
                println!("npm install failed ({status}); reference rows skipped");
                return None;
            }
            Err(err) => {
                println!("npm not runnable ({err}); reference rows skipped");
                return None;
            }
        }
    }
    Some(bin)
}

/// `create_entities` and `create_relations` arguments for a graph of `LARGE_ENTITIES`
/// entities with `LARGE_OBSERVATIONS` observations each and `LARGE_RELATIONS_PER_ENTITY`
/// relations from each, plus the names to open (two related entities).
fn large_graph() -> (Value, Value, Value) {
    const KINDS: [&str; 3] = ["person", "company", "project"];
    const RELATION_TYPES: [&str; 2] = ["knows", "works_with"];
    let entities: Vec<Value> = (0..LARGE_ENTITIES)
        .map(|i| {
            let observations: Vec<String> = (0..LARGE_OBSERVATIONS)
                .map(|o| {
                    format!(
                        "observation {o} about entity {i}: works on project {}",
                        i % 37
                    )
                })
                .collect();
            json!({"name": format!("entity-{i:04}"), "entityType": KINDS[i % 3],
                   "observations": observations})
        })
        .collect();
    let relations: Vec<Value> = (0..LARGE_ENTITIES)
        .flat_map(|i| {
            (1..=LARGE_RELATIONS_PER_ENTITY).map(move |step| {
                let to = (i + step * 7) % LARGE_ENTITIES;
                json!({"from": format!("entity-{i:04}"), "to": format!("entity-{to:04}"),
                       "relationType": RELATION_TYPES[step % 2]})
            })
        })
        .collect();
    (
        json!({"entities": entities}),
        json!({"relations": relations}),
        json!({"names": ["entity-0500", "entity-0507"]}),
    )
}

/// A reference server run: binary, arguments, environment, setup calls, the measured call.
type ReferenceRun = (
    PathBuf,
    Vec<String>,
    Vec<(String, String)>,
    Vec<Value>,
    Value,
);

/// One stdio comparison: our tool call against the reference server's, `ROUNDS` times
/// interleaved; prints every round and the median ratio.
struct StdioRow<'a> {
    label: &'a str,
    ours: (Vec<String>, Vec<Value>, Value),
    theirs: Option<ReferenceRun>,
    calls: usize,
    /// Removed before every reference run, so each starts from the same (empty) state.
    reset: Option<PathBuf>,
}

async fn run_stdio_row(server: &Path, row: StdioRow<'_>) {
    let mut ratios = Vec::new();
    let (mut ours_rates, mut theirs_rates) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let (args, setup, call) = &row.ours;
        let Some(ours) = stdio_calls_per_second(server, args, &[], setup, call, row.calls).await
        else {
            println!("{}: mcp-server run failed", row.label);
            return;
        };
        ours_rates.push(ours.per_second);
        let Some((bin, args, env, setup, call)) = &row.theirs else {
            println!("round {round}  {}: mcp-server {ours}", row.label);
            continue;
        };
        if let Some(file) = &row.reset {
            let _ = std::fs::remove_file(file);
        }
        let Some(theirs) = stdio_calls_per_second(bin, args, env, setup, call, row.calls).await
        else {
            println!("{}: reference run failed", row.label);
            return;
        };
        theirs_rates.push(theirs.per_second);
        let ratio = ours.per_second / theirs.per_second;
        ratios.push(ratio);
        println!(
            "round {round}  {}: mcp-server {ours}, reference {theirs} ({ratio:.1}x)",
            row.label
        );
    }
    if ratios.is_empty() {
        println!(
            "median  {}: mcp-server {:.0} calls/s",
            row.label,
            median(ours_rates)
        );
    } else {
        println!(
            "median  {}: mcp-server {:.0} calls/s, reference {:.0} calls/s, ratio {:.1}x",
            row.label,
            median(ours_rates),
            median(theirs_rates),
            median(ratios)
        );
    }
}

async fn stdio_section(server: &Path) {
    let scratch = std::env::temp_dir().join(format!("mcp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let scratch = scratch.canonicalize().expect("canonical");
    let root = scratch.join("root");
    std::fs::create_dir_all(&root).expect("bench root");
    // Pipelined calls measure the transport, not the per-key budget.
    let config_file = scratch.join("bench.toml");
    std::fs::write(
        &config_file,
        "[limits]\nrate_per_second = 100000000\nrate_burst = 100000000\n",
    )
    .expect("bench config");
    let ours_args = vec![
        "--stdio".to_owned(),
        "--config".to_owned(),
        config_file.display().to_string(),
        "--root".to_owned(),
        root.display().to_string(),
    ];
    let reference = reference_root();
    let bin = |name: &str| reference.as_ref().map(|dir| dir.join(name));
    let memory_file = scratch.join("memory.jsonl");
    let memory_env = vec![(
        "MEMORY_FILE_PATH".to_owned(),
        memory_file.display().to_string(),
    )];
    println!("\n## MCP tools/call over stdio, pipelined, {ROUNDS} interleaved rounds");

    let small = json!({"entities": [
        {"name": "Ada", "entityType": "person", "observations": ["writes Rust"]},
        {"name": "Acme", "entityType": "company", "observations": ["makes tools"]}]});
    let open_small = json!({"names": ["Ada"]});
    let (large_entities, large_relations, open_large) = large_graph();
    for (label, setup, open, calls) in [
        (
            "open_nodes, 2-entity graph",
            vec![("create_entities", small)],
            open_small,
            PIPELINED_CALLS,
        ),
        (
            "open_nodes, 1,000-entity graph",
            vec![
                ("create_entities", large_entities),
                ("create_relations", large_relations),
            ],
            open_large,
            PIPELINED_CALLS_LARGE,
        ),
    ] {
        let call = |prefix: &str, name: &str, arguments: &Value| json!({"name": format!("{prefix}{name}"), "arguments": arguments});
        let ours_setup = setup
            .iter()
            .map(|(name, arguments)| call("context_", name, arguments))
            .collect();
        let theirs_setup = setup
            .iter()
            .map(|(name, arguments)| call("", name, arguments))
            .collect();
        run_stdio_row(
            server,
            StdioRow {
                label,
                ours: (
                    ours_args.clone(),
                    ours_setup,
                    call("context_", "open_nodes", &open),
                ),
                theirs: bin("mcp-server-memory").map(|bin| {
                    (
                        bin,
                        Vec::new(),
                        memory_env.clone(),
                        theirs_setup,
                        call("", "open_nodes", &open),
                    )
                }),
                calls,
                reset: Some(memory_file.clone()),
            },
        )
        .await;
    }

    let file = root.join("notes.md");
    std::fs::write(
        &file,
        "# Notes\n\n".to_owned() + &"a line of text\n".repeat(64),
    )
    .expect("bench file");
    let path = file.display().to_string();
    run_stdio_row(
        server,
        StdioRow {
            label: "read 1 KB file",
            ours: (
                ours_args.clone(),
                Vec::new(),
                json!({"name": "files_read", "arguments": {"path": path}}),
            ),
            theirs: bin("mcp-server-filesystem").map(|bin| {
                (
                    bin,
                    vec![root.display().to_string()],
                    Vec::new(),
                    Vec::new(),
                    json!({"name": "read_text_file", "arguments": {"path": path}}),
                )
            }),
            calls: PIPELINED_CALLS,
            reset: None,
        },
    )
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Spawn to first answered `/health`, and RSS after a second of idling.
async fn cold_start_and_idle_rss(server: &Path) -> (Duration, u64) {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    // An empty root of its own: the default root is the working directory, and watching a
    // checkout with its build output took ten times as long as starting everything else.
    let root = std::env::temp_dir().join(format!("mcp-bench-start-{}", std::process::id()));
    std::fs::create_dir_all(&root).expect("startup root");
    let started = Instant::now();
    let mut child = Command::new(server)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--root")
        .arg(&root)
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
    let _ = std::fs::remove_dir_all(&root);
    (cold, rss_kb)
}

async fn startup_section(server: &Path) {
    println!("\n## Cold start and idle RSS (mcp-server --listen, in-memory), {ROUNDS} runs");
    let (mut colds, mut rss) = (Vec::new(), Vec::new());
    for run in 1..=ROUNDS {
        let (cold, rss_kb) = cold_start_and_idle_rss(server).await;
        println!(
            "run {run}  spawn to first answered /health {}, idle RSS after 1 s {:.1} MiB",
            ms(cold),
            rss_kb as f64 / 1024.0
        );
        colds.push(cold.as_secs_f64() * 1000.0);
        rss.push(rss_kb as f64 / 1024.0);
    }
    println!(
        "median  spawn to first answered /health {:.2} ms, idle RSS {:.1} MiB",
        median(colds),
        median(rss)
    );
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--list") {
        return;
    }
    let sections: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let wanted = |name: &str| sections.is_empty() || sections.contains(&name);
    let server = PathBuf::from(env!("CARGO_BIN_EXE_mcp-server"));
    if wanted("rest") {
        rest_section().await;
    }
    if wanted("stdio") {
        stdio_section(&server).await;
    }
    if wanted("startup") {
        startup_section(&server).await;
    }
}
