"""Per-place settings: the ``place_settings`` table (persona, model, MCP servers of a place).

A place is a Slack channel, a Discord channel or thread, a Discord guild, the console or
the API (``ThreadKey.scopes`` names them). Settings are read once per turn by primary key
(with the turn start, ``core/storage/conversations.py``), so a change applies from the next
turn on every instance, with no cache to invalidate. A Discord channel without a value of
its own falls back to its guild's, field by field. Who may change them, and what a valid
value is, is the conversation layer's to decide (``core/conversations/places.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.records import KEEP, Keep, PlaceChoice, PlaceSetting

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.settings import Settings
    from core.storage.db import Pool

__all__ = ["PlaceStore"]

_READ = "SELECT * FROM place_settings WHERE place = ANY(%s)"

_CHANGE = """
INSERT INTO place_settings (place, persona, model, mcp_servers, updated_by)
VALUES (%(place)s, %(persona)s, %(model)s, %(servers)s, %(user)s)
ON CONFLICT (place) DO UPDATE SET
    persona = CASE WHEN %(set_persona)s THEN EXCLUDED.persona ELSE place_settings.persona END,
    model = CASE WHEN %(set_model)s THEN EXCLUDED.model ELSE place_settings.model END,
    mcp_servers = CASE WHEN %(set_servers)s THEN EXCLUDED.mcp_servers ELSE place_settings.mcp_servers END,
    updated_by = EXCLUDED.updated_by, updated_at = now()
RETURNING *
"""


def _setting(row: dict[str, Any]) -> PlaceSetting:
    at = row["updated_at"]  # a datetime, or its ISO text when read as JSON with the turn start
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    servers = row.get("mcp_servers")
    return PlaceSetting(
        row["place"], row["persona"], row["model"], row["updated_by"], when,
        tuple(servers) if servers is not None else None,
    )


class PlaceStore:
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
        """The persona and model a turn in the first of ``scopes`` runs with."""
        return self.choice(await self.read(scopes))

    def of(self, rows: Sequence[dict[str, Any]], scopes: tuple[str, ...]) -> PlaceChoice:
        """``choose`` from rows already read (the turn start reads them with its own statement)."""
        found = {row["place"]: _setting(row) for row in rows}
        return self.choice([found[p] for p in scopes if p in found])

    def choice(self, found: list[PlaceSetting]) -> PlaceChoice:
        """The most specific value of each field; a stored model the operator no longer
        allows (BACKTRACK_MODELS changed) gives way to the default rather than failing."""
        persona = next((s for s in found if s.persona is not None), None)
        servers = next((s.servers for s in found if s.servers is not None), None)
        allowed = self._settings.allowed_models
        model = next((s for s in found if s.model is not None and s.model in allowed), None)
        return PlaceChoice(
            model=model.model if model and model.model else self._settings.model,
            persona=persona.persona if persona else None,
            persona_from=persona,
            model_from=model,
            servers=servers,
        )

    async def change(
        self, place: str, user: str | None, *,
        persona: str | Keep | None = KEEP, model: str | Keep | None = KEEP,
        servers: tuple[str, ...] | Keep | None = KEEP,
    ) -> PlaceSetting:
        """Set (a value), reset (None) or keep (KEEP) each field of ``place``, as given."""
        params = {
            "place": place,
            "persona": None if persona is KEEP else persona,
            "model": None if model is KEEP else model,
            "set_persona": persona is not KEEP,
            "set_model": model is not KEEP,
            "servers": None if isinstance(servers, Keep) or servers is None else list(servers),
            "set_servers": servers is not KEEP,
            "user": user,
        }
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_CHANGE, params)).fetchone()
        assert row is not None
        return _setting(row)
