"""Per-place settings: the persona (system prompt) and the model of a channel or a guild.

A place is a Slack channel, a Discord channel or thread, a Discord guild, the console or
the API (``ThreadKey.scopes`` names them). Settings live in PostgreSQL and are read once
per turn by primary key, so a change applies from the next turn on every instance, with
no cache to invalidate. A Discord channel without a value of its own falls back to its
guild's, field by field. In chat only admins (``BACKTRACK_ADMINS``) may change them; the
console (the operator's own terminal) and the token-protected API always may.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.conversations.turns import clean_message
from core.conversations.wording import format_model, format_persona
from core.errors import InvalidInput, NotPermitted
from core.keys import ThreadKey

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.conversations.commands import Command
    from core.settings import Settings
    from core.storage.db import Pool

__all__ = ["KEEP", "PERSONA_MAX", "Keep", "PlaceChoice", "PlaceSetting", "Places"]

PERSONA_MAX = 4000
"""Characters a persona may have: a system prompt, not a document."""

_READ = "SELECT * FROM place_settings WHERE place = ANY(%s)"

_CHANGE = """
INSERT INTO place_settings (place, persona, model, updated_by)
VALUES (%(place)s, %(persona)s, %(model)s, %(user)s)
ON CONFLICT (place) DO UPDATE SET
    persona = CASE WHEN %(set_persona)s THEN EXCLUDED.persona ELSE place_settings.persona END,
    model = CASE WHEN %(set_model)s THEN EXCLUDED.model ELSE place_settings.model END,
    updated_by = EXCLUDED.updated_by, updated_at = now()
RETURNING *
"""


class Keep(enum.Enum):
    KEEP = "keep"


KEEP = Keep.KEEP
"""Leave this field as it is (``None`` resets it to the default)."""


@dataclass(frozen=True, slots=True)
class PlaceSetting:
    """What one place has set itself, and who changed it last, when."""

    place: str
    persona: str | None
    model: str | None
    updated_by: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PlaceChoice:
    """What a turn runs with; ``*_from`` names the place that set it (None: the default)."""

    model: str
    persona: str | None = None
    persona_from: PlaceSetting | None = None
    model_from: PlaceSetting | None = None


def _setting(row: dict[str, Any]) -> PlaceSetting:
    at = row["updated_at"]  # a datetime, or its ISO text when read as JSON with the turn start
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    return PlaceSetting(row["place"], row["persona"], row["model"], row["updated_by"], when)


class Places:
    def __init__(self, pool: Pool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings

    async def read(self, scopes: tuple[str, ...]) -> list[PlaceSetting]:
        """The settings of ``scopes`` that exist, most specific first."""
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(_READ, (list(scopes),))).fetchall()
        found = {row["place"]: _setting(row) for row in rows}
        return [found[p] for p in scopes if p in found]

    async def choose(self, scopes: tuple[str, ...]) -> PlaceChoice:
        """The persona and model a turn in the first of ``scopes`` runs with.

        A stored model the operator no longer allows (BACKTRACK_MODELS changed) gives way
        to the default rather than failing the turn.
        """
        return self.choice(await self.read(scopes))

    def of(self, rows: Sequence[dict[str, Any]], scopes: tuple[str, ...]) -> PlaceChoice:
        """``choose`` from rows already read (the turn start reads them with its own statement)."""
        found = {row["place"]: _setting(row) for row in rows}
        return self.choice([found[p] for p in scopes if p in found])

    def choice(self, found: list[PlaceSetting]) -> PlaceChoice:
        persona = next((s for s in found if s.persona is not None), None)
        allowed = self._settings.allowed_models
        model = next((s for s in found if s.model is not None and s.model in allowed), None)
        return PlaceChoice(
            model=model.model if model and model.model else self._settings.model,
            persona=persona.persona if persona else None,
            persona_from=persona,
            model_from=model,
        )

    async def change(
        self, place: str, user: str | None, *,
        persona: str | Keep | None = KEEP, model: str | Keep | None = KEEP,
    ) -> PlaceSetting:
        """Set (a value), reset (None) or keep (KEEP) each field of ``place``; no permission check."""
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
        params = {
            "place": place,
            "persona": None if persona is KEEP else persona,
            "model": None if model is KEEP else model,
            "set_persona": persona is not KEEP,
            "set_model": model is not KEEP,
            "user": user,
        }
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_CHANGE, params)).fetchone()
        assert row is not None
        return _setting(row)

    # -- /persona and /model -----------------------------------------------------------

    def _check_admin(self, key: ThreadKey, user: str | None, what: str) -> None:
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

    async def command(self, key: ThreadKey, command: Command, user: str | None) -> str:
        """``/persona [text|reset]`` and ``/model [name|reset]`` for the place of ``key``."""
        what = command.name
        argument = command.argument.strip()
        place = key.scopes[0]
        if argument:
            self._check_admin(key, user, what)
            value = None if argument.lower() == "reset" else argument
            if what == "persona":
                await self.change(place, user, persona=value)
            else:
                await self.change(place, user, model=value)
        choice = await self.choose(key.scopes)
        if what == "persona":
            return format_persona(choice, place, changed=bool(argument))
        return format_model(choice, place, self._settings.allowed_models, changed=bool(argument))
