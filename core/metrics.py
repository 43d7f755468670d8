"""Prometheus metrics: what a turn costs, where the time goes, and what is waiting.

Everything lives in the client's default registry, so ``render()`` also exposes the
process and Python collectors. Values that only make sense at scrape time (the pool's
connections, the queued messages) are read by collectors registered once at import;
``register_pool`` and ``register_queue`` only swap the object those collectors read, so
opening several services in one process (the tests do) never registers a name twice.
The last registration wins: a process runs one service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.errors import BacktrackError
from core.logs import turn_attributes

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import LLMResult
    from psycopg_pool import AsyncConnectionPool

__all__ = [
    "ERRORS",
    "FEEDBACK",
    "LLM_SECONDS",
    "PENDING_APPROVALS",
    "TOKENS",
    "TOOL_ERRORS",
    "TOOL_SECONDS",
    "TURNS",
    "TURN_SECONDS",
    "MetricsCallback",
    "count_error",
    "observe_turn",
    "register_pool",
    "register_queue",
    "render",
]


# A model call or a whole turn: from a cached short answer to a slow multi-tool turn.
_SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
# A tool: a clock read takes microseconds, a web search seconds.
_TOOL_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

TURNS = Counter(
    "backtrack_turns_total",
    "Turns finished, by platform and outcome (ok, or the error code that ended the turn).",
    ["platform", "outcome"],
)
TURN_SECONDS = Histogram(
    "backtrack_turn_seconds",
    "Wall time of a turn, from taking the conversation to the stored answer, any outcome.",
    ["platform"],
    buckets=_SLOW_BUCKETS,
)
LLM_SECONDS = Histogram(
    "backtrack_llm_seconds",
    "Wall time of one model call (a turn with tools makes several), any outcome.",
    ["model"],
    buckets=_SLOW_BUCKETS,
)
TOOL_SECONDS = Histogram(
    "backtrack_tool_seconds",
    "Wall time of one tool call, any outcome.",
    ["tool"],
    buckets=_TOOL_BUCKETS,
)
TOOL_ERRORS = Counter(
    "backtrack_tool_errors_total",
    "Tool calls that raised (the model is shown the error and the turn goes on).",
    ["tool"],
)
PENDING_APPROVALS = Gauge(
    "backtrack_pending_approvals",
    "Tool calls waiting for a person to approve or deny them.",
)
ERRORS = Counter(
    "backtrack_errors_total",
    "Errors by kind: the code of each failed turn, and unexpected errors caught at an "
    "adapter's outermost boundary (kind internal).",
    ["kind"],
)

FEEDBACK = Counter(
    "backtrack_feedback_total",
    "Ratings of answers stored or changed (a repeated click is not counted), by platform and value.",
    ["platform", "value"],
)

TOKENS = Counter(
    "backtrack_tokens_total",
    "Tokens the model reported, by platform, the model that ran and kind (input or output).",
    ["platform", "model", "kind"],
)


def count_error(kind: str) -> None:
    """Count an error seen outside a turn, e.g. at an adapter's outermost boundary."""
    ERRORS.labels(kind=kind).inc()


# -- read at scrape time ---------------------------------------------------------------


class _Watched:
    """What the scrape-time collectors read; replaced, never re-registered."""

    pool: AsyncConnectionPool[Any] | None = None
    queued: Callable[[], int] | None = None


def register_pool(pool: AsyncConnectionPool[Any]) -> None:
    """Report this pool's connections from now on (replacing any pool registered before)."""
    _Watched.pool = pool


def register_queue(queued: Callable[[], int]) -> None:
    """Report ``queued()`` as the number of messages waiting for a busy conversation."""
    _Watched.queued = queued


class _PoolCollector(Collector):
    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "backtrack_db_pool_connections",
            "Database pool: connections in use, idle in the pool, and requests waiting for one.",
            labels=["state"],
        )

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [self._family()]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = self._family()
        pool = _Watched.pool
        if pool is not None:
            stats = pool.get_stats()
            size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
            family.add_metric(["in_use"], max(size - idle, 0))
            family.add_metric(["idle"], idle)
            family.add_metric(["waiting"], stats.get("requests_waiting", 0))
        return [family]


class _QueueCollector(Collector):
    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "backtrack_queued_messages",
            "Messages waiting for their conversation's current turn to finish.",
        )

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [self._family()]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = self._family()
        if _Watched.queued is not None:
            family.add_metric([], _Watched.queued())
        return [family]


REGISTRY.register(_PoolCollector())
REGISTRY.register(_QueueCollector())


def render() -> tuple[bytes, str]:
    """The exposition body and its content type, for a ``/metrics`` handler."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# -- turns -----------------------------------------------------------------------------


@asynccontextmanager
async def observe_turn(platform: str) -> AsyncIterator[None]:
    """Time and count one turn; the outcome is ``ok``, the error's code, or cancelled/error."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except BacktrackError as exc:
        outcome = exc.code
        raise
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    except Exception:
        outcome = "error"
        raise
    finally:
        TURN_SECONDS.labels(platform=platform).observe(time.perf_counter() - started)
        TURNS.labels(platform=platform, outcome=outcome).inc()
        if outcome not in ("ok", "cancelled"):
            ERRORS.labels(kind=outcome).inc()


_tracer = trace.get_tracer("backtrack")


class MetricsCallback(AsyncCallbackHandler):
    """Times model and tool calls of a graph run; pass one per turn in the run's ``callbacks``.

    Runs are matched by ``run_id``; a run that never ends (its task was cancelled before
    LangChain reported it) stays in the instance, which is why it should live for one turn.
    Every graph step is a chain run: not subscribing to those keeps a turn cheap.
    """

    ignore_chain = True

    def __init__(self, model: str | None = None) -> None:
        self.model = model
        self._llm: dict[UUID, tuple[str, float]] = {}
        self._tools: dict[UUID, tuple[str, float]] = {}
        self._spans: dict[UUID, Any] = {}

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        model = self.model or (metadata or {}).get("ls_model_name") or "unknown"
        self._llm[run_id] = (str(model), time.perf_counter())
        self._open(run_id, f"chat {model}", {"gen_ai.request.model": str(model)})

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        usage: dict[str, Any] = {}
        for generation in (g for gs in response.generations for g in gs):
            usage = getattr(getattr(generation, "message", None), "usage_metadata", None) or usage
        self._end_llm(run_id, {"gen_ai.usage.input_tokens": usage.get("input_tokens", 0),
                               "gen_ai.usage.output_tokens": usage.get("output_tokens", 0)})

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end_llm(run_id, {"error.type": type(error).__name__})

    def _end_llm(self, run_id: UUID, attributes: dict[str, Any]) -> None:
        if (started := self._llm.pop(run_id, None)) is not None:
            model, at = started
            LLM_SECONDS.labels(model=model).observe(time.perf_counter() - at)
        self._close(run_id, attributes)

    def _open(self, run_id: UUID, name: str, attributes: dict[str, Any]) -> None:
        """A span per model or tool call, in the turn's trace (``core/logs.py``)."""
        self._spans[run_id] = _tracer.start_span(name, attributes=turn_attributes(**attributes))

    def _close(self, run_id: UUID, attributes: dict[str, Any]) -> None:
        if (found := self._spans.pop(run_id, None)) is not None:
            found.set_attributes(attributes)
            found.end()

    async def on_tool_start(
        self, serialized: dict[str, Any], input_str: str, *, run_id: UUID, **kwargs: Any
    ) -> None:
        name = (serialized or {}).get("name") or kwargs.get("name") or "unknown"
        self._tools[run_id] = (str(name), time.perf_counter())
        self._open(run_id, f"tool {name}", {"gen_ai.tool.name": str(name)})

    async def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end_tool(run_id)
        self._close(run_id, {})

    async def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, {"error.type": type(error).__name__})
        tool = self._end_tool(run_id)
        if tool is not None:
            TOOL_ERRORS.labels(tool=tool).inc()

    def _end_tool(self, run_id: UUID) -> str | None:
        if (started := self._tools.pop(run_id, None)) is None:
            return None
        tool, at = started
        TOOL_SECONDS.labels(tool=tool).observe(time.perf_counter() - at)
        return tool
