"""A real browser for the viewer's tests: Debian's Chromium driven by Playwright for Python.

Chromium is installed with apt on first use (``tests/apt.py``); Playwright never downloads
a browser of its own here (no ``playwright install``), it starts the system one. If the
browser cannot be installed or started, the tests that need it fail with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.apt import apt_install

if TYPE_CHECKING:
    from playwright.async_api import Browser

__all__ = ["ARTIFACTS", "HOSTILE_HOST", "browser"]

ARTIFACTS = Path(__file__).parent / "artifacts"
"""Screenshots of a test run (git-ignored)."""

HOSTILE_HOST = "evil.example"
"""A name the browser resolves to 127.0.0.1, as a DNS-rebinding attacker's domain would."""
REBIND = f"--host-resolver-rules=MAP {HOSTILE_HOST} 127.0.0.1"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import Error, async_playwright

    executable = apt_install("chromium", "chromium")
    async with async_playwright() as playwright:
        try:
            started = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", REBIND])
        except Error as exc:
            pytest.fail(f"could not start {executable}: {exc}", pytrace=False)
        try:
            yield started
        finally:
            await started.close()
