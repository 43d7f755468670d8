"""MCP tools end to end: a real FastMCP server as a subprocess (stdio) and over streamable
HTTP, the real langchain-mcp-adapters client, the fake OpenAI server deciding the calls.

The server's ``create_ticket`` appends a line to a file: the side effect whose count a user
would notice. A replay must leave it at one line; a fresh repeat must ask first.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.conversations.service import ConversationService
from core.errors import NotPermitted
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings
from core.types import Command
from tests import ROOT
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.processes import BacktrackProcess, free_port

TICKET = {"title": "Printer out of toner"}


def _stdio(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": ["-m", "tests.fakes.mcp_server"], "cwd": str(ROOT),
            "env": {"TICKETS_FILE": str(tmp_path / "tickets.txt"), "MCP_EXTRA_FILE": str(tmp_path / "extra")},
            "enabled": True, **extra}


def _config(tmp_path: Path, servers: dict[str, Any]) -> str:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return str(path)


@pytest.fixture
async def mcp(make_settings: Callable[..., Settings], tmp_path: Path) -> AsyncIterator[ConversationService]:
    settings = make_settings(BACKTRACK_MCP_CONFIG=_config(tmp_path, {"tickets": _stdio(tmp_path)}),
                             BACKTRACK_MCP_TIMEOUT="5")
    async with open_service(settings) as service:
        yield service


def _tickets(tmp_path: Path) -> list[str]:
    path = tmp_path / "tickets.txt"
    return path.read_text().splitlines() if path.exists() else []


def _tool_results(fake_llm: FakeOpenAI) -> list[str]:
    """What the tools returned, as the model was last sent it."""
    return [str(m["content"]) for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]


def _offered(fake_llm: FakeOpenAI) -> set[str]:
    return {t["function"]["name"] for t in fake_llm.requests[-1].get("tools", [])}


async def test_read_only_runs_a_writer_asks_and_a_replay_reuses_its_result(
    mcp: ConversationService, fake_llm: FakeOpenAI, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("mcp"))
    fake_llm.queue(ToolCall("lookup_ticket", {"number": 7}), Reply("Ticket 7 is about toner."))
    answer = await mcp.ask(key, "what is ticket 7?", user="ada")
    assert answer.text == "Ticket 7 is about toner." and answer.approval is None  # read-only: auto
    assert "out of toner (open)" in _tool_results(fake_llm)[-1]
    assert {"lookup_ticket", "create_ticket", "web_search"} <= _offered(fake_llm)

    fake_llm.queue(ToolCall("create_ticket", TICKET), Reply("Created it."))
    paused = await mcp.ask(key, "open a ticket for the printer", user="ada")
    assert paused.approval is not None and paused.approval.tool == "create_ticket"
    assert "It runs on the MCP server tickets." in paused.text and _tickets(tmp_path) == []
    done = await mcp.resolve(key, paused.approval.id, True, user="ada")
    assert done.text == "Created it." and _tickets(tmp_path) == [TICKET["title"]]

    fake_llm.queue(ToolCall("create_ticket", TICKET), Reply("Created it again?"))
    assert done.turn is not None
    replayed = await mcp.replay(key, done.turn.checkpoint_id, user="ada")
    assert _tickets(tmp_path) == [TICKET["title"]]  # not called again
    assert "was not called again" in _tool_results(fake_llm)[-1]
    assert "recorded result of create_ticket (tickets) was used" in replayed.text
    calls = [(c.server, c.tool, c.policy, c.approved_by, c.reused_from is not None)
             for c in reversed(await mcp.viewer.tool_calls(key))]  # what the viewer lists
    assert calls == [("tickets", "lookup_ticket", "auto", None, False),
                     ("tickets", "create_ticket", "ask", "ada", False),
                     ("tickets", "create_ticket", "ask", None, True)]

    await mcp.rewind(key, 1, user="ada")  # a rewind never calls a tool
    fake_llm.queue(ToolCall("create_ticket", TICKET), Reply("Done."))
    again = await mcp.ask(key, "open that ticket once more", user="ada")  # a fresh repeat: asks first
    assert again.approval is not None and "This will call create_ticket again" in again.text
    await mcp.resolve(key, again.approval.id, False, user="ada")
    assert _tickets(tmp_path) == [TICKET["title"]]


async def test_deny_hides_a_tool_and_tools_lists_and_changes_the_place(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    servers = {"tickets": _stdio(tmp_path, policy={"create_ticket": "deny"}),
               "broken": {"command": str(tmp_path / "no-such-server")}}
    settings = make_settings(BACKTRACK_MCP_CONFIG=_config(tmp_path, servers), BACKTRACK_ADMINS="UADMIN")
    async with open_service(settings) as service:  # a server that cannot start is no crash
        key = ThreadKey.slack("T" + unique("").replace("-", "").upper(), "C1", "1700000000.000100")  # its own place
        fake_llm.queue(Reply("I cannot create tickets here."))
        await service.ask(key, "open a ticket")
        assert "create_ticket" not in _offered(fake_llm) and "lookup_ticket" in _offered(fake_llm)

        listing = await service.run(key, Command("tools"), "ada")
        assert "This place uses: tickets." in listing
        assert "* tickets: lookup_ticket (auto), create_ticket (deny), slow (ask), explode (ask)" in listing
        assert "  broken: cannot be reached now (" in listing

        with pytest.raises(NotPermitted):
            await service.run(key, Command("tools", "remove tickets"), "ada")
        removed = await service.run(key, Command("tools", "remove tickets"), "UADMIN")
        assert "This place uses: no MCP server." in removed
        fake_llm.queue(Reply("No tools."))
        await service.ask(key, "look up ticket 7")
        assert "lookup_ticket" not in _offered(fake_llm)  # from the next message on
        place = key.scopes[0]  # the API sets it too (the operator's token): a list of names
        assert (await service.change_place(place, "ops", servers=("tickets",))).servers == ("tickets",)
        other = ThreadKey.console(unique("other"))  # another place (the console) keeps the default
        assert "This place uses: tickets." in await service.run(other, Command("tools"), "ada")


async def test_a_hung_or_crashed_server_is_a_tool_error_and_the_next_call_works(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    settings = make_settings(
        BACKTRACK_MCP_CONFIG=_config(tmp_path, {"tickets": _stdio(tmp_path, default="auto", timeout=1.5)}),
        BACKTRACK_MCP_REFRESH="0",
    )
    async with open_service(settings) as service:
        key = ThreadKey.api(unique("faults"))
        fake_llm.queue(ToolCall("slow", {"seconds": 30}), Reply("The tracker did not answer."))
        assert (await service.ask(key, "wait")).text == "The tracker did not answer."
        assert "did not answer within 1.5 s" in _tool_results(fake_llm)[-1]
        fake_llm.queue(ToolCall("explode", {}), Reply("The tracker crashed."))
        assert (await service.ask(key, "crash it")).text == "The tracker crashed."
        assert "the MCP server tickets failed" in _tool_results(fake_llm)[-1]

        (tmp_path / "extra").write_text("new_tool")  # the server's tool list changes between turns
        fake_llm.queue(ToolCall("lookup_ticket", {"number": 1}), Reply("Ticket 1."))
        assert (await service.ask(key, "ticket 1?")).text == "Ticket 1."  # a fresh process answers
        assert "new_tool" in _offered(fake_llm)


@pytest.fixture
async def http_server(tmp_path: Path) -> AsyncIterator[str]:
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "TICKETS_FILE": str(tmp_path / "tickets.txt"), "MCP_TOKEN": "s3cret"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.mcp_server", "--http", str(port)],
                            cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(url) as r:
                        if r.status:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


async def test_streamable_http_with_a_token_from_the_environment(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, tmp_path: Path, http_server: str,
    unique: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKETS_TOKEN", "s3cret")
    server = {"url": http_server, "headers": {"Authorization": "Bearer ${TICKETS_TOKEN}"}, "enabled": True}
    settings = make_settings(BACKTRACK_MCP_CONFIG=_config(tmp_path, {"tickets": server}))
    assert "s3cret" not in (tmp_path / "mcp.json").read_text()
    async with open_service(settings) as service:
        key = ThreadKey.api(unique("http"))
        fake_llm.queue(ToolCall("create_ticket", TICKET), Reply("Created."))
        paused = await service.ask(key, "open a ticket")
        assert paused.approval is not None
        await service.resolve(key, paused.approval.id, True, user="ops")
        assert _tickets(tmp_path) == [TICKET["title"]]


async def test_an_approval_survives_a_sigkill_and_calls_the_tool_once(
    pg_url: str, fake_llm: FakeOpenAI, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    env = {"DATABASE_URL": pg_url, "OPENAI_BASE_URL": fake_llm.url, "OPENAI_API_KEY": "k",
           "BACKTRACK_DATA_DIR": str(tmp_path / "data"),
           "BACKTRACK_MCP_CONFIG": _config(tmp_path, {"tickets": _stdio(tmp_path)})}
    thread = unique("kill")
    first = BacktrackProcess(env, tmp_path / "first.log")
    await first.start()
    try:
        fake_llm.queue(ToolCall("create_ticket", TICKET), Reply("Created it."))
        status, body = await first.post("/api/graph", {"query": "open a ticket", "thread_id": thread})
        assert status == 200 and body["approval"]["tool"] == "create_ticket"
    finally:
        first.kill()
    second = BacktrackProcess(env, tmp_path / "second.log")
    await second.start()
    try:
        status, body = await second.post("/api/graph/resume", {"thread_id": thread, "approve": True})
        assert status == 200 and body["answer"] == "Created it."
        assert _tickets(tmp_path) == [TICKET["title"]]
        status, _ = await second.post("/api/graph/resume", {"thread_id": thread, "approve": True})
        assert status != 200 and _tickets(tmp_path) == [TICKET["title"]]  # nothing left to approve
    finally:
        second.kill()
