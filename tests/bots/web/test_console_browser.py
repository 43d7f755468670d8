"""The newcomer's path, end to end: ``make run`` starts the console in a terminal, which prints
one URL; opening that URL, exactly as printed, in a real browser shows the console's
conversation, and the turns typed afterwards appear there too.

The console runs as a real child process under a pseudo-terminal (so it sees a tty, prints
its banner and serves its viewer), with the offline demo model and the test database.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import pty
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tests import ROOT
from tests.browser import ARTIFACTS, browser  # noqa: F401  (the session fixture)

if TYPE_CHECKING:
    from playwright.async_api import Browser

URL = re.compile(r"http://127\.0\.0\.1:\d+/ui#token=[A-Za-z0-9_-]+")


class Terminal:
    """The pty's master side: everything the console printed so far, and a way to type."""

    def __init__(self, fd: int) -> None:
        self.fd, self.seen, self.closed = fd, "", False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        os.set_blocking(fd, False)
        self._loop.add_reader(fd, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the child closed its side
            data = b""
        if not data:
            self.stop()
        self.seen += self._decoder.decode(data)
        self._changed.set()

    def stop(self) -> None:
        if not self.closed:
            self.closed = True
            self._loop.remove_reader(self.fd)

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    async def wait_for(self, pattern: str | re.Pattern[str], timeout: float = 60) -> re.Match[str]:
        deadline = self._loop.time() + timeout
        while not (found := re.search(pattern, self.seen)):
            remaining = deadline - self._loop.time()
            assert remaining > 0 and not self.closed, f"no {pattern!r} in the console's output:\n{self.seen}"
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass
        return found


async def test_the_url_the_console_prints_shows_its_conversation_in_the_browser(
    browser: Browser,  # noqa: F811  (the fixture above)
    pg_url: str, unique: Callable[[str], str], tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    thread = unique("browser")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "BACKTRACK_", "TAVILY_"))}
    master, slave = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bots", "console", "--thread", thread,
            env={**clean, "DATABASE_URL": pg_url}, cwd=ROOT, stdin=slave, stdout=slave, stderr=slave,
        )
    finally:
        os.close(slave)  # the child holds it now: its exit reads as EOF here
    term = Terminal(master)
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        url = (await term.wait_for(URL)).group(0)
        await term.wait_for(r"you> ")
        term.type("What is the capital of France?\n")
        await term.wait_for(re.escape("The capital of France is Paris."))

        page = await context.new_page()
        await page.goto(url)
        # The newest conversation, on top; the list shows its platform and title (the first question),
        # not the thread's name, which the page shows once the conversation is open.
        row = page.locator(f'#rows tr[data-key="console:{thread}"]')
        await expect(page.locator("#rows tr").first).to_have_attribute("data-key", f"console:{thread}")
        await expect(row).to_contain_text("What is the capital of France?")
        await row.click()
        await expect(page.locator("#key")).to_have_text(f"console:{thread}")
        first = page.locator("#tree li", has=page.locator(".question", has_text="What is the capital of France?"))
        await first.click()
        await expect(page.locator("#steps")).to_contain_text("model: The capital of France is Paris.")

        term.type("What is its population?\n")
        await term.wait_for(r"Paris has a population")
        # no reload: the open page follows the conversation as it grows
        second = page.locator("#tree li.live", has=page.locator(".question", has_text="What is its population?"))
        await expect(second).to_be_visible()
        await second.click()
        await expect(page.locator("#steps")).to_contain_text("model: Paris has a population")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(tmp_path / "console-viewer.png"), full_page=True)
        shutil.copy(tmp_path / "console-viewer.png", ARTIFACTS / "console-viewer.png")

        term.type("/quit\n")
        assert await asyncio.wait_for(proc.wait(), 30) == 0, term.seen
    finally:
        await context.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        term.stop()
        os.close(master)
