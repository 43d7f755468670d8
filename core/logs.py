"""Logging and tracing: JSON lines for machines, the familiar one-line format for people,
and OpenTelemetry spans for whoever collects them.

A turn sets its conversation key and turn id once, with ``log_context``; a filter on the
handler copies them onto every record logged meanwhile, by any module or library, so no
call site passes them around. The formatters write what the record holds and nothing
else: the project logs no message text, and formatting must not add any.

Traces are opt-in with OpenTelemetry's own variables (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_SERVICE_NAME``, ...): one trace per incoming
message (``span`` around its handling, or the caller's ``traceparent`` through the API),
with the turn (``log_context`` opens it), the lock wait, each model and tool call and the
delivery inside. Spans carry the conversation key and turn id, never message text.
Without the variables the API's no-op tracer costs next to nothing.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import propagate, trace

__all__ = [
    "BriefFormatter",
    "ContextFilter",
    "HumanFormatter",
    "JsonFormatter",
    "configure_logging",
    "configure_tracing",
    "conversation_var",
    "inbound",
    "log_context",
    "span",
    "turn_attributes",
    "turn_var",
]

_tracer = trace.get_tracer("backtrack")


conversation_var: ContextVar[str | None] = ContextVar("conversation", default=None)
turn_var: ContextVar[str | None] = ContextVar("turn", default=None)

HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def log_context(conversation: str, turn: str) -> Iterator[None]:
    """Tag every line logged inside (tasks started inside included) with this turn."""
    conversation_token = conversation_var.set(conversation)
    turn_token = turn_var.set(turn)
    try:
        with span("backtrack.turn"):
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


def turn_attributes(**attributes: Any) -> dict[str, Any]:
    """``attributes`` with the turn's conversation and id when in one: what every span carries."""
    tagged = {"backtrack.conversation": conversation_var.get(), "backtrack.turn_id": turn_var.get(),
              **attributes}
    return {k: v for k, v in tagged.items() if v is not None}


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A span of the current trace (``turn_attributes``)."""
    with _tracer.start_as_current_span(name, attributes=turn_attributes(**attributes)) as s:
        yield s


@contextmanager
def inbound(headers: Any, name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A server span continuing the caller's trace (W3C ``traceparent`` in ``headers``)."""
    context = propagate.extract(headers)
    with _tracer.start_as_current_span(name, context=context, kind=trace.SpanKind.SERVER,
                                       attributes=attributes) as s:
        yield s


def configure_tracing() -> bool:
    """Export spans over OTLP/HTTP when OpenTelemetry's endpoint variables are set; once per process."""
    variables = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not any(os.environ.get(v) for v in variables):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return True  # already set up (a second service in this process)
    name = os.environ.get("OTEL_SERVICE_NAME", "backtrack")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True
