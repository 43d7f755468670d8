"""backtrack against a real llama-server with SmolLM2-135M-Instruct: console and API, end to end.

The model answers greedily (``--temp 0``), so its answers repeat run to run; the assertions
on them are about context only (does it know the name it was told), everything else is
checked on what backtrack stored.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

from tests.bots.test_console import console
from tests.processes import BacktrackProcess
from tests_local.conftest import CONTEXT

NAME = "Zorblax"
TELL = f"My name is {NAME}. Please remember it."
ASK = "What is my name?"
TOO_LONG = "zebra " * 2600  # ~2,600 tokens: over the server's 2,048, under the 16,000-char limit


def model_env(url: str) -> dict[str, str]:
    return {"OPENAI_BASE_URL": url, "OPENAI_API_KEY": "local", "BACKTRACK_MODEL": "smollm2"}


async def test_console_follow_up_history_rewind_restart_and_overflow(
    pg_url: str, llama_server: str, unique: Callable[[str], str]
) -> None:
    thread = unique("local")
    first = await console(pg_url, thread, f"{TELL}\n{ASK}\n/history\n/rewind 1\n/history\n", "--json",
                          **model_env(llama_server))
    assert first.returncode == 0, first.stderr
    out = [json.loads(line) for line in first.stdout.splitlines()]
    assert [o["input"] for o in out] == [TELL, ASK, "/history", "/rewind 1", "/history"]
    assert out[0]["output"].strip()
    assert NAME in out[1]["output"], out[1]
    assert out[2]["output"].startswith(f"1. {TELL}") and f"2. {ASK}" in out[2]["output"]
    assert out[3]["output"].startswith("Rewound 1 turn.")
    assert out[4]["output"].startswith(f"1. {TELL}") and "2. " not in out[4]["output"]
    assert "model server's context is" in first.stderr and len(first.stderr.splitlines()) == 1

    restarted = await console(pg_url, thread, f"{ASK}\n/history\n", **model_env(llama_server))
    lines = restarted.stdout.splitlines()
    assert NAME in lines[0], restarted.stdout
    assert any(line.startswith(f"1. {TELL}") for line in lines)
    assert any(line.startswith(f"2. {ASK}") for line in lines)

    overflow = await console(pg_url, unique("big"), f"{TOO_LONG}\nhello\n", **model_env(llama_server))
    said = overflow.stdout.splitlines()
    assert "trying again will not help" in said[0] and "/rewind" in said[0], overflow.stdout
    assert said[1].strip() and "context" not in said[1]  # the conversation still works
    logged = overflow.stderr.splitlines()  # at start, from llama-server's /props; then at the refusal
    assert len(logged) == 2, overflow.stderr
    assert f"is 16000 but the model server's context is {CONTEXT} tokens" in logged[0]
    assert f"BACKTRACK_CONTEXT_TOKENS is 16000, the server's context is {CONTEXT} tokens" in logged[1]


async def test_api_follow_up_history_rewind_restart_and_overflow(
    pg_url: str, llama_server: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    thread = unique("api")
    api = BacktrackProcess({"DATABASE_URL": pg_url, **model_env(llama_server)}, tmp_path / "api.log")
    await api.start()
    try:
        status, body = await api.post("/api/graph", {"query": TELL, "thread_id": thread})
        assert status == 200 and body["answer"].strip(), body
        status, body = await api.post("/api/graph", {"query": ASK, "thread_id": thread})
        assert status == 200 and NAME in body["answer"], body
        status, body = await api.post("/api/graph/history", {"thread_id": thread})
        assert [t["question"] for t in body["turns"]] == [TELL, ASK]
        status, body = await api.post("/api/graph/rewind", {"thread_id": thread, "steps_back": 1})
        assert status == 200 and [t["question"] for t in body["turns"]] == [TELL]

        api.signal(signal.SIGTERM)
        assert await api.wait_exit() == 0
        await api.start()
        status, body = await api.post("/api/graph", {"query": ASK, "thread_id": thread})
        assert status == 200 and NAME in body["answer"], body
        status, body = await api.post("/api/graph/history", {"thread_id": thread})
        assert [t["question"] for t in body["turns"]] == [TELL, ASK]

        status, body = await api.post("/api/graph", {"query": TOO_LONG, "thread_id": unique("big")})
        assert status == 502 and body["error"]["code"] == "context_too_long", body
        assert "trying again will not help" in body["error"]["message"]
    finally:
        api.kill()
    assert f"the server's context is {CONTEXT} tokens" in (tmp_path / "api.log").read_text()


async def test_a_small_budget_refuses_a_message_that_alone_outgrows_it(
    pg_url: str, llama_server: str, unique: Callable[[str], str]
) -> None:
    """BACKTRACK_CONTEXT_TOKENS=1500, as docs/local-models.md suggests for small servers, and a
    15,014-character paste: refused with the reason, never sent to the model as an empty window."""
    paste = ("The quarterly report says revenue grew. " * 367)[:15014]
    env = {**model_env(llama_server), "BACKTRACK_CONTEXT_TOKENS": "1500"}
    result = await console(pg_url, unique("small"), f"{paste}\n{ASK}\n/history\n", "--json", **env)
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert "That message is too long for the model" in out[0]["output"], out[0]
    assert out[1]["output"].strip()  # the conversation goes on
    assert paste[:40] not in out[2]["output"] and f"1. {ASK}" in out[2]["output"]
