"""The Slack scenario harness: the fake Slack, the bot's aiohttp app, signed deliveries, and their fixtures."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from bots.slack.app import EVENTS_PATH, SlackBot
from bots.slack.replies import PLACEHOLDER, PREVIEW_MARK
from bots.slack.stream import Clock
from core.conversations.service import ConversationService
from core.runtime import open_service
from core.settings import Settings
from tests.conftest import FakeWebhook
from tests.fakes.http import serving
from tests.fakes.openai_server import Fail, FakeOpenAI, Reply, ToolCall
from tests.fakes.slack_server import FakeSlack, Posted, wait_until

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
FIXTURES = Path(__file__).parent / "fixtures"


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:10].upper()


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def sign(body: str, timestamp: int, secret: str = SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class Harness:
    """Sends what Slack would send to one running bot, and reads what users would see."""

    def __init__(
        self, fake: FakeSlack, bot: SlackBot | None = None, url: str = "",
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.fake = fake
        self.bot = bot
        self.url = url
        self.session = session
        self.user = _id("U")
        fake.add_user(self.user, self.user)  # a member of the workspace, as users.info sees them

    # -- building payloads -----------------------------------------------------------

    def envelope(self, event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        body = fixture("event_callback")
        body["team_id"] = body["context_team_id"] = self.fake.team
        body["authorizations"][0].update(team_id=self.fake.team, user_id=self.fake.bot_user)
        body["event_id"] = event_id or _id("Ev")
        body["event_time"] = int(time.time())
        body["event"] = event
        return body

    def message(
        self, channel: str, text: str, *, thread_ts: str | None = None, user: str | None = None,
        kind: str = "message", ts: str | None = None,
    ) -> dict[str, Any]:
        event = fixture(kind)
        ts = ts or self.fake.next_ts()
        event.update(text=text, user=user or self.user, ts=ts, event_ts=ts,
                     team=self.fake.team, channel=channel)
        event["blocks"] = []
        if channel.startswith("D") and kind == "message":
            event["channel_type"] = "im"
        if thread_ts:
            event["thread_ts"] = thread_ts
        return event

    # -- delivering ------------------------------------------------------------------

    async def deliver(
        self, body: dict[str, Any], *, retry: int | None = None, secret: str = SECRET,
        age: int = 0, url: str | None = None,
    ) -> int:
        assert self.session is not None
        raw = json.dumps(body)
        timestamp = int(time.time()) - age
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": sign(raw, timestamp, secret),
        }
        if retry is not None:
            headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
        async with self.session.post((url or self.url) + EVENTS_PATH, data=raw, headers=headers) as r:
            return r.status

    async def say(self, channel: str, text: str, *, thread_ts: str | None = None) -> str:
        """A person's message (no mention); returns its ts."""
        event = self.message(channel, text, thread_ts=thread_ts)
        assert await self.deliver(self.envelope(event)) == 200
        return str(event["ts"])

    async def mention(self, channel: str, text: str, *, thread_ts: str | None = None) -> str:
        """A mention, delivered as Slack does: as ``app_mention`` and as ``message``."""
        full = f"<@{self.fake.bot_user}> {text}"
        event = self.message(channel, full, thread_ts=thread_ts, kind="app_mention")
        twin = self.message(channel, full, thread_ts=thread_ts, ts=event["ts"])
        statuses = await asyncio.gather(
            self.deliver(self.envelope(event)), self.deliver(self.envelope(twin))
        )
        assert list(statuses) == [200, 200]
        return str(event["ts"])

    def edit(
        self, channel: str, ts: str, before: str, after: str, *, thread_ts: str | None = None,
        user: str | None = None, edited: bool = True,
    ) -> dict[str, Any]:
        """The ``message_changed`` event of a person's message ``ts`` whose text went from
        ``before`` to ``after`` (``edited=False``: Slack's own change, such as an unfurl)."""
        event = fixture("message_changed")
        who, now = user or self.user, self.fake.next_ts()
        event.update(channel=channel, ts=now, event_ts=now)
        for part, text in ((event["message"], after), (event["previous_message"], before)):
            part.update(text=text, user=who, ts=ts)
            if thread_ts:
                part["thread_ts"] = thread_ts
        event["message"]["team"] = self.fake.team
        if edited:
            event["message"]["edited"] = {"user": who, "ts": now}
        else:
            del event["message"]["edited"]
        if channel.startswith("D"):
            event["channel_type"] = "im"
        return event

    async def command(self, name: str, text: str, channel: str, user: str | None = None) -> str:
        """Run a slash command; returns the text of the (single) reply to its response_url."""
        form = fixture("slash_command")
        response_url = self.fake.response_url()
        form.update(team_id=self.fake.team, channel_id=channel, user_id=user or self.user,
                    command=f"/{name}", text=text, response_url=response_url)
        assert await self.post_form(form) == 200
        await wait_until(lambda: self.fake.responded(response_url), what=f"/{name} reply")
        [reply] = self.fake.responded(response_url)
        assert reply["response_type"] == "ephemeral"
        return str(reply["text"])

    async def click(self, message: Posted, label: str, *, user: str | None = None) -> str:
        """Click the button ``label`` under a bot message; returns the click's response_url."""
        [(block_id, button)] = [
            (b["block_id"], e) for b in message.blocks if b["type"] == "actions"
            for e in b["elements"] if e["text"]["text"] == label
        ]
        body = fixture("block_actions")
        who, team = user or self.user, self.fake.team
        body["user"].update(id=who, username=who.lower(), name=who.lower(), team_id=team)
        body["team"]["id"] = body["message"]["team"] = team
        body["channel"]["id"] = message.channel
        body["container"].update(message_ts=message.ts, channel_id=message.channel)
        body["message"].update(user=self.fake.bot_user, bot_id=self.fake.bot_id, ts=message.ts,
                               text=message.text, blocks=copy.deepcopy(message.blocks))
        for part in (body["container"], body["message"]):
            part["thread_ts"] = message.thread_ts
        if message.thread_ts is None:  # a DM's top level: Slack sends no thread fields
            for part in (body["container"], body["message"]):
                del part["thread_ts"]
            del body["message"]["parent_user_id"]
        body["trigger_id"] = f"{time.time_ns()}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}"
        body["response_url"] = self.fake.response_url()
        action = {k: button[k] for k in ("action_id", "text", "value", "style", "type") if k in button}
        body["actions"] = [{**action, "block_id": block_id, "action_ts": f"{time.time():.6f}"}]
        assert await self.post_form({"payload": json.dumps(body)}) == 200
        return str(body["response_url"])

    async def post_form(self, form: dict[str, Any]) -> int:
        """POST a form-encoded, signed request (slash commands, interactivity)."""
        assert self.session is not None
        raw = urlencode(form)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": sign(raw, timestamp),
        }
        async with self.session.post(self.url + EVENTS_PATH, data=raw, headers=headers) as r:
            return r.status

    # -- reading ---------------------------------------------------------------------

    async def told(self, response_url: str) -> str:
        """The one ephemeral answer a click got, only for the clicker."""
        await wait_until(lambda: self.fake.responded(response_url), what="an ephemeral answer")
        [reply] = self.fake.responded(response_url)
        assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
        return str(reply["text"])

    async def answers(self, channel: str, thread_ts: str | None, count: int = 1) -> list[str]:
        """The bot's messages in a thread once ``count`` of them are final."""

        def done() -> bool:
            texts = self.fake.thread(channel, thread_ts)
            previews = [t for t in texts if t == PLACEHOLDER or t.endswith(PREVIEW_MARK)]
            return len(texts) >= count and not previews and not self.fake.streaming()

        await wait_until(done, what=f"{count} answer(s) in {channel}/{thread_ts}")
        return self.fake.thread(channel, thread_ts)

    async def settled(self, handled: int) -> None:
        bot = self.bot
        assert bot is not None
        await wait_until(lambda: bot.handled >= handled, what=f"{handled} handled events")


@asynccontextmanager
async def serve(
    settings: Settings, service: ConversationService, fake: FakeSlack, clock: Clock = time.monotonic
) -> AsyncIterator[Harness]:
    bot = SlackBot(settings, service, clock)
    async with serving(bot.web_app(settings.max_body_bytes), access_log=None) as url, \
            aiohttp.ClientSession() as session:
        yield Harness(fake, bot, url, session)


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(team=_id("T"), bot_user=_id("U"), bot_id=_id("B"))
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def slack_settings(make_settings: Callable[..., Settings], fake_slack: FakeSlack) -> Settings:
    return make_settings(
        SLACK_BOT_TOKEN="xoxb-test-token",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake_slack.api_url,
    )


@pytest.fixture
async def slack(
    slack_settings: Settings, service: ConversationService, fake_slack: FakeSlack
) -> AsyncIterator[Harness]:
    async with serve(slack_settings, service, fake_slack) as harness:
        yield harness


# -- approvals (human in the loop) --

DEPLOY = {"message": "deploy at 5pm"}
POSTED = Reply("Posted it.")
REQUEST = 'The assistant wants to run `post_to_webhook` with {"message": "deploy at 5pm"}. Approve or reject?'


@pytest.fixture
def hitl_settings(
    make_settings: Callable[..., Settings], fake_slack: FakeSlack, fake_webhook: FakeWebhook
) -> Settings:
    return make_settings(
        SLACK_BOT_TOKEN="xoxb-test-token",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake_slack.api_url,
        BACKTRACK_WEBHOOK_URL=fake_webhook.url,
    )


@pytest.fixture
async def hitl(hitl_settings: Settings, fake_slack: FakeSlack) -> AsyncIterator[Harness]:
    async with open_service(hitl_settings) as service, serve(hitl_settings, service, fake_slack) as harness:
        yield harness


async def ask_to_post(
    slack: Harness, fake_llm: FakeOpenAI, channel: str, then: Reply | Fail = POSTED
) -> tuple[str | None, Posted]:
    """Ask for something the model answers with the gated tool; returns the thread and the request."""
    fake_llm.queue(ToolCall("post_to_webhook", DEPLOY), then)
    if channel.startswith("D"):
        await slack.say(channel, "announce the deploy")
        thread = None
    else:
        thread = await slack.mention(channel, "announce the deploy")
    assert await slack.answers(channel, thread) == [REQUEST]
    [request] = slack.fake.posted(channel, thread)
    return thread, request


def decided(verb: str, user: str) -> str:
    mark = ":white_check_mark:" if verb == "Approved" else ":no_entry_sign:"
    return f"{REQUEST}\n\n{mark} {verb} by <@{user}>"
