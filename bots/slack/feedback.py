"""👍/👎 under every answer, and the "Rewind to here" message shortcut.

The feedback block under an answer's last message carries the answer's turn: its
conversation's generation (see ``core/storage/generations.py``) and the checkpoint the answer
ended at, as ``"<generation>:<checkpoint id>"`` in both buttons' values. A click is
stored from that alone, on any instance and after a restart. The same value is how the
shortcut knows which turn a message is: a message of the bot without the block (an
error, a command's reply, an approval request) is no answer to rewind to. Both answer
the clicker alone, through the interaction's ``response_url``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import ContextActionsBlock, FeedbackButtonObject, FeedbackButtonsElement

from bots.slack.places import Access, thread_key, workspace_of
from bots.slack.replies import SLACK_ERRORS, escape
from core.conversations.boundary import Tell, boundary
from core.conversations.wording import format_rewind, version_label
from core.errors import InvalidInput, NotPermitted

if TYPE_CHECKING:
    from slack_bolt.context.respond.async_respond import AsyncRespond

    from core.conversations.service import ConversationService
    from core.keys import ThreadKey
    from core.types import Answer

__all__ = [
    "FEEDBACK", "LIST_VERSIONS", "NEXT", "PREVIOUS", "RETRY", "REWIND_HERE", "TURN_VALUE", "VERSIONS",
    "Clicked", "FeedbackHandler", "answer_footer", "answer_turn", "clicked_at", "ephemeral",
    "feedback_block", "text_of",
]

_log = logging.getLogger(__name__)

FEEDBACK = "backtrack_feedback"
"""The ``action_id`` of the feedback buttons."""
REWIND_HERE = "backtrack_rewind_here"
"""The ``callback_id`` of the message shortcut (``slack-manifest.yaml``)."""
TURN_VALUE = re.compile(r"^(?P<generation>\d{1,6}):(?P<checkpoint>[0-9a-f-]{1,64})(?::(?P<vote>up|down))?$")
_SLACK_ID = re.compile(r"^[A-Z0-9]{2,32}$")


def feedback_block(answer: Answer) -> dict[str, Any] | None:
    """The 👍/👎 block under a finished answer; None for a turn paused for approval."""
    if answer.turn is None or answer.approval is not None:
        return None
    turn = f"{answer.key.generation}:{answer.turn.checkpoint_id}"
    block = ContextActionsBlock(
        block_id=f"backtrack_feedback_{answer.turn.index}",
        elements=[
            FeedbackButtonsElement(
                action_id=FEEDBACK,
                positive_button=FeedbackButtonObject(
                    text="👍", value=f"{turn}:up", accessibility_label="Good answer"),
                negative_button=FeedbackButtonObject(
                    text="👎", value=f"{turn}:down", accessibility_label="Bad answer"),
            )
        ],
    )
    return block.to_dict()


RETRY = "backtrack_retry"
PREVIOUS, NEXT = "backtrack_version_previous", "backtrack_version_next"
LIST_VERSIONS = "backtrack_version_list"
VERSIONS = re.compile(rf"^(?:{PREVIOUS}|{LIST_VERSIONS}|{NEXT})$")
"""The ``action_id`` of the previous, "2/3" and next buttons."""


def _button(label: str, action_id: str, value: str, accessible: str) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "value": value, "accessibility_label": accessible,
            "text": {"type": "plain_text", "text": label, "emoji": True}}


def answer_footer(answer: Answer) -> list[dict[str, Any]] | None:
    """The blocks under a finished answer: 👍/👎, then Try again and the version controls."""
    feedback = feedback_block(answer)
    if feedback is None or answer.turn is None:
        return None
    turn, value = answer.turn, f"{answer.key.generation}:{answer.turn.checkpoint_id}"
    row = []
    if turn.versions > 1:
        if turn.version > 1:
            row.append(_button("\u2039", PREVIOUS, value, "Previous version of this answer"))
        row.append(_button(version_label(turn), LIST_VERSIONS, value, "List the versions of this answer"))
        if turn.version < turn.versions:
            row.append(_button("\u203a", NEXT, value, "Next version of this answer"))
    row.append(_button("🔄 Try again", RETRY, value, "Answer this question again"))
    return [feedback, {"type": "actions", "block_id": f"backtrack_versions_{turn.index}", "elements": row}]


def answer_turn(blocks: object) -> tuple[int, str] | None:
    """(generation, checkpoint id) of the answer whose blocks these are, or None."""
    for block in blocks if isinstance(blocks, list) else ():
        for element in block.get("elements", ()) if isinstance(block, dict) else ():
            if isinstance(element, dict) and element.get("action_id") == FEEDBACK:
                button = element.get("positive_button")
                value = button.get("value") if isinstance(button, dict) else None
                match = TURN_VALUE.match(value) if isinstance(value, str) else None
                if match:
                    return int(match["generation"]), match["checkpoint"]
    return None


def text_of(value: object) -> str:
    return value if isinstance(value, str) else ""


def _part(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class Clicked:
    """Who clicked, and the message clicked on and its conversation."""

    team: str
    channel: str
    user: str
    key: ThreadKey
    ts: str
    thread_ts: str | None


def clicked_at(body: dict[str, Any], generation: int) -> Clicked | None:
    message, container = _part(body, "message"), _part(body, "container")
    user = text_of(_part(body, "user").get("id"))
    team = text_of(_part(body, "team").get("id")) or text_of(_part(body, "user").get("team_id"))
    channel = text_of(_part(body, "channel").get("id")) or text_of(container.get("channel_id"))
    ts = text_of(message.get("ts")) or text_of(container.get("message_ts")) or text_of(body.get("message_ts"))
    thread_ts = text_of(message.get("thread_ts")) or text_of(container.get("thread_ts")) or None
    if not (team and ts and _SLACK_ID.match(user) and _SLACK_ID.match(channel)):
        return None
    base = thread_key(workspace_of(body, team), channel, ts, thread_ts)
    key = base.nth(generation) if base.renewable else base
    return Clicked(team, channel, user, key, ts, thread_ts)


class FeedbackHandler:
    def __init__(self, service: ConversationService, access: Access) -> None:
        self._service = service
        self._access = access

    async def on_feedback(self, body: dict[str, Any], respond: AsyncRespond) -> None:
        """A 👍/👎 click: stored once per person and turn, acknowledged to the clicker."""
        actions = body.get("actions")
        action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        match = TURN_VALUE.match(text_of(action.get("value")))
        where = clicked_at(body, int(match["generation"])) if match and match["vote"] else None
        if match is None or where is None:
            _log.warning("slack feedback click without a usable turn, channel or user; ignored")
            return
        async with boundary(ephemeral(respond), f"slack feedback on {where.key}"):
            if not self._access.allows(where.channel, where.user):
                raise NotPermitted("backtrack is not enabled for you in this channel")
            vote = match["vote"]
            changed = await self._service.feedback(where.key, match["checkpoint"], where.user, vote)
            _log.info("slack feedback %s on %s (%s)", vote, where.key, "stored" if changed else "same")
            await ephemeral(respond)("Thanks, your feedback is noted." if changed
                                   else "You had already rated this answer so.")

    async def on_rewind_here(
        self, body: dict[str, Any], respond: AsyncRespond, bot_user: str | None, bot_id: str | None
    ) -> None:
        """The shortcut on a message: the conversation goes back to the turn of that answer."""
        message = _part(body, "message")
        async with boundary(ephemeral(respond), "slack rewind to here"):
            mine = (bot_user and message.get("user") == bot_user) or (
                bot_id and message.get("bot_id") == bot_id)
            found = answer_turn(message.get("blocks")) if mine else None
            if found is None:
                raise InvalidInput(
                    "Rewind to here works on backtrack's answers: the last message of an answer, "
                    "the one with the 👍/👎 buttons."
                )
            generation, checkpoint = found
            where = clicked_at(body, generation)
            if where is None:
                raise InvalidInput("Slack sent this shortcut without its channel or user.")
            if not self._access.allows(where.channel, where.user):
                raise NotPermitted("backtrack is not enabled for you in this channel")
            trigger = text_of(body.get("trigger_id"))
            if trigger and not await self._service.first_delivery(where.key, ("shortcut", trigger)):
                return
            _log.info("slack rewind to %s on %s", checkpoint, where.key)
            result = await self._service.rewind_to(where.key, checkpoint, user=where.user)
            await ephemeral(respond)(format_rewind(result))


def ephemeral(respond: AsyncRespond) -> Tell:
    async def tell(text: str) -> None:
        try:
            await respond(text=escape(text), response_type="ephemeral", replace_original=False)
        except (*SLACK_ERRORS, ValueError) as exc:  # ValueError: no response_url
            _log.error("could not answer a slack interaction: %s", type(exc).__name__)

    return tell
