"""Per-place settings and usage as people use them: ``/persona``, ``/model``, ``/usage``, the API.

The values live in ``core/storage/places.py``; this module decides who may change them
and what a valid value is. In chat only admins (``BACKTRACK_ADMINS``) may change a place's
persona or model; the console (the operator's own terminal) and the token-protected API
always may.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.conversations.intake import clean_message
from core.conversations.wording import format_model, format_persona
from core.errors import InvalidInput, NotPermitted
from core.keys import ThreadKey, place_scopes
from core.records import KEEP, Keep, PlaceChoice, PlaceSetting
from core.storage.db import storage_errors

if TYPE_CHECKING:
    from core.settings import Settings
    from core.storage.places import PlaceStore
    from core.storage.usage import UsageLedger, UsageReport
    from core.types import Command

__all__ = ["PERSONA_MAX", "PlaceVerbs"]

PERSONA_MAX = 4000
"""Characters a persona may have: a system prompt, not a document."""


class PlaceVerbs:
    def __init__(
        self, store: PlaceStore, usage: UsageLedger, settings: Settings, servers: tuple[str, ...] = ()
    ) -> None:
        self._store = store
        self._usage = usage
        self._settings = settings
        self._servers = servers  # the MCP servers configured, which a place may choose from

    async def command(self, key: ThreadKey, command: Command, user: str | None) -> str:
        """``/persona [text|reset]`` and ``/model [name|reset]`` for the place of ``key``."""
        what = command.name
        argument = command.argument.strip()
        place = key.scopes[0]
        async with storage_errors():
            if argument:
                self.check_admin(key, user, what)
                value = None if argument.lower() == "reset" else argument
                if what == "persona":
                    await self.change(place, user, persona=value)
                else:
                    await self.change(place, user, model=value)
            choice = await self._store.choose(key.scopes)
        if what == "persona":
            return format_persona(choice, place, changed=bool(argument))
        return format_model(choice, place, self._settings.allowed_models, changed=bool(argument))

    async def of(self, place: str) -> tuple[PlaceSetting | None, PlaceChoice]:
        """A place's own settings (None: it has set nothing) and what its turns run with."""
        scopes = place_scopes(ThreadKey.check_place(place))
        async with storage_errors():
            found = await self._store.read(scopes[:1])
            return (found[0] if found else None), await self._store.choose(scopes)

    async def change(
        self, place: str, user: str | None, *,
        persona: str | Keep | None = KEEP, model: str | Keep | None = KEEP,
        servers: tuple[str, ...] | Keep | None = KEEP,
    ) -> PlaceSetting:
        """Set (a value), reset (None) or keep (KEEP) each field; no permission check here."""
        place = ThreadKey.check_place(place)
        if isinstance(persona, str):
            try:
                persona = clean_message(persona, PERSONA_MAX)
            except InvalidInput as exc:
                raise InvalidInput(f"that persona cannot be used: {exc.message}") from None
        if isinstance(model, str) and model not in self._settings.allowed_models:
            raise InvalidInput(
                f"the model {model[:80]!r} is not allowed here; allowed: "
                f"{', '.join(self._settings.allowed_models)} (the operator lists them in BACKTRACK_MODELS)"
            )
        if isinstance(servers, tuple) and (unknown := [s for s in servers if s not in self._servers]):
            raise InvalidInput(f"no MCP server {unknown[0][:40]!r} is configured; configured: "
                               f"{', '.join(self._servers) or 'none'}")
        async with storage_errors():
            return await self._store.change(place, user, persona=persona, model=model, servers=servers)

    async def usage(self, key: ThreadKey, user: str | None) -> UsageReport:
        """``user``'s tokens (on this platform) and those of ``key``'s place, today and this month."""
        async with storage_errors():
            return await self._usage.report(key, user)

    def check_admin(self, key: ThreadKey, user: str | None, what: str) -> None:
        if key.platform == "console":  # the operator's own terminal
            return
        admins = self._settings.admins
        if user is not None and user in admins:
            return
        if not admins:
            raise NotPermitted(
                f"nobody may change the {what} in chat yet: the operator lists admins in "
                "BACKTRACK_ADMINS, or changes it through the API"
            )
        raise NotPermitted(f"only the bot's admins may change the {what} here")
