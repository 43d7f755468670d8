"""Approve / Reject clicks: decide a paused tool call, then finish the turn in its thread.

A click names only the approval id; the conversation is the one of the message the
buttons sit under, derived by ``thread_key`` like any message, so a click works on any
instance and after a restart. Until the decision is shown in the thread, a refusal
(already decided, double click, not permitted, busy) is told to the clicker alone, as
an ephemeral reply through the click's ``response_url``, and nothing else changes.
The decision is shown as soon as the core reports it stored (``on_decided``), before the
turn runs on; what fails after that is told in the thread.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bots.slack.feedback import answer_footer
from bots.slack.places import Access, reply_thread, thread_key, workspace_of
from bots.slack.replies import APPROVE, REJECT, SLACK_ERRORS, escape, section
from bots.slack.stream import Streams, open_reply
from core.conversations.boundary import boundary
from core.errors import NotPermitted

if TYPE_CHECKING:
    from slack_bolt.context.respond.async_respond import AsyncRespond
    from slack_sdk.web.async_client import AsyncWebClient

    from core.conversations.service import ConversationService
    from core.keys import ThreadKey
    from core.records import Approval

__all__ = ["ACTIONS", "ApprovalHandler", "Click", "read_click", "show_decision"]

_log = logging.getLogger(__name__)

ACTIONS = re.compile(rf"^(?:{APPROVE}|{REJECT})$")
_SLACK_ID = re.compile(r"^[A-Z0-9]{2,32}$")


@dataclass(frozen=True, slots=True)
class Click:
    team: str
    channel: str
    user: str
    message_ts: str
    thread_ts: str | None
    approval_id: int
    approve: bool
    text: str
    """The approval message's text as Slack stores it (already escaped)."""
    dedupe: str
    workspace: str = ""
    """What the conversation key names (``workspace_of``): the Grid organisation, or ``team``."""

    @property
    def key(self) -> ThreadKey:
        return thread_key(self.workspace or self.team, self.channel, self.message_ts, self.thread_ts)

    @property
    def reply_to(self) -> str | None:
        return reply_thread(self.channel, self.message_ts, self.thread_ts)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _part(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    return value if isinstance(value, dict) else {}


def read_click(body: dict[str, Any]) -> Click | None:
    """The click on one of our buttons under a channel or DM message, or None."""
    actions = body.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    container, message, user = _part(body, "container"), _part(body, "message"), _part(body, "user")
    team = _text(_part(body, "team").get("id")) or _text(user.get("team_id"))
    channel = _text(container.get("channel_id")) or _text(_part(body, "channel").get("id"))
    ts = _text(container.get("message_ts")) or _text(message.get("ts"))
    thread_ts = _text(container.get("thread_ts")) or _text(message.get("thread_ts")) or None
    value, who = _text(action.get("value")), _text(user.get("id"))
    dedupe = _text(body.get("trigger_id")) or _text(action.get("action_ts"))
    if not (team and channel and ts and dedupe and value.isdigit()):
        return None
    if not (_SLACK_ID.match(who) and _SLACK_ID.match(channel)):
        return None
    return Click(
        team=team,
        workspace=workspace_of(body, team),
        channel=channel,
        user=who,
        message_ts=ts,
        thread_ts=thread_ts,
        approval_id=int(value),
        approve=action.get("action_id") == APPROVE,
        text=_text(message.get("text")),
        dedupe=dedupe,
    )


async def show_decision(client: AsyncWebClient, click: Click) -> None:
    """The approval message with its buttons replaced by who decided it."""
    verdict = ":white_check_mark: Approved" if click.approve else ":no_entry_sign: Rejected"
    note = f"{verdict} by <@{click.user}>"
    blocks = [section(click.text)] if click.text else []
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    try:
        await client.chat_update(
            channel=click.channel, ts=click.message_ts, text=f"{click.text}\n\n{note}", blocks=blocks
        )
    except SLACK_ERRORS as exc:  # the turn goes on; only the buttons stay visible
        _log.warning("could not mark approval %s decided: %s", click.approval_id, type(exc).__name__)


class ApprovalHandler:
    def __init__(self, service: ConversationService, access: Access, streams: Streams) -> None:
        self._service = service
        self._access = access
        self._streams = streams

    async def handle(self, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        click = read_click(body)
        if click is None:
            _log.warning("slack click without a usable approval, channel or user; ignored")
            return
        reply = open_reply(client, click.channel, click.reply_to, click.team, click.user, self._streams)
        decided = False

        async def on_decided(_: Approval) -> None:
            nonlocal decided
            decided = True
            await show_decision(client, click)
            try:
                await reply.start()
            except SLACK_ERRORS as exc:
                _log.warning("no placeholder in %s: %s", click.channel, type(exc).__name__)

        async def tell(text: str) -> None:
            """In the thread once the decision shows there; otherwise to the clicker alone."""
            if decided:
                await reply.fail(text)
                return
            try:
                await respond(text=escape(text), response_type="ephemeral", replace_original=False)
            except (*SLACK_ERRORS, ValueError) as exc:  # ValueError: the click had no response_url
                _log.error("could not answer a click in %s: %s", click.channel, type(exc).__name__)

        async with boundary(tell, f"slack click on approval {click.approval_id}"):
            if not self._access.allows(click.channel, click.user):
                raise NotPermitted("backtrack is not enabled for you in this channel")
            key = await self._service.current(click.key)  # a DM's top level may have moved on (/new)
            if not await self._service.first_delivery(key, ("action", click.dedupe)):
                _log.info("slack click %s already handled", click.dedupe)
                return
            _log.info("slack %s of approval %s on %s", "approval" if click.approve else "rejection",
                      click.approval_id, key)
            answer = await self._service.resolve(
                key, click.approval_id, click.approve, user=click.user,
                on_partial=reply.partial, on_decided=on_decided, on_status=reply.status,
            )
            await reply.finish(answer.text, answer.approval, footer=answer_footer(answer))
