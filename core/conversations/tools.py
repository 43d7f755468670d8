"""``/tools``: which MCP servers a place uses, and what their tools may do.

``/tools`` lists the configured servers (the ones this place uses marked), each tool with
its policy (auto, ask, deny) and any server that cannot be reached. Admins change the
place's choice with ``/tools add NAME``, ``/tools remove NAME`` or ``/tools reset`` (back to
the servers the operator turned on by default), like ``/persona``; it is stored with the
place settings and applies from the next turn. A Discord channel without a choice of its
own uses its guild's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import InvalidInput
from core.storage.db import storage_errors

if TYPE_CHECKING:
    from core.agents.mcp import Toolbox
    from core.conversations.places import PlaceVerbs
    from core.keys import ThreadKey
    from core.storage.places import PlaceStore
    from core.types import Command

__all__ = ["ToolVerbs"]

_NONE = ("No MCP servers are configured: the operator names them in an mcp.json file "
         "(BACKTRACK_MCP_CONFIG; docs/tools.md).")


class ToolVerbs:
    def __init__(self, store: PlaceStore, places: PlaceVerbs, toolbox: Toolbox | None) -> None:
        self._store = store
        self._places = places
        self._toolbox = toolbox

    async def command(self, key: ThreadKey, command: Command, user: str | None) -> str:
        verb, _, name = command.argument.strip().partition(" ")
        verb, name = verb.lower(), name.strip()
        if verb not in ("", "add", "remove", "reset") or (verb in ("add", "remove")) != bool(name):
            raise InvalidInput("/tools takes add NAME, remove NAME or reset (or nothing, to list them)")
        toolbox = self._toolbox
        if toolbox is None:
            return _NONE
        async with storage_errors():
            choice = await self._store.choose(key.scopes)
        using = toolbox.chosen(choice)
        if verb:
            self._places.check_admin(key, user, "tools")
            if name and name not in toolbox.servers:
                known = ", ".join(toolbox.servers)
                raise InvalidInput(f"there is no MCP server {name[:40]!r}; configured: {known}")
            if verb == "add":
                chosen: tuple[str, ...] | None = (*[s for s in using if s != name], name)
            elif verb == "remove":
                chosen = tuple(s for s in using if s != name)
            else:
                chosen = None
            async with storage_errors():
                await self._store.change(key.scopes[0], user, servers=chosen)
                using = toolbox.chosen(await self._store.choose(key.scopes))
        return await self._listing(toolbox, using, changed=bool(verb))

    async def _listing(self, toolbox: Toolbox, using: tuple[str, ...], *, changed: bool) -> str:
        lines = ["Saved. From the next message:"] if changed else []
        lines.append(f"This place uses: {', '.join(using) or 'no MCP server'}.")
        for name, listed in toolbox.servers.items():
            listed = await toolbox.listed(name) or listed
            mark = "*" if name in using else " "
            if listed.error is not None and not listed.tools:
                lines.append(f"{mark} {name}: cannot be reached now ({listed.error}); tried again later")
                continue
            tools = ", ".join(f"{tool} ({listed.policies[tool]})" for tool in listed.tools)
            lines.append(f"{mark} {name}: {tools or 'no tools'}")
        if not changed:
            lines.append("Admins change it with /tools add NAME, /tools remove NAME or /tools reset. "
                         "auto: runs; ask: waits for approval; deny: never offered.")
        return "\n".join(lines)
