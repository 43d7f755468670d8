"""Files shared in Slack: downloaded with the bot token from the fake Slack's file host, or refused.

The fake Slack serves each file at its ``url_private_download`` only with a bearer token;
``SLACK_FILE_HOSTS`` names the fake's own host and port, so a file elsewhere (another
port) is a foreign host, and a download that redirects there is refused.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import yarl

from core.conversations.service import ConversationService
from core.runtime import open_service
from core.settings import Settings
from tests.bots.slack.harness import SECRET, Harness, _id, serve
from tests.fakes.files import CSV, elsewhere, pdf, png
from tests.fakes.openai_server import FakeOpenAI, content_parts
from tests.fakes.slack_server import FakeSlack


@pytest.fixture
async def slack(
    make_settings: Callable[..., Settings], service: ConversationService, fake_slack: FakeSlack
) -> AsyncIterator[Harness]:
    settings = make_settings(
        SLACK_BOT_TOKEN="xoxb-test-token", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake_slack.api_url,
        SLACK_FILE_HOSTS=yarl.URL(fake_slack.url).raw_authority, BACKTRACK_ATTACHMENT_MAX_BYTES=100_000,
    )
    async with serve(settings, service, fake_slack) as harness:
        yield harness


async def share(slack: Harness, channel: str, text: str, files: list[dict[str, Any]]) -> str:
    """A person mentions the bot with files, delivered as ``app_mention`` and ``file_share``."""
    full = f"<@{slack.fake.bot_user}> {text}"
    event = slack.message(channel, full, kind="app_mention")
    twin = slack.message(channel, full, ts=event["ts"])
    event["files"] = twin["files"] = files
    twin["subtype"] = "file_share"
    for body in (event, twin):
        assert await slack.deliver(slack.envelope(body)) == 200
    return str(event["ts"])


def parts(fake_llm: FakeOpenAI) -> list[dict[str, Any]]:
    [request] = fake_llm.requests
    return content_parts(request)[-1]


async def test_shared_image_pdf_and_csv_are_downloaded_with_the_token_and_reach_the_model(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    channel, image = _id("C"), png()
    files = [slack.fake.add_file("chart.png", image, "image/png"),
             slack.fake.add_file("report.pdf", pdf("Churn fell to 3 percent"), "application/pdf"),
             slack.fake.add_file("cities.csv", CSV, "text/csv")]
    ts = await share(slack, channel, "what do these say?", files)
    [answer] = await slack.answers(channel, ts)
    assert answer.startswith(
        "heard: [attached: chart.png, report.pdf, cities.csv] what do these say? [image] --- report.pdf ---"
    )
    sent = parts(fake_llm)
    assert [p["type"] for p in sent] == ["text", "image_url", "text", "text"]
    assert sent[1]["image_url"]["url"].endswith(base64.b64encode(image).decode())
    assert "Churn fell to 3 percent" in sent[2]["text"] and "Lima,Peru" in sent[3]["text"]
    assert slack.fake.downloads == [(n, "xoxb-test-token") for n in ("chart.png", "report.pdf", "cities.csv")]


async def test_a_file_without_text_in_a_direct_message_is_answered(slack: Harness, fake_llm: FakeOpenAI) -> None:
    dm = _id("D")
    event = slack.message(dm, "")
    event.update(subtype="file_share", files=[slack.fake.add_file("notes.md", b"# Plan\nship it", "text/markdown")])
    assert await slack.deliver(slack.envelope(event)) == 200
    [answer] = await slack.answers(dm, None)
    assert answer.startswith("heard: [attached: notes.md] --- notes.md ---\n# Plan\nship it")


async def test_foreign_hosts_redirects_and_oversized_files_are_refused_and_the_question_answered(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    channel = _id("C")
    async with elsewhere(png()) as other:
        files = [
            slack.fake.add_file("outside.png", b"", "image/png", url=f"{other.url}/file.png"),
            slack.fake.add_file("moved.png", b"", "image/png", redirect=f"{other.url}/file.png"),
            slack.fake.add_file("huge.csv", CSV * 5000, "text/csv"),
            slack.fake.add_file("liar.csv", CSV * 5000, "text/csv", size=100, chunked=True),
            slack.fake.add_file("fine.csv", CSV, "text/csv"),
        ]
        ts = await share(slack, channel, "count the rows", files)
        [answer] = await slack.answers(channel, ts)
        assert other.hits == 0, "the bot fetched a file from a host that is not Slack's"
    head, notes = answer.rsplit("\n\n", 1)
    assert head.startswith("heard: [attached: fine.csv; not read: outside.png, moved.png, huge.csv, liar.csv]")
    assert notes.splitlines() == [
        "I could not read outside.png: it is not stored on the platform's own file servers, so it was not "
        "downloaded.",
        "I could not read moved.png: its download redirected away from the platform's file servers.",
        "I could not read huge.csv: it is larger than the 100 kB limit per file.",
        "I could not read liar.csv: it is larger than the 100 kB limit per file.",
    ]
    assert [name for name, _ in slack.fake.downloads] == ["moved.png", "liar.csv", "fine.csv"]


async def test_with_vision_off_the_image_is_not_sent_and_history_names_it(
    make_settings: Callable[..., Settings], fake_slack: FakeSlack, fake_llm: FakeOpenAI
) -> None:
    settings = make_settings(
        SLACK_BOT_TOKEN="xoxb-test-token", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake_slack.api_url,
        SLACK_FILE_HOSTS=yarl.URL(fake_slack.url).raw_authority, BACKTRACK_VISION="false",
    )
    async with open_service(settings, maintenance=False) as service, serve(settings, service, fake_slack) as slack:
        channel = _id("C")
        ts = await share(slack, channel, "what is this?", [slack.fake.add_file("chart.png", png(), "image/png")])
        [answer] = await slack.answers(channel, ts)
        assert answer == "heard: [not read: chart.png] what is this?\n\n" \
            "I could not read chart.png: this bot's model does not read images."
        assert [p["type"] for p in parts(fake_llm)] == ["text"]
        await slack.say(channel, "!history", thread_ts=ts)
        listing = await slack.answers(channel, ts, 2)
        assert listing[-1].startswith("1. [not read: chart.png] what is this?")
