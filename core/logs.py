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


def configure_logging(
    level: str, json_output: bool | None = None, *, stream: TextIO | None = None
) -> logging.Handler:
    """Send the root logger to ``stream`` (stderr): JSON unless it is a terminal, or as forced.

    Calling it again replaces the handler it installed before; other handlers are kept.
    """
    stream = sys.stderr if stream is None else stream
    if json_output is None:
        json_output = not _is_terminal(stream)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if json_output else HumanFormatter())
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
