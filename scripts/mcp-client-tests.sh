#!/usr/bin/env bash
# Drives the real mcp-server with the official MCP Python SDK (`mcp` on PyPI): builds the
# server, creates a venv under .cache/mcp-client-venv (pip install mcp pytest), runs
# tests/mcp_client with pytest. Any pytest failure fails this script, including exit 5
# ("no tests collected").
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.cache/mcp-client-venv
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
# The suite uses the 2.x client API; an older venv is upgraded.
if ! "$venv/bin/python" -c 'import importlib.metadata as m, pytest
assert int(m.version("mcp").split(".")[0]) >= 2' 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet --upgrade 'mcp>=2' pytest
fi

cargo build -p mcp-server --bin mcp-server
export MCP_SERVER_BIN="$PWD/target/debug/mcp-server"

export PYTHONDONTWRITEBYTECODE=1
status=0
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/mcp_client "$@" || status=$?
if [[ $status -eq 5 ]]; then
  echo "pytest collected no tests: counting that as a failure" >&2
  exit 1
fi
exit $status
