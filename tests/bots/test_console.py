"""The console chat as a user scripts it: piped stdin, the offline demo model, real PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from collections.abc import Callable
from typing import NamedTuple

import pytest

from bots.console import Console
from core.conversations.service import ConversationService
from core.conversations.wording import SORRY
from tests import ROOT
from tests.bugs import BUG, break_verb, internal_errors
from tests.conftest import FakeWebhook
from tests.fakes.openai_server import FakeOpenAI


class Run(NamedTuple):
    returncode: int | None
    stdout: str
    stderr: str


async def console(
    pg_url: str, thread: str, script: str | bytes, *args: str, cwd: str = str(ROOT), **env: str
) -> Run:
    """Run the console as a child; async so the fake model in this process can answer it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "BACKTRACK_", "TAVILY_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots", "console", "--thread", thread, *args,
        env={**clean, "DATABASE_URL": pg_url, **env}, cwd=cwd,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(script if isinstance(script, bytes) else script.encode()), 120)
    return Run(proc.returncode, out.decode(), err.decode())


async def test_edit_retry_and_branch_in_the_offline_demo(pg_url: str, unique: Callable[[str], str]) -> None:
    script = ("What is the capital of France?\nWhat is its population?\n"
              "/edit 1 What is the capital of Japan?\n/branch\n/branch 1\n/history\n")
    run = await console(pg_url, unique("versions"), script, "--json")
    out = [json.loads(line)["output"].splitlines() for line in run.stdout.splitlines()]
    edited, listed, switched, history = out[2:]
    assert edited[0] == "The capital of Japan is Tokyo."  # the edit forgot France: a new version of turn 1
    assert edited[-1].startswith("(Version 2 of 2 of turn 1;")
    assert listed[0] == "Turn 1 has 2 versions (/branch N switches):"
    assert listed[1].startswith("  \u20391/2\u203a What is the capital of France?")
    assert listed[2].startswith("* \u20392/2\u203a What is the capital of Japan?")
    assert switched[0].startswith("Switched to version 1 of 2 of turn 1")
    assert history[0].startswith("1. What is the capital of France?") and history[0].endswith("\u20391/2\u203a")
    assert history[1].startswith("2. What is its population?")  # back on the branch that went on


async def test_context_survives_between_runs_and_threads_are_separate(pg_url: str, unique: Callable[[str], str]) -> None:
    thread = unique("days")
    first = await console(pg_url, thread, "What is the capital of Japan?\n")
    assert first.stdout.startswith("The capital of Japan is Tokyo.")
    later = (await console(pg_url, thread, "What is its population?\n/threads\n")).stdout.splitlines()
    assert later[0].startswith("Tokyo has a population")
    assert any(line.startswith(f"* {thread}: 2 turns") for line in later)
    other = (await console(pg_url, unique("other"), "What is its population?\n")).stdout
    assert other.startswith("I am the offline demo model")  # no "its" to resolve in a new thread


async def test_commands_and_bad_input_get_clear_answers(
    pg_url: str, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    script = "/history\n/rewind 1\nhello\n/rewind 0\n/rewind 5\n/history lots\n/bogus\n\x00\x01\n/new second\n/history\n/quit\nnever read\n"
    result = await console(pg_url, unique("cmd"), script, OPENAI_BASE_URL=fake_llm.url, OPENAI_API_KEY="k")
    assert result.returncode == 0
    out = result.stdout.splitlines()
    assert out[0].startswith("There is no conversation console:cmd-")
    assert out[1].startswith("There is no conversation console:cmd-")
    assert out[9].startswith("There is no conversation console:second")
    assert out[2:9] == [
        "heard: hello",
        "Rewind takes a number of turns of at least 1",
        "Cannot rewind 5 turns: this conversation has 1 on its current branch",
        "/history takes a number of turns to show, e.g. /history 10",
        "Unknown command /bogus; /help lists the commands",
        "The message is empty",
        "New conversation: second",
    ]
    assert len(out) == 10
    assert "never read" not in str(fake_llm.requests)


async def test_approve_reject_and_the_audit_view(
    pg_url: str, fake_llm: FakeOpenAI, fake_webhook: FakeWebhook, unique: Callable[[str], str]
) -> None:
    from tests.fakes.openai_server import Reply, ToolCall

    fake_llm.queue(Reply("heard: one"), ToolCall("post_to_webhook", {"message": "ship it"}), Reply("Posted."),
                   ToolCall("post_to_webhook", {"message": "spam"}), Reply("Not posted."))
    script = "one\npost ship it\nhello?\n/approve\npost spam\n/reject\n/rewind 1\n/rewind 1\nthree\n/history --all\n/approve\n"
    result = await console(pg_url, unique("hitl"), script, OPENAI_BASE_URL=fake_llm.url, OPENAI_API_KEY="k",
                           BACKTRACK_WEBHOOK_URL=fake_webhook.url)
    out = result.stdout.splitlines()
    assert out[0] == "heard: one"
    assert out[1] == 'The assistant wants to run `post_to_webhook` with {"message": "ship it"}. Approve or reject? (/approve or /reject)'
    assert out[2].endswith("That request is still waiting for a decision: approve or reject it first, then ask again.")
    assert out[3] == "Posted."
    assert out[4].startswith("The assistant wants to run `post_to_webhook` with {\"message\": \"spam\"}")
    assert out[5] == "Not posted."
    assert [p["text"] for p in fake_webhook.posts] == ["ship it"]
    shown = out[out.index("Every turn on every branch (* = live branch):"):]
    audit = [line for line in shown if not line.startswith("    steps: ")]
    steps = [line for line in shown if line.startswith("    steps: ")]
    assert steps and all("agent: post_to_webhook" in line for line in steps)  # the two tool turns
    assert [line[:1] for line in audit[1:5]] == ["*", " ", " ", "*"]
    assert "1. one" in audit[1] and "2. post ship it" in audit[2] and "3. post spam" in audit[3]
    assert "2. three" in audit[4] and "[after turn 1]" not in audit[4]
    assert audit[5].startswith("Rewound by console at ") and audit[5].endswith("from turn 3 to turn 2")
    assert audit[6].endswith("from turn 2 to turn 1")
    assert out[-1] == "Nothing here is waiting for approval."


async def test_an_unexpected_failure_is_logged_counted_and_answered_with_the_apology(
    service: ConversationService, unique: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = io.StringIO()
    chat = Console(service, unique("bug"), out)
    before = internal_errors()
    break_verb(monkeypatch, service, "ask")
    assert await chat.handle("crash, please\n") is True, "a bug must not end the session"
    break_verb(monkeypatch, service, "run")
    assert await chat.handle("/history\n") is True
    assert out.getvalue().splitlines() == [SORRY, SORRY] and BUG not in out.getvalue()
    assert internal_errors() == before + 2
    assert len([r for r in caplog.records if r.exc_info]) == 2
