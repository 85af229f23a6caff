"""The real mcp-server driven by the official MCP Python SDK over stdio and Streamable HTTP."""

import json
import os

import urllib.error
import urllib.request

import anyio
import pytest

from mcp.shared.exceptions import MCPError

from conftest import ROOT, connect, stdio_params


async def all_resource_uris(client):
    uris, cursor = [], None
    for _ in range(100):
        page = await client.list_resources(cursor=cursor, cache_mode="bypass")
        uris += [str(r.uri) for r in page.resources]
        cursor = page.next_cursor
        if cursor is None:
            break
    return uris

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = {
    "files_read", "files_read_many", "files_write", "files_edit", "files_delete", "files_move",
    "files_mkdir", "files_list", "files_tree", "files_search", "files_stat", "files_versions",
    "files_version", "files_diff", "files_restore", "files_lock", "files_unlock", "files_roots",
    "memory_store", "memory_retrieve", "memory_retrieve_many", "memory_search",
    "memory_expire", "memory_delete", "memory_ttl", "memory_stats",
    "context_add", "context_add_many", "context_get", "context_delete", "context_search",
    "context_graph", "context_relate", "context_create_entities", "context_create_relations",
    "context_add_observations", "context_delete_entities", "context_delete_relations",
    "context_delete_observations", "context_read_graph", "context_search_nodes",
    "context_open_nodes",
}


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_tools_list_holds_every_contract_tool_with_schemas(client_target):
    async with connect(client_target) as client:
        tools = (await client.list_tools()).tools
    by_name = {tool.name: tool for tool in tools}
    missing = EXPECTED_TOOLS - by_name.keys()
    assert not missing, f"missing tools: {sorted(missing)}"
    for tool in tools:
        assert tool.input_schema["type"] == "object", tool.name
        assert tool.description, tool.name
        assert tool.annotations is not None, tool.name
        assert tool.annotations.read_only_hint is not None, tool.name
    assert by_name["memory_retrieve"].annotations.read_only_hint is True
    assert by_name["memory_delete"].annotations.destructive_hint is True
    assert by_name["memory_retrieve"].output_schema["type"] == "object"


async def test_memory_round_trip(client_target):
    async with connect(client_target) as client:
        stored = await client.call_tool("memory_store", {"key": "py:k", "value": {"n": 1}})
        assert not stored.is_error, stored
        got = await client.call_tool("memory_retrieve", {"key": "py:k"})
        assert not got.is_error
        assert got.structured_content["value"] == {"n": 1}


async def test_files_round_trip(client_target):
    async with connect(client_target) as client:
        written = await client.call_tool("files_write", {"path": "py/notes.md", "content": "hello"})
        assert not written.is_error, written
        read = await client.call_tool("files_read", {"path": "py/notes.md"})
        assert read.structured_content["content"] == "hello"
        # Leaving the root is refused (a permission error: JSON-RPC error, not a result).
        with pytest.raises(MCPError) as refused:
            await client.call_tool("files_read", {"path": "../../../etc/passwd"})
        assert "outside the root" in str(refused.value)


async def test_file_resource_subscription_receives_update(client_target):
    got_update = anyio.Event()
    uri = "file://" + os.path.join(os.path.realpath(ROOT), "watched.txt")
    with open(os.path.join(ROOT, "watched.txt"), "w") as f:
        f.write("one")

    async def on_message(message):
        inner = getattr(message, "root", message)
        if getattr(inner, "method", None) == "notifications/resources/updated" and str(inner.params.uri) == uri:
            got_update.set()

    async with connect(client_target, message_handler=on_message) as client:
        assert uri in await all_resource_uris(client)
        read = await client.read_resource(uri)
        assert read.contents[0].text == "one"
        await client.subscribe_resource(uri)
        await anyio.sleep(0.05)
        written = await client.call_tool("files_write", {"path": "watched.txt", "content": "two"})
        assert not written.is_error, written
        with anyio.fail_after(10):
            await got_update.wait()


async def test_context_round_trip(client_target):
    async with connect(client_target) as client:
        added = await client.call_tool(
            "context_add", {"id": "tokio", "text": "Tokio is an asynchronous runtime for Rust."}
        )
        assert not added.is_error, added
        found = await client.call_tool("context_search", {"query": "asynchronous runtime", "limit": 1})
        assert not found.is_error, found
        assert "tokio" in json.dumps(found.structured_content)
        await client.call_tool(
            "context_create_entities",
            {"entities": [{"name": "Ada", "entity_type": "person", "observations": ["writes Rust"]}]},
        )
        graph = await client.read_resource("context://graph")
        assert "Ada" in graph.contents[0].text


async def test_bad_arguments_give_is_error(client_target):
    async with connect(client_target) as client:
        result = await client.call_tool("memory_store", {"key": 42, "value": 1})
        assert result.is_error
        assert "invalid argument" in result.content[0].text
        missing = await client.call_tool("memory_retrieve", {"key": "py:absent"})
        assert missing.is_error
        assert "not found" in missing.content[0].text


async def test_resource_subscription_receives_update(client_target):
    updates = []
    got_update = anyio.Event()

    async def on_message(message):
        method = getattr(getattr(message, "root", message), "method", None)
        if method == "notifications/resources/updated":
            updates.append(str(message.root.params.uri) if hasattr(message, "root") else str(message.params.uri))
            got_update.set()

    async with connect(client_target, message_handler=on_message) as client:
        await client.call_tool("memory_store", {"key": "py:watched", "value": 1})
        await client.subscribe_resource("memory://default/py:watched")
        assert "memory://default/py:watched" in await all_resource_uris(client)
        await client.call_tool("memory_store", {"key": "py:watched", "value": 2})
        with anyio.fail_after(10):
            await got_update.wait()
        read = await client.read_resource("memory://default/py:watched")
        assert read.contents[0].text == "2"
    assert updates == ["memory://default/py:watched"]


async def test_current_protocol_revision_negotiates():
    async with connect(stdio_params(), mode="auto") as client:
        assert client.protocol_version >= "2025-11-25"
        result = await client.call_tool("memory_stats", {})
        assert not result.is_error, result


def test_foreign_origin_is_refused(http_server):
    request = urllib.request.Request(
        http_server + "/mcp",
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode(),
        headers={
            "Origin": "https://evil.example",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 403
