"""MCP tools for the agents: listed from the configured servers, governed by a policy per tool.

Tools come from ``langchain-mcp-adapters`` (over the official ``mcp`` SDK), one session per
call: a stdio server is a fresh process for each call, so one that crashed is simply
started again by the next call, and a server that is down at start is listed again later
(with backoff). Each server's list is refreshed every ``BACKTRACK_MCP_REFRESH`` seconds,
so tools added or removed on the server are picked up between turns.

Every MCP tool the model sees is wrapped (``_governed``):

- ``deny`` tools are never offered; ``ask`` tools pause for a person's approval (a
  LangGraph ``interrupt()``, durable like every approval), naming the server;
- each call and its result go to the ledger (``core/storage/tool_calls.py``) with the
  server, the tool, a hash of the arguments and who approved it;
- a tool that is not read-only never repeats silently: in a replay (or an edit) a call
  with the same arguments as an earlier one reuses the recorded result and says so; a
  fresh repeat outside a replay asks first ("this will call create_ticket again");
- a call has a timeout (``BACKTRACK_MCP_TIMEOUT``, or the server's ``timeout``); a failure
  or a timeout is a tool error the model reads and explains, never a crashed turn.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_mcp_adapters.tools import load_mcp_tools
from langgraph.types import interrupt

from core.agents.approvals import rejected
from core.agents.mcp_config import Policy, ServerConfig, policy_of
from core.records import PlaceChoice, ToolCallRecord

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import ToolMessage
    from langchain_core.runnables import Runnable
    from langgraph.prebuilt.tool_node import ToolCallRequest
    from langgraph.types import Command

__all__ = ["REUSED", "Binding", "CallLedger", "ServerTools", "Toolbox", "args_hash"]

_log = logging.getLogger(__name__)

REUSED = "(backtrack: the recorded result of the earlier identical call; {tool} was not called again.)"
"""What a replayed call returns after the recorded result (the model and the ledger see it)."""
_MAX_BACKOFF = 60.0


class CallLedger(Protocol):
    """Where calls are recorded and found (``core/storage/tool_calls.py``)."""

    async def earlier(self, key: str, server: str, tool: str, args_hash: str) -> ToolCallRecord | None: ...
    async def record(self, key: str, run_id: str, call: ToolCallRecord) -> None: ...


def args_hash(args: dict[str, Any]) -> str:
    """The same arguments, however ordered, give the same hash."""
    return hashlib.sha256(json.dumps(args, sort_keys=True, default=str).encode()).hexdigest()[:32]


@dataclass
class ServerTools:
    """One server's tools as last listed, and how listing it went."""

    config: ServerConfig
    tools: dict[str, BaseTool] = field(default_factory=dict)
    """The governed tools, by the name the model calls them by."""
    policies: dict[str, Policy] = field(default_factory=dict)
    listed_at: float | None = None
    error: str | None = None
    failures: int = 0
    retry_at: float = 0.0


class Toolbox:
    def __init__(
        self, servers: Sequence[ServerConfig], ledger: CallLedger | None, *, timeout: float,
        refresh: float, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.servers = {s.name: ServerTools(s) for s in servers}
        self._ledger = ledger
        self._timeout = timeout
        self._refresh = refresh
        self._clock = clock
        self._locks = {name: asyncio.Lock() for name in self.servers}

    @property
    def defaults(self) -> tuple[str, ...]:
        """The servers a place uses until an admin chooses (``enabled`` in the file)."""
        return tuple(n for n, s in self.servers.items() if s.config.enabled)

    def chosen(self, place: object) -> tuple[str, ...]:
        servers = place.servers if isinstance(place, PlaceChoice) else None
        return self.defaults if servers is None else tuple(s for s in servers if s in self.servers)

    async def start(self) -> None:
        """List every server once; one that fails is logged and tried again later."""
        await asyncio.gather(*(self.listed(name) for name in self.servers))

    async def offered(self, servers: Iterable[str]) -> list[BaseTool]:
        """The tools the model may call in a place using ``servers`` (deny: never offered)."""
        found: list[BaseTool] = []
        for name in servers:
            listed = await self.listed(name)
            if listed is not None:
                found += [t for n, t in listed.tools.items() if listed.policies[n] != "deny"]
        return found

    async def wrap(
        self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], Any]
    ) -> ToolMessage | Command[Any]:
        """``ToolNode``'s hook: a call of an MCP tool runs the governed tool, found by name."""
        if request.tool is None:
            tool = next((s.tools[n] for s in self.servers.values() for n in s.tools
                         if n == request.tool_call["name"]), None)
            if tool is not None:
                request = request.override(tool=tool)
        result: ToolMessage | Command[Any] = await execute(request)
        return result

    async def listed(self, name: str) -> ServerTools | None:
        """A server's tools (None: no such server), listed again once older than the refresh."""
        listed = self.servers.get(name)
        if listed is None:
            return None
        now = self._clock()
        stale = listed.listed_at is None or now - listed.listed_at >= self._refresh
        if not stale or now < listed.retry_at:
            return listed
        async with self._locks[name]:
            if listed.listed_at is not None and self._clock() - listed.listed_at < self._refresh:
                return listed
            try:
                raw = await asyncio.wait_for(
                    load_mcp_tools(None, connection=listed.config.connection,  # type: ignore[arg-type]
                                   server_name=name),
                    listed.config.timeout or self._timeout,
                )
            except Exception as exc:  # a server that does not start is not the bot's crash
                listed.failures += 1
                listed.retry_at = self._clock() + min(_MAX_BACKOFF, 2.0 ** listed.failures)
                listed.error = _failure(exc)
                _log.warning("MCP server %s could not be listed (%s); trying again in %.0f s",
                             name, listed.error, listed.retry_at - self._clock())
                return listed
            self._install(listed, raw)
        return listed

    def _install(self, listed: ServerTools, raw: list[BaseTool]) -> None:
        taken = {n for s in self.servers.values() if s is not listed for n in s.tools}
        listed.tools, listed.policies = {}, {}
        for inner in raw:
            name = inner.name if inner.name not in taken else f"{listed.config.name}_{inner.name}"
            read_only = (inner.metadata or {}).get("readOnlyHint") is True
            policy = policy_of(listed.config, inner.name, read_only)
            listed.tools[name] = self._governed(listed.config, name, inner, read_only, policy)
            listed.policies[name] = policy
        listed.listed_at, listed.error, listed.failures, listed.retry_at = self._clock(), None, 0, 0.0
        _log.info("MCP server %s: %d tools", listed.config.name, len(raw))

    def _governed(
        self, server: ServerConfig, name: str, inner: BaseTool, read_only: bool, policy: Policy
    ) -> BaseTool:
        timeout = server.timeout or self._timeout
        ledger = self._ledger

        async def run(config: RunnableConfig, **args: Any) -> str:
            conf, meta = config.get("configurable", {}), config.get("metadata", {})
            key, run_id = str(conf.get("thread_id")), str(meta.get("turn_id", ""))
            if server.name not in self.chosen(conf.get("place")) or policy == "deny":
                return f"{inner.name} (MCP server {server.name}) is not enabled here, so it was not called."
            digest = args_hash(args)
            earlier = None if read_only or ledger is None else await ledger.earlier(
                key, server.name, inner.name, digest)
            call = ToolCallRecord(server.name, inner.name, args, digest, read_only, policy)
            if earlier is not None and meta.get("replay_of"):
                if ledger is not None:
                    reused = replace(call, result=earlier.result, reused_from=earlier.id)
                    await ledger.record(key, run_id, reused)
                return f"{earlier.result}\n{REUSED.format(tool=inner.name)}"
            if policy == "ask" or earlier is not None:
                again = (f" This will call {inner.name} again: it already ran with these arguments in "
                         "this conversation.") if earlier is not None else ""
                decision = interrupt({"tool": name, "args": args, "server": server.name,
                                      "note": f"It runs on the MCP server {server.name}.{again}"})
                by = decision.get("by") or "someone"
                if not decision.get("approved"):
                    return rejected(by)
                call = replace(call, approved_by=by, policy="again" if earlier is not None else policy)
            try:
                content = await asyncio.wait_for(inner.ainvoke(args), timeout)
            except TimeoutError:
                error = f"the MCP server {server.name} did not answer within {timeout:g} s"
            except Exception as exc:
                error = f"the MCP server {server.name} failed ({_failure(exc)})"
            else:
                text = _text(content)
                if ledger is not None:
                    await ledger.record(key, run_id, replace(call, result=text))
                return text
            if ledger is not None:
                await ledger.record(key, run_id, replace(call, error=error))
            raise ToolException(f"{inner.name} was not completed: {error}. Tell the user.")

        return StructuredTool(
            name=name, description=inner.description, args_schema=inner.args_schema or {}, coroutine=run,
            metadata={**(inner.metadata or {}), "mcp_server": server.name, "policy": policy},
            handle_tool_error=True,
        )


def _text(content: object) -> str:
    """An MCP result as text: its text blocks joined (other blocks are named)."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else [content]:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif isinstance(block, str):
            parts.append(block)
        else:
            parts.append(f"[{block.get('type') if isinstance(block, dict) else type(block).__name__}]")
    return "\n".join(parts)


def _failure(exc: BaseException) -> str:
    """What failed, without the exception's text (it may carry a URL with a token)."""
    inner = exc
    while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
        inner = inner.exceptions[0]
    return type(inner).__name__


class Binding:
    """A model with the built-in tools and a place's MCP tools bound, built once per tool set."""

    def __init__(
        self, chats: dict[str, BaseChatModel], builtin: Sequence[BaseTool], choice: dict[str, Any],
        toolbox: Toolbox | None,
    ) -> None:
        self._chats = chats
        self._builtin = list(builtin)
        self._choice = choice
        self._toolbox = toolbox
        self._bound: dict[tuple[str, tuple[int, ...]], Runnable[Any, Any]] = {}

    async def model(self, name: str, place: object) -> Runnable[Any, Any]:
        extra = await self._toolbox.offered(self._toolbox.chosen(place)) if self._toolbox else []
        tools = [*self._builtin, *extra]
        key = (name, tuple(id(t) for t in extra))
        bound = self._bound.get(key)
        if bound is None:
            if len(self._bound) > 256:
                self._bound.clear()
            choice = self._choice if tools else {}
            bound = self._bound[key] = self._chats[name].bind_tools(tools, **choice)
        return bound
