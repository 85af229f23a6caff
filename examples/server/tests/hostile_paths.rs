//! The path-escape corpus (`tests/corpus/path_escapes.json`, driven by `fuzz/escapes.rs`)
//! over every transport of the real server: REST (`POST /api/mcp/files/{action}`), MCP
//! Streamable HTTP (`/mcp`) and MCP stdio (the binary). Every attempt through every files
//! action that takes a path is refused (4xx, `isError` or a JSON-RPC error), no answer carries
//! a canary from outside the root or reveals where a link points, and nothing outside the root
//! changes. The directory-for-symlink swap race runs over REST and MCP too.

mod common;
#[path = "../../../fuzz/escapes.rs"]
mod escapes;

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{mcp_rpc, TempRoot, TestServer};
use escapes::Escapes;
use mcp_server::config::{Limits, ServerConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

#[path = "../../../tests/support/directory_swap.rs"]
mod directory_swap;
use directory_swap::put_back_the_real_directory;

/// One transport's answer: whether it refused, and everything it returned as text.
struct Answer {
    refused: bool,
    text: String,
}

fn config(root: &std::path::Path) -> ServerConfig {
    ServerConfig {
        roots: vec![root.to_path_buf()],
        limits: Limits {
            rate_per_second: 1_000_000.0,
            rate_burst: 1_000_000,
            ..Limits::default()
        },
        ..ServerConfig::default()
    }
}

/// REST: refused is a 4xx.
struct Rest {
    server: TestServer,
    http: reqwest::Client,
}

impl Rest {
    async fn start(root: &std::path::Path) -> Rest {
        Rest {
            server: TestServer::start(config(root)).await,
            http: common::http_client(),
        }
    }

    async fn call(&self, action: &str, args: &Value) -> Answer {
        let response = self
            .http
            .post(self.server.url(&format!("/api/mcp/files/{action}")))
            .json(args)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let refused = if status.is_client_error() {
            true
        } else {
            assert!(status.is_success(), "{action} {args}: {status} {text}");
            let body: Value = serde_json::from_str(&text).unwrap();
            escapes::refused_in_result(action, &body)
        };
        Answer { refused, text }
    }
}

/// The answer to a `tools/call`: refused is `isError` or a JSON-RPC error.
fn tool_answer(action: &str, message: &Value) -> Answer {
    let text = message.to_string();
    let refused = if message.get("error").is_some() {
        true
    } else {
        let result = &message["result"];
        result["isError"] == true
            || escapes::refused_in_result(action, &result["structuredContent"])
    };
    Answer { refused, text }
}

/// MCP over Streamable HTTP, one session.
struct McpHttp {
    server: TestServer,
    session: String,
}

impl McpHttp {
    async fn start(root: &std::path::Path) -> McpHttp {
        let server = TestServer::start(config(root)).await;
        let mut mcp = McpHttp {
            server,
            session: String::new(),
        };
        let (session, answer) = mcp
            .post(
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "hostile", "version": "1"}}}),
            )
            .await;
        assert!(answer.unwrap()["result"]["protocolVersion"].is_string());
        mcp.session = session.expect("a session id");
        mcp.post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        mcp
    }

    async fn post(&self, message: Value) -> (Option<String>, Option<Value>) {
        let session = (!self.session.is_empty()).then_some(self.session.as_str());
        let (_, session, answer) = mcp_rpc(&self.server, None, session, message).await;
        (session, answer)
    }

    async fn call(&self, id: u64, action: &str, args: &Value) -> Answer {
        let (_, answer) = self
            .post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": format!("files_{action}"), "arguments": args}}))
            .await;
        tool_answer(action, &answer.expect("an answer"))
    }
}

/// MCP over stdio: the binary, one session.
struct Stdio_ {
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Stdio_ {
    async fn start(root: &std::path::Path) -> Stdio_ {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-server"))
            .arg("--stdio")
            .arg("--root")
            .arg(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut session = Stdio_ {
            _child: child,
            stdin,
            stdout,
        };
        let init = session
            .request(
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "hostile", "version": "1"}}}),
            )
            .await;
        assert!(init["result"]["protocolVersion"].is_string(), "{init}");
        session
            .send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        session
    }

    async fn send(&mut self, message: Value) {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
    }

    async fn request(&mut self, message: Value) -> Value {
        let id = message["id"].clone();
        self.send(message).await;
        loop {
            let line = tokio::time::timeout(Duration::from_secs(20), self.stdout.next_line())
                .await
                .expect("an answer in time")
                .unwrap()
                .expect("stdout open");
            let answer: Value = serde_json::from_str(&line).unwrap();
            if answer["id"] == id {
                return answer;
            }
        }
    }

    async fn call(&mut self, id: u64, action: &str, args: &Value) -> Answer {
        let answer = self
            .request(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": format!("files_{action}"), "arguments": args}}))
            .await;
        tool_answer(action, &answer)
    }
}

/// Runs every call of every attempt through `call`, checking each answer and the outside.
async fn run_corpus<F, Fut>(escapes: &Escapes, transport: &str, mut call: F)
where
    F: FnMut(u64, &'static str, Value) -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let before = escapes.outside_state();
    let mut made = 0u64;
    for attempt in &escapes.attempts {
        for (action, args) in escapes::calls(attempt) {
            made += 1;
            let answer = call(made, action, args).await;
            escapes.check_answer(transport, attempt, action, answer.refused, &answer.text);
        }
        assert_eq!(
            escapes.outside_state(),
            before,
            "{transport}: something outside changed after {:?}",
            attempt.path
        );
    }
    assert!(made > 500, "{transport}: only {made} calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_escape_corpus_is_refused_over_rest() {
    let base = TempRoot::new();
    let escapes = Escapes::build(&base.0);
    let rest = Rest::start(&escapes.root).await;
    run_corpus(&escapes, "REST", |_, action, args| {
        let rest = &rest;
        async move { rest.call(action, &args).await }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_escape_corpus_is_refused_over_mcp_http() {
    let base = TempRoot::new();
    let escapes = Escapes::build(&base.0);
    let mcp = McpHttp::start(&escapes.root).await;
    run_corpus(&escapes, "MCP HTTP", |id, action, args| {
        let mcp = &mcp;
        async move { mcp.call(id, action, &args).await }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_escape_corpus_is_refused_over_mcp_stdio() {
    let base = TempRoot::new();
    let escapes = Escapes::build(&base.0);
    let stdio = tokio::sync::Mutex::new(Stdio_::start(&escapes.root).await);
    run_corpus(&escapes, "MCP stdio", |id, action, args| {
        let stdio = &stdio;
        async move { stdio.lock().await.call(id, action, &args).await }
    })
    .await;
}

/// Swaps `root/work` for a symlink to `outside` and back until `stop`; returns the swaps (the
/// symlinks placed). A write that lands while `work` is missing recreates it as a directory:
/// putting the real one back moves its files over first, so the swapping never stalls.
fn swapper(
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let (work, real) = (root.join("work"), root.join("work_real"));
        let mut swaps = 0u64;
        while !stop.load(Ordering::Relaxed) {
            put_back_the_real_directory(&work, &real);
            if std::fs::rename(&work, &real).is_err() {
                std::thread::yield_now();
                continue;
            }
            if std::os::unix::fs::symlink(&outside, &work).is_ok() {
                swaps += 1;
            }
            std::thread::yield_now();
            put_back_the_real_directory(&work, &real);
            std::thread::sleep(Duration::from_micros(300));
        }
        put_back_the_real_directory(&work, &real);
        swaps
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_never_leaks_over_rest_or_mcp() {
    let base = TempRoot::new();
    let escapes = Escapes::build(&base.0);
    let outside = base.0.join("outside");
    std::fs::create_dir(escapes.root.join("work")).unwrap();
    let before = escapes.outside_state();
    let rest = Arc::new(Rest::start(&escapes.root).await);
    let mcp = Arc::new(McpHttp::start(&escapes.root).await);
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = swapper(escapes.root.clone(), outside.clone(), stop.clone());
    let mut tasks = Vec::new();
    for task in 0..4u64 {
        let (rest, mcp) = (rest.clone(), mcp.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            for i in 0..120u64 {
                let args = json!({"path": format!("work/t{task}-{i}.txt"), "content": "data"});
                let answer = if i % 2 == 0 {
                    rest.call("write", &args).await
                } else {
                    mcp.call(1000 + task * 1000 + i, "write", &args).await
                };
                if !answer.refused {
                    ok += 1;
                }
                let read = json!({"path": format!("work/t{task}-{i}.txt")});
                let answer = rest.call("read", &read).await;
                assert!(!answer.text.contains("CANARY"), "{}", answer.text);
            }
            ok
        }));
    }
    let mut ok = 0;
    for task in tasks {
        ok += task.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swaps.join().unwrap();
    assert!(swaps > 10, "the swapper must actually race ({swaps} swaps)");
    assert!(ok > 0, "some writes must succeed");
    assert_eq!(escapes.outside_state(), before, "files landed outside");
}
