"""The console as a script and a person see it: ``--json`` lines, one short log line per failure."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.bots.test_console import console
from tests.fakes.openai_server import Fail, FakeOpenAI, Reply
from tests.processes import free_port

CODE = "Here you go:\n\n```python\nprint('hi')\n```\n\nThat prints hi."


async def test_json_mode_keeps_one_line_per_input_whatever_the_answer_holds(
    pg_url: str, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    fake_llm.queue(Reply(CODE))
    script = "show me code\n\nwhat did I ask?\n/history\n/rewind 9\n/quit\n"
    result = await console(pg_url, unique("json"), script, "--json", OPENAI_BASE_URL=fake_llm.url, OPENAI_API_KEY="k")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4  # the blank line and /quit print nothing
    objects = [json.loads(line) for line in lines]
    assert objects[0] == {"input": "show me code", "output": CODE}
    assert objects[1] == {"input": "what did I ask?", "output": "heard: show me code | what did I ask?"}
    assert objects[2]["input"] == "/history" and objects[2]["output"].count("\n") >= 1
    assert objects[2]["output"].startswith("1. show me code")
    assert objects[3]["output"].startswith("Cannot rewind 9 turns")


async def test_without_json_an_answer_prints_as_it_is(
    pg_url: str, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    fake_llm.queue(Reply(CODE))
    result = await console(pg_url, unique("plain"), "show me code\n", OPENAI_BASE_URL=fake_llm.url, OPENAI_API_KEY="k")
    assert result.stdout == CODE + "\n"


async def test_a_model_failure_is_one_short_line_in_the_terminal(
    pg_url: str, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    fake_llm.queue(Fail(500))
    result = await console(pg_url, unique("fail"), "hello\n", OPENAI_BASE_URL=fake_llm.url, OPENAI_API_KEY="k",
                           BACKTRACK_LLM_MAX_RETRIES="0")
    assert result.stdout == "The assistant failed to answer; please try again.\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("backtrack: warning: turn on console:fail-")
    assert "Traceback" not in result.stderr


async def test_an_unreachable_server_is_one_short_line_and_debug_shows_the_traceback(
    pg_url: str, unique: Callable[[str], str]
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/v1"
    env = {"OPENAI_BASE_URL": nowhere, "OPENAI_API_KEY": "k", "BACKTRACK_LLM_MAX_RETRIES": "0"}
    quiet = await console(pg_url, unique("down"), "hello\n", **env)
    assert quiet.stdout == "The assistant failed to answer; please try again.\n"
    assert len(quiet.stderr.splitlines()) == 1 and "Connection error" in quiet.stderr
    loud = await console(pg_url, unique("down"), "hello\n", BACKTRACK_LOG_LEVEL="DEBUG", **env)
    assert "Traceback" in loud.stderr and "ConnectError" in loud.stderr


async def test_a_context_overflow_tells_the_user_what_helps(
    pg_url: str, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    fake_llm.context_limit = 512
    long = "word " * 150
    script = f"{long}\n{long}\n{long}\n/rewind 1\nshort\n"
    result = await console(pg_url, unique("ctx"), script, OPENAI_BASE_URL=fake_llm.url, OPENAI_API_KEY="k")
    out = result.stdout.splitlines()
    assert out[1] == out[2] and "trying again will not help" in out[1] and "/rewind" in out[1]
    assert out[-1] == "heard: short"
    logged = result.stderr.splitlines()  # at start (the fake answers /props like llama-server), then once
    assert len(logged) == 2 and all(line.startswith("backtrack: warning: ") for line in logged)
    assert "BACKTRACK_CONTEXT_TOKENS is 16000 but the model server's context is 512 tokens" in logged[0]
    assert "BACKTRACK_CONTEXT_TOKENS is 16000, the server's context is 512 tokens" in logged[1]
