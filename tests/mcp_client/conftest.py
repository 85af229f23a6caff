"""Shared fixtures: the mcp-server binary (built by scripts/mcp-client-tests.sh) over stdio and
as an HTTP server on a free loopback port."""

import os
import socket
import subprocess
import time
import urllib.request

import tempfile

import pytest
from mcp import Client, StdioServerParameters

SERVER_BIN = os.environ.get("MCP_SERVER_BIN", "target/debug/mcp-server")


ROOT = tempfile.mkdtemp(prefix="mcp-client-tests-")


def stdio_params() -> StdioServerParameters:
    return StdioServerParameters(
        command=SERVER_BIN, args=["--stdio", "--root", ROOT], env={"RUST_LOG": "warn"}
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_server():
    """Starts `mcp-server --listen 127.0.0.1:<port>`; yields the base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [SERVER_BIN, "--listen", f"127.0.0.1:{port}", "--root", ROOT],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 20
    while True:
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            if time.time() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield base
    proc.terminate()
    assert proc.wait(timeout=10) == 0, "graceful shutdown on SIGTERM exits 0"


@pytest.fixture(params=["stdio", "http"])
def client_target(request):
    """A target for `mcp.Client`: stdio parameters or the Streamable HTTP URL."""
    if request.param == "stdio":
        return stdio_params()
    return request.getfixturevalue("http_server") + "/mcp"


def connect(target, mode="legacy", **kwargs) -> Client:
    return Client(target, mode=mode, **kwargs)
