"""Log lines as an operator reads them: JSON in production, tagged with the turn they belong to."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from core.conversations.service import ConversationService
from core.keys import ThreadKey
from core.logs import configure_logging, log_context

Capture = Callable[..., io.StringIO]


@pytest.fixture
def capture() -> Iterator[Capture]:
    """``configure_logging`` onto a fresh stream; the root logger is restored afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)

    def configure(json_output: bool | None = None, level: str = "info") -> io.StringIO:
        stream = io.StringIO()
        configure_logging(level, json_output, stream=stream)
        return stream

    yield configure
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_json_lines_carry_the_conversation_and_turn_only_inside_a_turn(capture: Capture) -> None:
    stream = capture()  # a StringIO is no terminal: JSON
    log = logging.getLogger("backtrack.test")
    log.info("before %d", 1)
    with log_context("slack:T1:C1:1.2", "turn-1"):
        log.warning("during")
        await asyncio.create_task(_log_from_a_task())  # tasks started inside inherit it
    log.info("after")

    before, during, in_task, after = lines(stream)
    assert set(before) == {"time", "level", "logger", "message"}
    assert before["message"] == "before 1" and before["level"] == "INFO"
    assert before["logger"] == "backtrack.test" and before["time"].endswith("+00:00")
    for line in (during, in_task):
        assert line["conversation"] == "slack:T1:C1:1.2" and line["turn"] == "turn-1"
    assert during["level"] == "WARNING" and in_task["logger"] == "backtrack.task"
    assert "conversation" not in after and "turn" not in after


async def _log_from_a_task() -> None:
    logging.getLogger("backtrack.task").info("from a task")


async def test_concurrent_turns_keep_their_own_context(capture: Capture) -> None:
    stream = capture(json_output=True)

    async def turn(name: str, started: asyncio.Event, other: asyncio.Event) -> None:
        with log_context(f"api:{name}", name):
            started.set()
            await other.wait()  # the other turn runs its context meanwhile
            logging.getLogger("backtrack.turn").info("done")

    a, b = asyncio.Event(), asyncio.Event()
    await asyncio.gather(turn("a", a, b), turn("b", b, a))
    assert sorted((x["conversation"], x["turn"]) for x in lines(stream)) == [
        ("api:a", "a"), ("api:b", "b")]


def test_exceptions_are_kept_in_the_json_line(capture: Capture) -> None:
    stream = capture(json_output=True)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("backtrack.test").exception("failed")
    (line,) = lines(stream)
    assert line["message"] == "failed" and "ValueError: boom" in line["exception"]


def test_forced_human_format_is_the_classic_line_plus_the_turn(capture: Capture) -> None:
    stream = capture(json_output=False)
    log = logging.getLogger("backtrack.test")
    log.info("plain")
    with log_context("api:x", "t1"):
        log.info("tagged")
    plain, tagged = stream.getvalue().splitlines()
    assert plain.endswith(" INFO backtrack.test: plain")
    assert tagged.endswith(" INFO backtrack.test: tagged [api:x t1]")


def test_a_terminal_gets_the_human_format(capture: Capture) -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        root = logging.getLogger()
        before = list(root.handlers)
        configure_logging("info", stream=terminal)
        try:
            logging.getLogger("backtrack.test").info("on a terminal")
            text = os.read(leader, 4096).decode()
        finally:
            for handler in root.handlers[:]:
                if handler not in before:
                    root.removeHandler(handler)
            os.close(leader)
    assert "INFO backtrack.test: on a terminal" in text and not text.lstrip().startswith("{")


def test_configuring_again_replaces_the_handler(capture: Capture) -> None:
    first = capture(json_output=True)
    second = capture(json_output=True, level="warning")
    logging.getLogger("backtrack.test").warning("once")
    logging.getLogger("backtrack.test").info("filtered by level")
    assert first.getvalue() == "" and [x["message"] for x in lines(second)] == ["once"]


async def test_the_service_tags_its_turn_lines(
    capture: Capture, service: ConversationService, unique: Callable[[str], str]
) -> None:
    stream = capture(json_output=True)
    key = ThreadKey.api(unique("log"))
    await service.ask(key, "hello")
    done = [x for x in lines(stream) if x["logger"] == "core.conversations.turns" and "done in" in x["message"]]
    assert len(done) == 1
    assert done[0]["conversation"] == str(key) and done[0]["turn"] in done[0]["message"]
