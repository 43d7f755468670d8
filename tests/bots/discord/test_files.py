"""Discord attachments: fetched from the fake Discord's CDN, never from another host.

``DISCORD_FILE_HOSTS`` names the fake's own host and port; a file elsewhere (another
port) is a foreign host, and a CDN answer that redirects there is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import yarl

from bots.discord.reply import CURSOR
from core.runtime import open_service
from core.settings import Settings
from tests.bots.discord.harness import Discord, eventually, running
from tests.fakes.files import CSV, elsewhere, pdf, png
from tests.fakes.openai_server import FakeOpenAI, content_parts


@pytest.fixture
async def bot(
    world: Discord, discord_settings: Callable[..., Settings]
) -> AsyncIterator[Discord]:
    settings = discord_settings(
        DISCORD_FILE_HOSTS=yarl.URL(world.fake.url).raw_authority, BACKTRACK_ATTACHMENT_MAX_BYTES=50_000,
    )
    async with open_service(settings, maintenance=False) as service, running(settings, service):
        yield world


async def answer_in(w: Discord, channel: int) -> str:
    """The bot's one answer in ``channel`` once it is final (no streaming cursor)."""
    found = await eventually(
        lambda: next((m["content"] for m in w.fake.bot_messages(channel) if not m["content"].endswith(CURSOR)),
                     None),
        "the bot's answer",
    )
    return str(found)


def parts(fake_llm: FakeOpenAI) -> list[dict[str, Any]]:
    [request] = fake_llm.requests
    return content_parts(request)[-1]


async def test_attachments_are_fetched_from_the_cdn_and_reach_the_model(bot: Discord, fake_llm: FakeOpenAI) -> None:
    files = [bot.fake.attachment("chart.png", png(), "image/png"),
             bot.fake.attachment("minutes.pdf", pdf("Decision: ship on Friday"), "application/pdf"),
             bot.fake.attachment("cities.csv", CSV, None)]
    await bot.fake.say(bot.general, "summarise", author=bot.ada, mention_bot=True, attachments=files)
    text = await answer_in(bot, bot.general)
    assert text.startswith("heard: [attached: chart.png, minutes.pdf, cities.csv] summarise [image]")
    sent = parts(fake_llm)
    assert [p["type"] for p in sent] == ["text", "image_url", "text", "text"]
    assert sent[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "Decision: ship on Friday" in sent[2]["text"] and "Paris,France" in sent[3]["text"]
    assert bot.fake.downloads == ["chart.png", "minutes.pdf", "cities.csv"]


async def test_an_image_alone_in_an_open_channel_is_answered(bot: Discord, fake_llm: FakeOpenAI) -> None:
    gif = bot.fake.attachment("cat.gif", b"GIF89a" + b"\0" * 30, "image/gif")
    await bot.fake.say(bot.lounge, "", author=bot.ada, attachments=[gif])
    assert (await answer_in(bot, bot.lounge)).startswith("heard: [attached: cat.gif] [image]")


async def test_foreign_hosts_redirects_and_oversized_attachments_are_refused(
    bot: Discord, fake_llm: FakeOpenAI
) -> None:
    async with elsewhere(png()) as other:
        files = [
            bot.fake.attachment("outside.png", b"", "image/png", url=f"{other.url}/file.png"),
            bot.fake.attachment("moved.png", b"", "image/png", redirect=f"{other.url}/file.png"),
            bot.fake.attachment("big.csv", CSV * 2000, "text/csv"),
            bot.fake.attachment("notes.txt", b"remember the milk", "text/plain"),
        ]
        await bot.fake.say(bot.general, "read these", author=bot.ada, mention_bot=True, attachments=files)
        text = await answer_in(bot, bot.general)
        assert other.hits == 0, "the bot fetched a file from a host that is not Discord's"
    head, notes = text.rsplit("\n\n", 1)
    assert head.startswith("heard: [attached: notes.txt; not read: outside.png, moved.png, big.csv] read these")
    assert "remember the milk" in head
    assert notes.splitlines() == [
        "I could not read outside.png: it is not stored on the platform's own file servers, so it was not "
        "downloaded.",
        "I could not read moved.png: its download redirected away from the platform's file servers.",
        "I could not read big.csv: it is larger than the 50 kB limit per file.",
    ]
    assert bot.fake.downloads == ["moved.png", "notes.txt"]
