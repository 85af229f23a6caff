//! Soak: a bounded mixed workload against the real `mcp-server` binary on real backends
//! (memory on Redis, files with PostgreSQL versions and audit and Redis locks, context on
//! Neo4j with the default hashing embedder), from concurrent REST, WebSocket and MCP
//! Streamable HTTP clients on loopback. Every interval it records requests, expected and
//! unexpected errors, p50/p99 latency and the server's RSS (`VmRSS`); it fails when unexpected
//! errors exceed 0.1% of requests, when RSS at the end is 10% or more above RSS after the
//! warm-up (the first 20% of the run, at least 20 s), or when the server dies.
//!
//! It is a bench target (harness = false) so that cargo builds the `mcp-server` binary with
//! it and hands over its path: `cargo bench -p mcp-server --bench soak` runs the 10-minute
//! version on a release build; `./test` runs `MCP_SOAK_SECS=60 cargo test -p mcp-server
//! --all-features --bench soak`, which reuses the debug binary the test step built.
//! Settings: `MCP_SOAK_SECS` (default 600), `MCP_SOAK_CLIENTS` (default 16, at least 4),
//! `MCP_SOAK_INTERVAL_SECS` (default 10, 5 for runs under five minutes), `MCP_SOAK_ONLY`
//! (comma-separated subset of `memory,files,context,ws,mcp`, to find which part of the
//! workload a growth comes from; default everything), `MCP_SOAK_ABANDON_EVERY` (one MCP
//! session in N ends without `DELETE`, 0 for none; default 64). Needs
//! `MCP_TEST_REDIS_URL`, `MCP_TEST_POSTGRES_URL`, `MCP_TEST_NEO4J_URL` (skips without them,
//! fails under CI=true). Results: `target/soak/soak-<secs>s.{json,md}`.

mod mcp;
mod pool;
mod report;
mod rest;
mod server;
mod stats;
mod ws;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mcp_backends::testing::server_url;
use report::{ClientCounts, Report, Row};
use server::{load_average, Backends, Server};
use stats::{Recorder, Window};
use tokio::task::JoinSet;

/// Unexpected errors allowed per request.
const MAX_UNEXPECTED_RATE: f64 = 0.001;
/// RSS growth after the warm-up that fails the run.
const MAX_RSS_GROWTH: f64 = 0.10;
/// Upper bound of loop iterations per client, besides the clock.
const MAX_STEPS_PER_CLIENT: u64 = 10_000_000;

struct Settings {
    seconds: u64,
    clients: usize,
    interval: u64,
    warmup: u64,
    /// REST services to call (all when empty) and whether WebSocket and MCP clients run.
    only: Vec<String>,
    /// One MCP session in this many is abandoned without `DELETE` (0: none).
    abandon_every: u64,
}

/// The parts `MCP_SOAK_ONLY` may name.
const PARTS: [&str; 5] = ["memory", "files", "context", "ws", "mcp"];

impl Settings {
    fn from_env() -> Result<Settings, String> {
        let number = |name: &str, default: u64| -> Result<u64, String> {
            match std::env::var(name) {
                Ok(text) => text
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name}={text}: expected a whole number")),
                Err(_) => Ok(default),
            }
        };
        let seconds = number("MCP_SOAK_SECS", 600)?;
        if !(30..=24 * 3600).contains(&seconds) {
            return Err(format!("MCP_SOAK_SECS={seconds}: expected 30 to 86400"));
        }
        let clients = number("MCP_SOAK_CLIENTS", 16)?;
        if !(4..=256).contains(&clients) {
            return Err(format!("MCP_SOAK_CLIENTS={clients}: expected 4 to 256"));
        }
        let interval = number("MCP_SOAK_INTERVAL_SECS", if seconds < 300 { 5 } else { 10 })?;
        if interval == 0 || interval * 4 > seconds {
            return Err(format!(
                "MCP_SOAK_INTERVAL_SECS={interval}: expected 1 to a quarter of the run"
            ));
        }
        // The warm-up ends on an interval boundary: 20% of the run, at least 20 s.
        let warmup = (seconds / 5).max(20).div_ceil(interval) * interval;
        if warmup + interval > seconds {
            return Err(format!(
                "{seconds} s leaves no interval after a {warmup} s warm-up"
            ));
        }
        let abandon_every = number("MCP_SOAK_ABANDON_EVERY", 64)?;
        let only: Vec<String> = std::env::var("MCP_SOAK_ONLY")
            .unwrap_or_default()
            .split(',')
            .map(|part| part.trim().to_owned())
            .filter(|part| !part.is_empty())
            .collect();
        if let Some(unknown) = only.iter().find(|part| !PARTS.contains(&part.as_str())) {
            return Err(format!(
                "MCP_SOAK_ONLY: unknown part `{unknown}` (expected {})",
                PARTS.join(", ")
            ));
        }
        Ok(Settings {
            seconds,
            clients: clients as usize,
            interval,
            warmup,
            only,
            abandon_every,
        })
    }

    fn runs(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == part)
    }

    /// REST services the REST clients call (all when empty).
    fn rest_services(&self) -> Vec<String> {
        let services = ["memory", "files", "context"];
        self.only
            .iter()
            .filter(|part| services.contains(&part.as_str()))
            .cloned()
            .collect()
    }

    /// REST, WebSocket and MCP client counts: one MCP client, an eighth WebSocket, the rest
    /// REST (parts left out by `MCP_SOAK_ONLY` get none).
    fn counts(&self) -> ClientCounts {
        let ws = if self.runs("ws") {
            (self.clients / 8).max(1)
        } else {
            0
        };
        let mcp = usize::from(self.runs("mcp"));
        let rest_runs = self.only.is_empty() || !self.rest_services().is_empty();
        ClientCounts {
            rest: if rest_runs { self.clients - ws - 1 } else { 0 },
            ws,
            mcp,
        }
    }
}

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("soak: {err}");
            return ExitCode::FAILURE;
        }
    };
    let (Some(redis), Some(postgres), Some(neo4j)) = (
        server_url("MCP_TEST_REDIS_URL"),
        server_url("MCP_TEST_POSTGRES_URL"),
        server_url("MCP_TEST_NEO4J_URL"),
    ) else {
        eprintln!("soak: skipped, it needs Redis, PostgreSQL and Neo4j");
        return ExitCode::SUCCESS;
    };
    let backends = Backends {
        redis,
        postgres,
        neo4j,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("soak: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&settings, &backends)) {
        Ok(report) if report.failures.is_empty() => ExitCode::SUCCESS,
        Ok(report) => {
            eprintln!("soak: FAILED: {}", report.failures.join("; "));
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("soak: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `target/soak`, next to the `tmp` directory cargo gives benches.
fn output_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("soak")
}

async fn run(settings: &Settings, backends: &Backends) -> Result<Report, String> {
    let dir = output_dir();
    let root = dir.join(format!("root-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|err| format!("creating {}: {err}", root.display()))?;
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_mcp-server"));
    let load_before = load_average();
    let mut server = Server::start(&binary, backends, &root, &dir).await?;
    let result = drive(settings, &mut server).await;
    let server_exit = match server.exited() {
        Some(status) => status,
        None => server.stop().await,
    };
    let _ = std::fs::remove_dir_all(&root);
    let (intervals, ops, samples, pushes, died) = result?;
    let mut report = summarize(settings, intervals, ops, samples);
    report.binary = binary.display().to_string();
    report.pushes = pushes;
    report.load_before = load_before;
    report.load_after = load_average();
    report.server_exit = server_exit;
    if let Some(died) = died {
        report
            .failures
            .push(format!("the server {died} during the run"));
    }
    println!("{}", report.markdown());
    let path = report.write(&dir)?;
    println!("soak: results in {path}");
    Ok(report)
}

type Driven = (
    Vec<(Window, Row)>,
    Vec<stats::OpSummary>,
    Vec<String>,
    u64,
    Option<String>,
);

/// Seeds the data, runs the clients and samples every interval until the end or the server's
/// death.
async fn drive(settings: &Settings, server: &mut Server) -> Result<Driven, String> {
    let recorder = Arc::new(Recorder::default());
    let rest = rest::Rest::new(&server.base, recorder.clone())?;
    rest::seed(&rest).await?;
    let counts = settings.counts();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = JoinSet::new();
    let services = settings.rest_services();
    for id in 0..counts.rest {
        let client = rest::RestClient::new(rest.clone(), id).await?;
        let stop = stop.clone();
        let services = services.clone();
        clients.spawn(async move {
            client.run(&services, stop, MAX_STEPS_PER_CLIENT).await;
            0
        });
    }
    let ws_url = format!("{}/ws/mcp", server.base.replacen("http://", "ws://", 1));
    for i in 0..counts.ws {
        let client = ws::WsClient::new(&ws_url, counts.rest + i, i == 0, recorder.clone());
        clients.spawn(client.run(stop.clone(), MAX_STEPS_PER_CLIENT));
    }
    let abandon_every = settings.abandon_every;
    for i in 0..counts.mcp {
        let mcp_client = mcp::McpClient::new(
            &format!("{}/mcp", server.base),
            counts.rest + counts.ws + i,
            recorder.clone(),
        )?;
        let mcp_stop = stop.clone();
        clients.spawn(async move {
            mcp_client
                .run(mcp_stop, MAX_STEPS_PER_CLIENT, abandon_every)
                .await;
            0
        });
    }
    println!(
        "soak: {} s against {} ({} REST, {} WebSocket, {} MCP clients), warm-up {} s, load average {:.2}",
        settings.seconds,
        server.base,
        counts.rest,
        counts.ws,
        counts.mcp,
        settings.warmup,
        load_average()
    );
    println!("{}", report::header());
    recorder.take_window();
    let started = tokio::time::Instant::now();
    let mut intervals = Vec::new();
    let mut died = None;
    for n in 1..=settings.seconds / settings.interval {
        let end = n * settings.interval;
        tokio::time::sleep_until(started + Duration::from_secs(end)).await;
        let window = recorder.take_window();
        let rss = server.rss_kib();
        let row = Row::new(
            &window,
            settings.interval,
            end,
            rss.unwrap_or(0),
            load_average(),
        );
        println!("{}", report::line(&row));
        intervals.push((window, row));
        if let Some(status) = server.exited() {
            died = Some(status);
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut pushes = 0;
    while let Some(joined) = clients.join_next().await {
        pushes += joined.map_err(|err| format!("a client task failed: {err}"))?;
    }
    let (ops, samples) = recorder.summary();
    Ok((intervals, ops, samples, pushes, died))
}

/// Rows, per-minute rows, totals, RSS growth and the verdict.
fn summarize(
    settings: &Settings,
    intervals: Vec<(Window, Row)>,
    ops: Vec<stats::OpSummary>,
    samples: Vec<String>,
) -> Report {
    let mut total = Window::default();
    let mut minutes = Vec::new();
    let mut minute = Window::default();
    let per_minute = settings.seconds >= 120 && 60 % settings.interval == 0;
    for (window, row) in &intervals {
        total.merge(window);
        if per_minute {
            minute.merge(window);
            if row.end_s % 60 == 0 {
                let merged = std::mem::take(&mut minute).sorted();
                minutes.push(Row::new(&merged, 60, row.end_s, row.rss_kib, row.load1));
            }
        }
    }
    let rows: Vec<Row> = intervals.into_iter().map(|(_, row)| row).collect();
    let rss_warm = rows
        .iter()
        .find(|row| row.end_s >= settings.warmup)
        .map_or(0, |row| row.rss_kib);
    let rss_last = rows.last().map_or(0, |row| row.rss_kib);
    let rss_max = rows.iter().map(|row| row.rss_kib).max().unwrap_or(0);
    let rss_growth = if rss_warm == 0 {
        0.0
    } else {
        rss_last as f64 / rss_warm as f64 - 1.0
    };
    let unexpected_rate = report::rate(total.unexpected, total.requests);
    let mut failures = Vec::new();
    if total.requests == 0 {
        failures.push("no request was answered".to_owned());
    }
    if unexpected_rate > MAX_UNEXPECTED_RATE {
        failures.push(format!(
            "unexpected errors {:.3}% > {:.1}%",
            unexpected_rate * 100.0,
            MAX_UNEXPECTED_RATE * 100.0
        ));
    }
    if rss_warm == 0 || rss_last == 0 {
        failures.push("the server's RSS could not be read".to_owned());
    } else if rss_growth >= MAX_RSS_GROWTH {
        failures.push(format!(
            "RSS grew {:.1}% after the warm-up (>= {:.0}%)",
            rss_growth * 100.0,
            MAX_RSS_GROWTH * 100.0
        ));
    }
    Report {
        command: command(settings),
        seconds: settings.seconds,
        clients: settings.counts(),
        interval_s: settings.interval,
        warmup_s: settings.warmup,
        binary: String::new(),
        intervals: rows,
        minutes,
        ops,
        unexpected_samples: samples,
        requests: total.requests,
        expected: total.expected,
        unexpected: total.unexpected,
        unexpected_rate,
        rss_warm_kib: rss_warm,
        rss_last_kib: rss_last,
        rss_max_kib: rss_max,
        rss_growth,
        pushes: 0,
        load_before: 0.0,
        load_after: 0.0,
        server_exit: String::new(),
        failures,
    }
}

/// How to run this again (the release bench, with the settings that differ from defaults).
fn command(settings: &Settings) -> String {
    let mut env = Vec::new();
    if settings.seconds != 600 {
        env.push(format!("MCP_SOAK_SECS={}", settings.seconds));
    }
    if settings.clients != 16 {
        env.push(format!("MCP_SOAK_CLIENTS={}", settings.clients));
    }
    if !settings.only.is_empty() {
        env.push(format!("MCP_SOAK_ONLY={}", settings.only.join(",")));
    }
    if settings.abandon_every != 64 {
        env.push(format!("MCP_SOAK_ABANDON_EVERY={}", settings.abandon_every));
    }
    let profile = if cfg!(debug_assertions) {
        "cargo test -p mcp-server --all-features --bench soak"
    } else {
        "cargo bench -p mcp-server --bench soak"
    };
    env.push(profile.to_owned());
    env.join(" ")
}
