"""Which conversation a Slack message belongs to: one answer for messages and commands alike.

A channel conversation is a thread (a top-level mention starts the thread of its own
``ts``). In a direct message the top level is one running conversation and each DM
thread is its own. DM channel ids start with ``D``, which is true for events, slash
commands and pasted links, so the rule needs nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from core.keys import ThreadKey

__all__ = ["Access", "MessageLink", "find_link", "is_dm", "reply_thread", "thread_key", "workspace_of"]

# https://acme.slack.com/archives/C123/p1700000000000100?thread_ts=1700000000.000100&cid=C123
# Slack wraps links in a slash command's text as <url> or <url|label> when escaping is on.
_LINK = re.compile(
    r"<?https://[A-Za-z0-9.-]+/archives/(?P<channel>[A-Z0-9]{1,32})/p(?P<digits>\d{7,21})"
    r"(?:\?(?P<query>[^\s>|]*))?(?:\|[^>]*)?>?"
)


def is_dm(channel: str) -> bool:
    return channel.startswith("D")


def workspace_of(body: dict[str, Any], team: str) -> str:
    """Where a Slack conversation lives: its Enterprise Grid organisation when the event says
    it has one (a channel shared by two workspaces of the organisation is then one
    conversation per thread, whichever workspace the event came from), else the workspace."""
    authorizations = body.get("authorizations")
    first = authorizations[0] if isinstance(authorizations, list) and authorizations else {}
    enterprise = body.get("enterprise_id") or (body.get("enterprise") or {}).get("id") or (
        first.get("enterprise_id") if isinstance(first, dict) else None)
    return enterprise if isinstance(enterprise, str) and enterprise else team


def thread_key(team: str, channel: str, ts: str, thread_ts: str | None) -> ThreadKey:
    """The conversation of the message ``ts`` (inside ``thread_ts`` if it is a reply)."""
    if is_dm(channel):
        return ThreadKey.slack(team, channel, thread_ts)
    return ThreadKey.slack(team, channel, thread_ts or ts)


def reply_thread(channel: str, ts: str, thread_ts: str | None) -> str | None:
    """Where the bot answers the message ``ts``: its thread, or the DM's top level."""
    if is_dm(channel):
        return thread_ts
    return thread_ts or ts


@dataclass(frozen=True, slots=True)
class MessageLink:
    channel: str
    ts: str
    thread_ts: str | None

    def key(self, team: str) -> ThreadKey:
        return thread_key(team, self.channel, self.ts, self.thread_ts)


def find_link(text: str) -> tuple[MessageLink | None, str]:
    """The first message link in ``text``, and the text without it."""
    match = _LINK.search(text)
    if match is None:
        return None, text
    digits = match.group("digits")
    query = parse_qs(match.group("query") or "")
    thread_ts = query.get("thread_ts", [None])[0]
    link = MessageLink(match.group("channel"), f"{digits[:-6]}.{digits[-6:]}", thread_ts)
    rest = (text[: match.start()] + " " + text[match.end() :]).strip()
    return link, rest


@dataclass(frozen=True, slots=True)
class Access:
    """The optional allow-lists; an empty list lets everyone in.

    The channel list applies to channels only: a direct message is governed by the
    user list alone, since DM channel ids are per person and nobody lists them.
    """

    channels: frozenset[str]
    users: frozenset[str]

    def allows(self, channel: str, user: str) -> bool:
        if self.users and user not in self.users:
            return False
        return not self.channels or is_dm(channel) or channel in self.channels
