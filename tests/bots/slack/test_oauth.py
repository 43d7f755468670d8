"""Installing into many workspaces: Slack's OAuth v2 flow through slack-bolt, end to end.

The browser's part is played by hand: open ``/slack/install``, take the state from the
*Add to Slack* link and the cookie bolt set, then come back to ``/slack/oauth_redirect``
with the code the fake Slack issued for a workspace (``FakeSlack.install``), as Slack's
redirect does. Each workspace must then be answered with its own bot token.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from core.conversations.service import ConversationService
from core.settings import Settings
from tests.bots.slack.harness import SECRET, Harness, _id, serve
from tests.fakes.slack_server import FakeSlack, wait_until


@pytest.fixture
async def distributed(
    make_settings: Callable[..., Settings], service: ConversationService
) -> AsyncIterator[Harness]:
    fake = FakeSlack(team=_id("T"), bot_user=_id("U"), bot_id=_id("B"))
    await fake.start()
    settings = make_settings(
        SLACK_CLIENT_ID=fake.client_id, SLACK_CLIENT_SECRET=fake.client_secret, SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url, SLACK_AUTHORIZE_URL=f"{fake.url}/oauth/v2/authorize",
    )
    try:
        async with serve(settings, service, fake) as harness:
            yield harness
    finally:
        await fake.stop()


async def _start(slack: Harness) -> tuple[str, str]:
    """Open the install page: (the state in its link, the cookie that goes with it)."""
    assert slack.session is not None
    async with slack.session.get(f"{slack.url}/slack/install", allow_redirects=False) as r:
        assert r.status in (200, 302)
        page, cookie = await r.text(), r.headers["Set-Cookie"].split(";", 1)[0]
        link = r.headers.get("Location") or page
    found = re.search(r"state=([A-Za-z0-9_-]+)", link)
    assert found and "client_id=" in link and "chat%3Awrite" in link.replace(":", "%3A")
    return found[1], cookie


async def _finish(slack: Harness, query: dict[str, str], cookie: str) -> tuple[int, str]:
    assert slack.session is not None
    async with slack.session.get(f"{slack.url}/slack/oauth_redirect", params=query,
                                 headers={"Cookie": cookie}) as r:
        return r.status, await r.text()


async def _install(slack: Harness, team: str) -> None:
    state, cookie = await _start(slack)
    status, page = await _finish(slack, {"code": slack.fake.install(team, f"Team {team}"), "state": state}, cookie)
    assert status == 200 and f"backtrack now answers in Team {team}" in page


def _mention(slack: Harness, team: str, channel: str, text: str) -> dict[str, Any]:
    event = slack.message(channel, f"<@{slack.fake.bot_user}> {text}", kind="app_mention")
    event["team"] = team
    body = slack.envelope(event)
    body["team_id"] = body["context_team_id"] = team
    body["authorizations"][0]["team_id"] = team
    return body


async def _installations(service: ConversationService) -> int:
    async with service.pool.connection() as conn:
        row = await (await conn.execute("SELECT count(*) AS n FROM installations")).fetchone()
    return int(row["n"]) if row else 0


async def test_two_workspaces_install_and_each_is_answered_with_its_own_token(
    distributed: Harness, service: ConversationService
) -> None:
    slack, one, two = distributed, _id("T"), _id("T")
    await _install(slack, one)
    await _install(slack, two)
    for team in (one, two):
        channel = _id("C")
        body = _mention(slack, team, channel, f"hello from {team}")
        assert await slack.deliver(body) == 200
        [answer] = await slack.answers(channel, body["event"]["ts"])
        assert answer == f"heard: hello from {team}"
        posted = [c for c in slack.fake.calls if c.params.get("channel") == channel and c.method.startswith("chat.")]
        assert posted and {c.token for c in posted} == {slack.fake.token_of(team)}

    handled = slack.bot.handled if slack.bot else 0
    uninstall = slack.envelope({"type": "app_uninstalled", "event_ts": slack.fake.next_ts()})
    uninstall["team_id"] = uninstall["authorizations"][0]["team_id"] = one
    assert await slack.deliver(uninstall) == 200
    slack.fake.revoked.add(slack.fake.token_of(one))  # what Slack does to an uninstalled app's token

    async def removed() -> bool:
        async with service.pool.connection() as conn:
            row = await (await conn.execute(
                "SELECT count(*) AS n FROM installations WHERE workspace = %s", (one,))).fetchone()
        return bool(row and row["n"] == 0)

    for _ in range(100):  # bolt runs the uninstall listener after acknowledging
        if await removed():
            break
        await asyncio.sleep(0.05)
    assert await removed()
    channel = _id("C")
    assert await slack.deliver(_mention(slack, one, channel, "still there?")) == 200  # acknowledged...
    stray = _mention(slack, _id("T"), _id("C"), "never installed")
    assert await slack.deliver(stray) == 200
    await wait_until(lambda: (slack.bot.handled if slack.bot else 0) >= handled, what="events handled")
    await asyncio.sleep(0.3)
    assert slack.fake.thread(channel, None) == [] and not [  # ... but never answered
        c for c in slack.fake.calls if c.params.get("channel") == channel]


async def test_a_wrong_reused_or_missing_state_or_code_shows_a_page_and_stores_nothing(
    distributed: Harness, service: ConversationService
) -> None:
    slack, team = distributed, _id("T")
    before = await _installations(service)
    state, cookie = await _start(slack)
    assert (await _finish(slack, {"code": slack.fake.install(team), "state": "forged"}, cookie))[0] == 400
    status, page = await _finish(slack, {"state": state}, cookie)
    assert status == 400 and "sent no authorisation code" in page
    state, cookie = await _start(slack)
    status, page = await _finish(slack, {"error": "access_denied", "state": state}, cookie)
    assert status == 400 and "cancelled in Slack" in page
    state, cookie = await _start(slack)
    status, page = await _finish(slack, {"code": "made-up", "state": state}, cookie)
    assert status == 400 and "refused the authorisation code" in page
    state, cookie = await _start(slack)
    code = slack.fake.install(team)
    status, page = await _finish(slack, {"code": code, "state": state}, cookie)
    assert status == 200 and slack.fake.token_of(team) not in page
    status, page = await _finish(slack, {"code": slack.fake.install(team), "state": state}, cookie)
    assert status == 400 and "already used" in page  # a state works once
    assert await _installations(service) == before + 1


async def test_a_channel_shared_by_two_workspaces_of_one_organisation_is_one_conversation(
    slack: Harness,
) -> None:
    """Enterprise Grid: events carry the organisation; the key names it, not the sender's team."""
    channel, org = _id("C"), _id("E")
    first = slack.envelope(slack.message(channel, f"<@{slack.fake.bot_user}> one", kind="app_mention"))
    first["enterprise_id"] = first["authorizations"][0]["enterprise_id"] = org
    assert await slack.deliver(first) == 200
    thread = first["event"]["ts"]
    await slack.answers(channel, thread)
    other_team = _id("T")  # a member of the organisation's other workspace, in the shared channel
    follow = slack.message(channel, "two", thread_ts=thread)
    follow["team"] = other_team
    body = slack.envelope(follow)
    body["team_id"] = other_team
    body["enterprise_id"] = body["authorizations"][0]["enterprise_id"] = org
    assert await slack.deliver(body) == 200
    assert (await slack.answers(channel, thread, 2))[-1] == "heard: one | two"  # one conversation
