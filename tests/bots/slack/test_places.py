"""Slack: who said what (names from users.info), /persona, /model and /usage per channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.people import People
from core.agents.agent import SYSTEM_PROMPT
from core.runtime import open_service
from core.settings import Settings
from tests import ROOT
from tests.bots.slack.harness import SECRET, Harness, _id, serve
from tests.fakes.openai_server import FakeOpenAI, user_texts
from tests.fakes.slack_server import FakeSlack

ADMIN = "UADMIN1"


@pytest.fixture
async def slack(make_settings: Callable[..., Settings]) -> AsyncIterator[Harness]:
    fake = FakeSlack(team=_id("T"), bot_user=_id("U"), bot_id=_id("B"))
    await fake.start()
    settings = make_settings(
        SLACK_BOT_TOKEN="xoxb-test-token", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake.api_url,
        BACKTRACK_ADMINS=ADMIN,
    )
    try:
        async with open_service(settings) as service, serve(settings, service, fake) as harness:
            yield harness
    finally:
        await fake.stop()


async def reply_by(slack: Harness, user: str, channel: str, thread_ts: str, text: str) -> None:
    event = slack.message(channel, text, thread_ts=thread_ts, user=user)
    assert await slack.deliver(slack.envelope(event)) == 200


async def test_names_from_users_info_tell_the_people_of_a_thread_apart(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    bob, channel = _id("U"), _id("C")
    slack.fake.add_user(slack.user, "Ana María")
    slack.fake.add_user(bob, "", real_name="Bob Stone")  # no display name: the real name
    ts = await slack.mention(channel, "hello")
    assert await slack.answers(channel, ts) == ["heard: hello"]  # one person: as typed
    await reply_by(slack, bob, channel, ts, "hi Ana")
    await slack.answers(channel, ts, 2)
    await slack.say(channel, "thanks", thread_ts=ts)
    texts = await slack.answers(channel, ts, 3)
    assert texts[-1] == "heard: Ana María: hello | Bob Stone: hi Ana | Ana María: thanks"
    looked_up = [c.params["user"] for c in slack.fake.made("users.info")]
    assert sorted(looked_up) == sorted([slack.user, bob]), "each name is looked up once"
    assert all(c.token == "xoxb-test-token" for c in slack.fake.made("users.info"))


async def test_an_unknown_user_is_named_by_their_id(slack: Harness, fake_llm: FakeOpenAI) -> None:
    stranger, channel = _id("U"), _id("C")
    ts = await slack.mention(channel, "first")
    await slack.answers(channel, ts)
    await reply_by(slack, stranger, channel, ts, "second")
    texts = await slack.answers(channel, ts, 2)
    assert texts[-1] == f"heard: {slack.user}: first | {stranger}: second"
    assert [c.error for c in slack.fake.made("users.info") if c.params["user"] == stranger] == ["user_not_found"]


async def test_persona_by_an_admin_applies_to_the_channel_and_others_are_refused(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    channel = _id("C")
    refused = await slack.command("persona", "Talk like a pirate.", channel)
    assert refused == "Only the bot's admins may change the persona here"
    told = await slack.command("persona", "Talk like a pirate.", channel, user=ADMIN)
    assert told.startswith("Saved; it applies from the next message")
    ts = await slack.mention(channel, "hello")
    await slack.answers(channel, ts)
    elsewhere = _id("C")
    other = await slack.mention(elsewhere, "hello")
    await slack.answers(elsewhere, other)
    prompts = [next(m["content"] for m in r["messages"] if m["role"] == "system") for r in fake_llm.requests]
    assert prompts == ["Talk like a pirate.", SYSTEM_PROMPT]
    shown = await slack.command("persona", "", channel)
    assert "Talk like a pirate." in shown and ADMIN in shown


async def test_usage_command_shows_what_the_model_reported(slack: Harness, fake_llm: FakeOpenAI) -> None:
    channel = _id("C")
    ts = await slack.mention(channel, "count me")
    await slack.answers(channel, ts)
    [(prompt, completion)] = fake_llm.reported
    text = await slack.command("usage", "", channel)
    assert f"You: today {prompt + completion:,} ({prompt:,} in, {completion:,} out)" in text
    assert user_texts(fake_llm.requests[0]) == ["count me"]


def test_the_manifest_asks_for_the_users_read_scope() -> None:
    manifest = yaml.safe_load((ROOT / "slack-manifest.yaml").read_text())
    assert "users:read" in manifest["oauth_config"]["scopes"]["bot"]


async def test_names_are_kept_for_a_while_in_a_bounded_cache(slack: Harness) -> None:
    now = [0.0]
    client = AsyncWebClient(token="xoxb-test-token", base_url=slack.fake.api_url)
    people = People(size=2, ttl=60, clock=lambda: now[0])
    ana, bob, cy = _id("U"), _id("U"), _id("U")
    for user, name in ((ana, "Ana"), (bob, "Bob"), (cy, "Cy")):
        slack.fake.add_user(user, name)
    assert [await people.name(u, client) for u in (ana, ana, bob)] == ["Ana", "Ana", "Bob"]
    await people.name(cy, client)  # a third person pushes out the least recently used (Ana)
    await people.name(ana, client)
    slack.fake.add_user(cy, "Cy B.")  # renamed: seen once the cached name expires
    assert await people.name(cy, client) == "Cy"
    now[0] = 61
    assert await people.name(cy, client) == "Cy B."
    looked_up = [c.params["user"] for c in slack.fake.made("users.info")]
    assert looked_up == [ana, bob, cy, ana, cy]
