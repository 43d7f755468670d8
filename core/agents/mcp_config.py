"""The MCP servers file: Claude Desktop's and Cursor's ``mcp.json``, plus a policy per tool.

::

    {"mcpServers": {
       "tickets": {"command": "npx", "args": ["-y", "tickets-mcp"], "env": {"TOKEN": "${TICKETS_TOKEN}"},
                   "policy": {"lookup": "auto", "delete_all": "deny"}, "default": "ask"},
       "wiki": {"url": "https://wiki.example/mcp", "headers": {"Authorization": "Bearer ${WIKI_TOKEN}"},
                "enabled": true, "timeout": 10}}}

A server is stdio (``command``, ``args``, ``env``, ``cwd``) or streamable HTTP (``url``,
``headers``). Secrets stay in the environment: ``${NAME}`` in ``env``, ``headers``, ``args``
or ``url`` is replaced by that variable when the file is read, and a missing one is named
(never its value) in the error. ``enabled: true`` turns a server on in every place that has
not chosen its servers (``/tools``); otherwise an admin adds it per place.

The policy of a tool is, first found: its entry in ``policy``; the server's ``default``;
``auto`` when the server's annotations say ``readOnlyHint: true``; else ``ask``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import SettingsError

__all__ = ["POLICIES", "Policy", "ServerConfig", "load_servers", "policy_of"]

Policy = Literal["auto", "ask", "deny"]
POLICIES: tuple[Policy, ...] = ("auto", "ask", "deny")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    name: str
    connection: dict[str, Any] = field(repr=False)
    """What ``langchain-mcp-adapters`` connects with; holds secrets, so never in a repr."""
    default: Policy | None = None
    tools: Mapping[str, Policy] = field(default_factory=dict)
    enabled: bool = False
    timeout: float | None = None

    @property
    def transport(self) -> str:
        return str(self.connection["transport"])


def policy_of(server: ServerConfig, tool: str, read_only: bool) -> Policy:
    return server.tools.get(tool) or server.default or ("auto" if read_only else "ask")


def load_servers(path: Path, environ: Mapping[str, str] | None = None) -> list[ServerConfig]:
    """The servers of ``path``; a clear ``SettingsError`` for anything that cannot be used."""
    environ = os.environ if environ is None else environ
    try:
        raw = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise SettingsError(f"BACKTRACK_MCP_CONFIG: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SettingsError(f"BACKTRACK_MCP_CONFIG: {path} is not valid JSON ({exc})") from None
    servers = raw.get("mcpServers") if isinstance(raw, dict) else None
    if not isinstance(servers, dict):
        raise SettingsError(f'BACKTRACK_MCP_CONFIG: {path} has no "mcpServers" object')
    return [_server(name, entry, environ) for name, entry in servers.items()]


def _server(name: str, entry: object, environ: Mapping[str, str]) -> ServerConfig:
    where = f"BACKTRACK_MCP_CONFIG: server {name!r}"
    if not _NAME.match(name):
        raise SettingsError(f"{where}: a name is 1 to 40 letters, digits, '-' or '_'")
    if not isinstance(entry, dict):
        raise SettingsError(f"{where} must be an object")

    def fill(value: object) -> Any:
        if isinstance(value, str):
            def variable(match: re.Match[str]) -> str:
                if match[1] not in environ:
                    raise SettingsError(f"{where} needs the environment variable {match[1]}: it is not set")
                return environ[match[1]]
            return _VARIABLE.sub(variable, value)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {str(k): fill(v) for k, v in value.items()}
        return value

    if "command" in entry:
        connection: dict[str, Any] = {"transport": "stdio", "command": fill(entry["command"]),
                                      "args": fill(entry.get("args", []))}
        # The server sees PATH and what the file gives it, never this process's secrets.
        connection["env"] = {"PATH": environ.get("PATH", ""), **fill(entry.get("env", {}))}
        if "cwd" in entry:
            connection["cwd"] = fill(entry["cwd"])
    elif "url" in entry:
        connection = {"transport": "streamable_http", "url": fill(entry["url"]),
                      "headers": fill(entry.get("headers", {}))}
    else:
        raise SettingsError(f'{where} needs "command" (stdio) or "url" (streamable HTTP)')
    tools = entry.get("policy", {})
    default = entry.get("default")
    if not isinstance(tools, dict) or any(p not in POLICIES for p in [*tools.values(), default or "ask"]):
        raise SettingsError(f"{where}: a policy is one of {', '.join(POLICIES)}")
    timeout = entry.get("timeout")
    if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
        raise SettingsError(f"{where}: timeout is a number of seconds above 0")
    return ServerConfig(name, connection, default, dict(tools), entry.get("enabled") is True,
                        float(timeout) if timeout else None)
