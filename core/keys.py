"""Conversation keys: the one place that knows how a platform's place becomes a key.

A key is ``platform:part:part...``. Every part is validated against its platform's
pattern, so ``decode(encode(k)) == k`` always holds and a malformed key (from a pasted
link, an API client or a command argument) is rejected before it reaches storage.
Adapters build keys with the constructors below, never by formatting strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from core.errors import InvalidKey

__all__ = ["ThreadKey", "check_scope", "place_scopes", "within"]

_SLACK_ID = r"[A-Z0-9]{1,32}"
_GENERATION = r"(?:-\d{1,6})?"  # "-2": the place's second conversation after ``/new``
_SLACK_THREAD = rf"(?:\d{{1,12}}\.\d{{1,9}}|dm{_GENERATION})"
_SNOWFLAKE = r"\d{1,20}"
_NAME = r"[A-Za-z0-9_.\-]{1,128}"


@dataclass(frozen=True, slots=True)
class ThreadKey:
    platform: str
    parts: tuple[str, ...]

    # platform -> (part names, one regex per part)
    SPECS: ClassVar[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
        "slack": (("team", "channel", "thread"), (_SLACK_ID, _SLACK_ID, _SLACK_THREAD)),
        "discord": (("guild", "channel"), (rf"(?:{_SNOWFLAKE}|dm)", _SNOWFLAKE + _GENERATION)),
        "console": (("name",), (_NAME,)),
        "api": (("thread",), (_NAME,)),
    }

    def __post_init__(self) -> None:
        spec = self.SPECS.get(self.platform)
        if spec is None:
            raise InvalidKey(f"unknown platform {self.platform!r} in conversation key")
        names, patterns = spec
        if len(self.parts) != len(names):
            raise InvalidKey(
                f"a {self.platform} conversation key has {len(names)} parts "
                f"({', '.join(names)}), got {len(self.parts)}"
            )
        for name, pattern, value in zip(names, patterns, self.parts, strict=True):
            if not isinstance(value, str) or not re.fullmatch(pattern, value):
                raise InvalidKey(f"invalid {self.platform} {name} {value!r} in conversation key")

    @classmethod
    def slack(cls, team: str, channel: str, thread_ts: str | None) -> ThreadKey:
        """A Slack thread; ``thread_ts=None`` is the top level of a DM."""
        return cls("slack", (team, channel, thread_ts or "dm"))

    @classmethod
    def discord(cls, guild_id: int | None, channel_id: int) -> ThreadKey:
        """A Discord channel or thread; ``guild_id=None`` is a DM."""
        return cls("discord", ("dm" if guild_id is None else str(guild_id), str(channel_id)))

    @classmethod
    def console(cls, name: str) -> ThreadKey:
        return cls("console", (name,))

    @classmethod
    def api(cls, thread_id: str) -> ThreadKey:
        return cls("api", (thread_id,))

    @classmethod
    def decode(cls, encoded: str) -> ThreadKey:
        if not isinstance(encoded, str) or len(encoded) > 512:
            raise InvalidKey("a conversation key must be a string of at most 512 characters")
        platform, sep, rest = encoded.partition(":")
        if not sep:
            raise InvalidKey(f"conversation key {encoded[:80]!r} has no platform prefix")
        return cls(platform, tuple(rest.split(":")))

    @property
    def renewable(self) -> bool:
        """Whether ``/new`` can start a fresh conversation here: a Slack DM's top level or
        a Discord channel, places that are one running conversation; a thread is its own."""
        return self.platform == "discord" or (self.platform == "slack" and self.parts[-1].startswith("dm"))

    @property
    def generation(self) -> int:
        """0 for a place's first conversation; n after the n-th ``/new``."""
        last = self.parts[-1]
        return int(last.rsplit("-", 1)[1]) if self.platform in ("slack", "discord") and "-" in last else 0

    def nth(self, generation: int) -> ThreadKey:
        """This place's conversation of ``generation`` (0: the base key itself)."""
        if generation < 0 or (generation and not self.renewable):
            raise InvalidKey(f"{self} cannot start a new conversation in place")
        base = self.parts[-1].split("-", 1)[0]
        last = base if generation == 0 else f"{base}-{generation}"
        return ThreadKey(self.platform, (*self.parts[:-1], last))

    def encode(self) -> str:
        return ":".join((self.platform, *self.parts))

    @property
    def place(self) -> str:
        """The key without its last part: the channel or workspace a conversation lives in."""
        return ":".join((self.platform, *self.parts[:-1])) if len(self.parts) > 1 else self.platform

    @property
    def scopes(self) -> tuple[str, ...]:
        """The places whose settings (persona, model) apply here, most specific first.

        A Slack channel (or DM); a Discord channel or thread (every ``/new`` generation
        alike), then its guild; the console and the API are one place each. The first
        is also where the conversation's token usage is counted.
        """
        if self.platform == "discord":
            return place_scopes(f"discord:{self.parts[0]}:{self.parts[1].split('-', 1)[0]}")
        return (self.place,)

    @staticmethod
    def check_place(place: object) -> str:
        """``place`` if it is a place id as ``scopes`` names them; a clear refusal otherwise."""
        return _matching(place, _PLACE, "place", "slack:TEAM:CHANNEL, discord:GUILD, "
                         "discord:GUILD:CHANNEL, discord:dm:CHANNEL, console or api")

    def __str__(self) -> str:
        return self.encode()


def place_scopes(place: str) -> tuple[str, ...]:
    """A place and the wider places whose settings it falls back to: a Discord channel's guild."""
    platform, _, rest = place.partition(":")
    guild, _, channel = rest.partition(":")
    if platform == "discord" and channel and guild != "dm":
        return (place, f"discord:{guild}")
    return (place,)


_PLACE = (
    rf"slack:{_SLACK_ID}:{_SLACK_ID}|discord:{_SNOWFLAKE}(?::{_SNOWFLAKE})?"
    rf"|discord:dm:{_SNOWFLAKE}|console|api"
)

_SCOPE = (
    rf"slack(?::{_SLACK_ID}(?::{_SLACK_ID})?)?|discord(?::(?:{_SNOWFLAKE}|dm)(?::{_SNOWFLAKE})?)?"
    r"|console|api"
)


def check_scope(scope: object) -> str:
    """``scope`` if it names a platform, a workspace or guild, or a channel; a refusal otherwise."""
    return _matching(scope, _SCOPE, "scope", "a platform (slack, discord, console, api), slack:TEAM, "
                     "slack:TEAM:CHANNEL, discord:GUILD, discord:GUILD:CHANNEL or discord:dm")


def _matching(value: object, pattern: str, noun: str, expected: str) -> str:
    """``value`` if it is a string of at most 256 characters matching ``pattern``; else a
    refusal naming the ``noun`` and what was ``expected``, with at most 80 characters of it."""
    if isinstance(value, str) and len(value) <= 256 and re.fullmatch(pattern, value):
        return value
    shown = value[:80] if isinstance(value, str) else type(value).__name__
    raise InvalidKey(f"invalid {noun} {shown!r}: expected {expected}")


def within(name: str, scope: str) -> bool:
    """Whether a conversation key or a place lies inside a scope: ``slack:T1`` holds
    ``slack:T1:C1:1700.1`` and ``slack:T1:C1``; a Discord channel holds its ``/new`` generations."""
    parts, wanted = name.split(":"), scope.split(":")
    if len(wanted) > len(parts):
        return False
    for i, (part, want) in enumerate(zip(parts, wanted, strict=False)):
        if part != want and not (parts[0] == "discord" and i == 2 and part.split("-", 1)[0] == want):
            return False
    return True
