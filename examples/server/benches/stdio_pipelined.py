"""Pipelined MCP tools/call over stdio: mcp-server against the reference Node servers doing the
same work, plus cold start and idle RSS. The Rust bench `load.rs` does the same; this driver
needs no cargo lock (it runs an already built binary).

    python3 examples/server/benches/stdio_pipelined.py target/release/mcp-server

The Node servers come from .cache/mcp-reference (npm install @modelcontextprotocol/server-memory
@modelcontextprotocol/server-filesystem there).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

CALLS = 5000
REFERENCE = os.path.join(os.path.dirname(__file__), "../../../.cache/mcp-reference/node_modules/.bin")


def rpc(id_, method, params=None):
    message = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        message["params"] = params
    return (json.dumps(message) + "\n").encode()


def calls_per_second(command, setup, call, env=None):
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})

    def answer(expected):
        while True:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{command[0]} closed stdout")
            message = json.loads(line)
            if message.get("id") == expected:
                return message

    proc.stdin.write(rpc(0, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                           "clientInfo": {"name": "bench", "version": "1"}}))
    proc.stdin.flush()
    answer(0)
    proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    for i, params in enumerate(setup, start=1):
        proc.stdin.write(rpc(i, "tools/call", params))
        proc.stdin.flush()
        assert "result" in answer(i)
    batch = b"".join(rpc(1_000_000 + i, "tools/call", call) for i in range(CALLS))
    started = time.perf_counter()
    writer = threading.Thread(target=lambda: (proc.stdin.write(batch), proc.stdin.flush()))
    writer.start()
    done = 0
    while done < CALLS:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{command[0]} closed stdout")
        message = json.loads(line)
        if isinstance(message.get("id"), int) and message["id"] >= 1_000_000:
            assert "error" not in message and not message["result"].get("isError"), message
            done += 1
    elapsed = time.perf_counter() - started
    writer.join()
    proc.kill()
    proc.wait()
    return CALLS / elapsed


def cold_start_and_rss(server, config):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    proc = subprocess.Popen([server, "--listen", f"127.0.0.1:{port}", "--config", config],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.0002)
    cold = time.perf_counter() - started
    time.sleep(1)
    with open(f"/proc/{proc.pid}/status") as status:
        rss_kb = next(int(l.split()[1]) for l in status if l.startswith("VmRSS:"))
    proc.terminate()
    proc.wait()
    return cold, rss_kb


def main():
    server = sys.argv[1]
    scratch = tempfile.mkdtemp(prefix="mcp-bench-")
    config = os.path.join(scratch, "bench.toml")
    with open(config, "w") as f:
        # Pipelined calls measure the transport, not the per-key budget.
        f.write("[limits]\nrate_per_second = 100000000\nrate_burst = 100000000\n")
    root = os.path.join(scratch, "root")
    os.makedirs(root)
    path = os.path.join(root, "notes.md")
    with open(path, "w") as f:
        f.write("# Notes\n\n" + "a line of text\n" * 64)

    create = {"name": "context_create_entities", "arguments": {"entities": [
        {"name": "Ada", "entityType": "person", "observations": ["writes Rust"]},
        {"name": "Acme", "entityType": "company", "observations": ["makes tools"]}]}}
    open_nodes = {"name": "context_open_nodes", "arguments": {"names": ["Ada"]}}
    ours = calls_per_second([server, "--stdio", "--config", config, "--root", root], [create], open_nodes)
    ref_create = dict(create, name="create_entities")
    ref_open = dict(open_nodes, name="open_nodes")
    theirs = calls_per_second([os.path.join(REFERENCE, "mcp-server-memory")], [ref_create], ref_open,
                              env={"MEMORY_FILE_PATH": os.path.join(scratch, "memory.jsonl")})
    print(f"open_nodes: mcp-server {ours:.0f} calls/s, server-memory {theirs:.0f} calls/s ({ours / theirs:.1f}x)")

    ours = calls_per_second([server, "--stdio", "--config", config, "--root", root], [],
                            {"name": "files_read", "arguments": {"path": path}})
    theirs = calls_per_second([os.path.join(REFERENCE, "mcp-server-filesystem"), root], [],
                              {"name": "read_text_file", "arguments": {"path": path}})
    print(f"read file:  mcp-server {ours:.0f} calls/s, server-filesystem {theirs:.0f} calls/s ({ours / theirs:.1f}x)")

    cold, rss_kb = cold_start_and_rss(server, config)
    print(f"cold start to first /health: {cold * 1000:.1f} ms; idle RSS after 1 s: {rss_kb / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
