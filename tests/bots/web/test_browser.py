"""The viewer in a real Chromium: log in, read the tree and the steps, act from the page."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bots.api import build_app
from core.conversations.service import ConversationService
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings
from tests.browser import ARTIFACTS, browser  # noqa: F401  (the session fixture)
from tests.conftest import FakeWebhook
from tests.fakes.http import serving
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

TOKEN = "browser-secret"
HOSTILE = '<script>window.pwned = 1</script><b id="bold">bold</b> & "quotes"'


@pytest.fixture
async def served(
    make_settings: Callable[..., Settings], fake_webhook: FakeWebhook
) -> AsyncIterator[tuple[str, ConversationService]]:
    settings = make_settings(API_TOKEN=TOKEN, BACKTRACK_WEBHOOK_URL=fake_webhook.url)
    async with open_service(settings) as service, serving(build_app(settings, service)) as url:
        yield url, service


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:  # noqa: F811  (the fixture above)
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    opened = await context.new_page()
    opened.on("dialog", lambda dialog: dialog.accept())  # every action asks confirm(): say yes
    try:
        yield opened
    finally:
        await context.close()


async def _log_in(page: Page, url: str) -> None:
    await page.goto(url + "/ui")
    await page.locator("#login-form").wait_for()
    await page.fill("#token", "wrong")
    await page.click("#login-form button")
    await page.get_by_text("The token was missing or wrong.").wait_for()
    await page.fill("#token", TOKEN)
    await page.click("#login-form button")
    await page.locator("#list").wait_for()


async def _open(page: Page, key: ThreadKey) -> None:
    await page.fill("#search", key.parts[-1])
    await page.locator(f'tr[data-key="{key}"]').click()
    await page.locator("#tree li").first.wait_for()


def _turn(page: Page, question: str) -> object:
    return page.locator("#tree li", has=page.locator(".question", has_text=question))


async def test_log_in_see_branches_steps_and_rewind_from_the_page(
    served: tuple[str, ConversationService], page: Page, fake_llm: FakeOpenAI,
    unique: Callable[[str], str], tmp_path: Path,
) -> None:
    url, service = served
    key = ThreadKey.api(unique("view"))
    await service.ask(key, "hello there", user="ada")
    fake_llm.queue(ToolCall("web_search", {"query": "capital of France"}), Reply("Paris."))
    await service.ask(key, "capital of France?", user="ada")
    await service.rewind(key, 1, user="ada")
    await service.ask(key, HOSTILE, user="bob")

    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    await _log_in(page, url)
    await _open(page, key)
    tree = page.locator("#tree")
    capital, hostile = _turn(page, "capital of France?"), _turn(page, "bold")
    assert await capital.get_attribute("class") == "abandoned"  # type: ignore[attr-defined]
    assert await hostile.get_attribute("class") == "live"  # type: ignore[attr-defined]
    # Both answers to turn 2's place are versions of one turn, marked as such; turn 1 has one.
    assert await capital.locator(".version").text_content() == "v1/2"  # type: ignore[attr-defined]
    assert await hostile.locator(".version").text_content() == "v2/2"  # type: ignore[attr-defined]
    assert await _turn(page, "hello there").locator(".version").count() == 0  # type: ignore[attr-defined]
    await tree.get_by_text("rewound here by ada").wait_for()
    assert await hostile.locator(".question").text_content() == HOSTILE  # type: ignore[attr-defined]
    assert await page.locator("#bold").count() == 0
    assert await page.evaluate("window.pwned") is None

    await capital.click()  # type: ignore[attr-defined]
    steps = page.locator("#steps")
    tool_step = steps.locator('li.step[data-node="tools"] .diff')
    await tool_step.get_by_text("tool result of web_search: The capital of France is Paris.").wait_for()
    await steps.locator("details summary").first.click()
    await steps.locator(".sent").first.get_by_text("user: hello there").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(tmp_path / "viewer.png"), full_page=True)
    shutil.copy(tmp_path / "viewer.png", ARTIFACTS / "viewer.png")

    await page.click("#rewind")
    await page.get_by_text("Rewound to turn #2").wait_for()
    await page.locator("#tree li.live", has=page.locator(".question", has_text="capital of France?")).wait_for()
    assert await hostile.get_attribute("class") == "abandoned"  # type: ignore[attr-defined]
    assert [t.question for t in await service.history(key)] == ["hello there", "capital of France?"]
    assert (await service.audit(key)).rewinds[-1].user == "web"
    assert problems == []  # no script error, nothing the page's CSP had to block


async def test_reject_a_pending_request_from_the_page(
    served: tuple[str, ConversationService], page: Page, fake_llm: FakeOpenAI,
    fake_webhook: FakeWebhook, unique: Callable[[str], str],
) -> None:
    url, service = served
    key = ThreadKey.api(unique("reject"))
    fake_llm.queue(ToolCall("post_to_webhook", {"message": "spam everyone"}), Reply("I did not post it."))
    paused = await service.ask(key, "post spam")
    assert paused.approval is not None

    await _log_in(page, url)
    await page.fill("#search", key.parts[-1])
    await page.locator(f'tr[data-key="{key}"]').get_by_text("waiting for approval").wait_for()
    await _open(page, key)
    await page.locator("#tree li.pending").click()
    await page.locator("#steps .pause").get_by_text("post_to_webhook").wait_for()
    await page.click("#reject")
    await page.get_by_text("Rejected the request.").wait_for()
    # The paused item shows the question too: wait for it to go, then for the finished turn.
    await page.locator("#tree li.pending").wait_for(state="detached")
    await page.locator("#tree li:not(.pending)", has=page.locator(".question", has_text="post spam")).wait_for()
    assert fake_webhook.posts == [] and await service.pending(key) is None
    assert [t.answer for t in await service.history(key)] == ["I did not post it."]


async def test_without_a_token_the_page_shows_only_the_login_form(
    served: tuple[str, ConversationService], page: Page, unique: Callable[[str], str]
) -> None:
    url, service = served
    await service.ask(ThreadKey.api(unique("hidden")), "nobody may read this")
    await page.goto(url + "/ui")
    await page.locator("#login-form").wait_for()
    assert await page.locator("#app").is_hidden()
    assert "nobody may read this" not in await page.content()
