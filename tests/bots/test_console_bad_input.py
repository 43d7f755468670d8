"""Bad input to the console, one table: each line gets one clear sentence and changes nothing.

The script runs in one console against a conversation that already has one turn; every
bad line answers with its sentence (no traceback), and the conversation still has exactly
that turn afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.bots.test_console import console
from tests.fakes.openai_server import FakeOpenAI

# (what the user types, the start of the one line the console answers)
ROWS: list[tuple[bytes, str]] = [
    (b"\x00\x00", "The message is empty"),
    (b"\x01\x7f\x1b", "The message is empty"),
    (b"x" * 16_001, "The message is too long"),
    (b"/rewind -1", "Rewind takes a number of turns of at least 1"),
    (b"/rewind 0", "Rewind takes a number of turns of at least 1"),
    (b"/rewind 2", "Cannot rewind 2 turns: this conversation has 1 on its current branch"),
    (b"/rewind " + b"9" * 40, "/rewind takes a number of turns to go back below a million"),
    (b"/rewind lots", "/rewind takes a number of turns to go back"),
    (b"/history -3", "History takes a limit between 1 and 200"),
    (b"/history " + b"9" * 40, "/history takes a number of turns to show below a million"),
    (b"/approve", "Nothing here is waiting for approval."),
    (b"/new a\x00b", "Invalid console name"),
    (b"/bogus", "Unknown command /bogus"),
]


async def test_bad_lines_get_one_clear_sentence_and_change_nothing(
    pg_url: str, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    thread = unique("bad")
    env = {"OPENAI_BASE_URL": fake_llm.url, "OPENAI_API_KEY": "sk-never-logged"}
    first = await console(pg_url, thread, "keep me\n", **env)
    assert first.stdout.strip() == "heard: keep me", first.stderr
    script = b"".join(line + b"\n" for line, _ in ROWS) + b"/history\n"
    result = await console(pg_url, thread, script, **env)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    for (line, expected), got in zip(ROWS, out, strict=False):
        assert got.startswith(expected), f"{line[:30]!r} answered {got!r}"
    assert out[len(ROWS)].startswith("1. keep me") and len(out) == len(ROWS) + 1, out  # nothing changed
    assert "Traceback" not in result.stderr and "sk-never-logged" not in result.stderr
