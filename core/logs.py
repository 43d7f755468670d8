"""Logging setup: JSON lines for machines, the familiar one-line format for people.

A turn sets its conversation key and turn id once, with ``log_context``; a filter on the
handler copies them onto every record logged meanwhile, by any module or library, so no
call site passes them around. The formatters write what the record holds and nothing
else: the project logs no message text, and formatting must not add any.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

__all__ = [
    "BriefFormatter",
    "ContextFilter",
    "HumanFormatter",
    "JsonFormatter",
    "configure_logging",
    "conversation_var",
    "log_context",
    "turn_var",
]


conversation_var: ContextVar[str | None] = ContextVar("conversation", default=None)
turn_var: ContextVar[str | None] = ContextVar("turn", default=None)

HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def log_context(conversation: str, turn: str) -> Iterator[None]:
    """Tag every line logged inside (tasks started inside included) with this turn."""
    conversation_token = conversation_var.set(conversation)
    turn_token = turn_var.set(turn)
    try:
        yield
    finally:
        turn_var.reset(turn_token)
        conversation_var.reset(conversation_token)


class ContextFilter(logging.Filter):
    """Puts ``conversation`` and ``turn`` on every record (None outside a turn)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "conversation", None) is None:
            record.conversation = conversation_var.get()
        if getattr(record, "turn", None) is None:
            record.turn = turn_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the turn's context."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("conversation", "turn"):
            if (value := getattr(record, name, None)) is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class HumanFormatter(logging.Formatter):
    """The classic line, with ``[conversation turn]`` appended during a turn."""

    def __init__(self) -> None:
        super().__init__(HUMAN_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        conversation, turn = getattr(record, "conversation", None), getattr(record, "turn", None)
        if conversation is not None or turn is not None:
            line += f" [{conversation or '-'} {turn or '-'}]"
        return line


class BriefFormatter(logging.Formatter):
    """One short line, for a terminal that is someone's chat: ``backtrack: warning: …``.

    The traceback, and anything past the first line or 300 characters, only at DEBUG:
    a model failure must not push the conversation off the screen.
    """

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if self.verbose:
            line = f"backtrack: {record.levelname.lower()}: {message}"
            return line + (f"\n{self.formatException(record.exc_info)}" if record.exc_info else "")
        first = message.splitlines()[0] if message else ""
        if len(first) > 300:
            first = first[:299] + "…"
        return f"backtrack: {record.levelname.lower()}: {first}"


def configure_logging(
    level: str, json_output: bool | None = None, *, stream: TextIO | None = None, brief: bool = False
) -> logging.Handler:
    """Send the root logger to ``stream`` (stderr): JSON unless it is a terminal, or as forced.

    ``brief`` (the console) writes one short line per record instead, whatever the stream.
    Calling it again replaces the handler it installed before; other handlers are kept.
    """
    stream = sys.stderr if stream is None else stream
    if json_output is None:
        json_output = not _is_terminal(stream)
    handler = logging.StreamHandler(stream)
    formatter: logging.Formatter = JsonFormatter() if json_output else HumanFormatter()
    if brief:
        formatter = BriefFormatter(verbose=logging.getLevelName(level.upper()) == logging.DEBUG)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    handler.set_name("backtrack")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "backtrack"]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream is no terminal
        return False
