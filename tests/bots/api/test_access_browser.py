"""The loopback API against a real Chromium on a hostile page: cross-site changes and DNS rebinding.

The attacker's page is served from another origin (``evil.example``, which the browser
resolves to 127.0.0.1). It tries what any web page a user visits could: a ``text/plain``
no-cors fetch and a ``text/plain`` form posting a rewind, and reading the conversation
list; then the same page "rebound" onto the API's own port. A recorder in front of the
API proves the attempts arrived, so the test cannot pass because the browser never sent them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bots.api import build_app
from core.conversations.service import ConversationService
from core.keys import ThreadKey
from core.settings import Settings
from tests.browser import HOSTILE_HOST, browser  # noqa: F401  (the session fixture)
from tests.fakes.http import serving

if TYPE_CHECKING:
    from playwright.async_api import Browser

_ATTACK = """<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="form" method="POST" enctype="text/plain" target="sink" action="{api}/api/graph/rewind">
<input name='{{"thread_id": "{thread}", "steps_back": 1, "pad": "' value='"}}'>
</form>
<script>
(async () => {{
  const body = JSON.stringify({{thread_id: "{thread}", steps_back: 1}});
  const plain = {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}}, body}};
  await fetch("{api}/api/graph/rewind", plain).catch(() => null);
  await fetch("{api}/api/ui/rewind", plain).catch(() => null);
  let read = "blocked";
  try {{ read = await (await fetch("{api}/api/ui/conversations")).text(); }} catch (e) {{}}
  window.readResult = read;
  document.getElementById("form").submit();
  document.title = "tried";
}})();
</script></body></html>"""


async def test_a_hostile_page_cannot_rewind_or_read_a_loopback_server(
    browser: Browser,  # noqa: F811  (the fixture above)
    settings: Settings, service: ConversationService, unique: Callable[[str], str],
) -> None:
    thread = unique("browser-csrf")
    key = ThreadKey.api(thread)
    await service.ask(key, "one")
    await service.ask(key, "two")
    seen: list[tuple[str, str, int]] = []

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        seen.append((request.method, request.path, response.status))
        return response

    api_app = build_app(settings, service, "127.0.0.1")
    api_app.middlewares.insert(0, record)
    async with serving(api_app) as api:
        port = api.rsplit(":", 1)[1]

        async def attack(request: web.Request) -> web.Response:
            page = _ATTACK.format(api=api, thread=thread)
            return web.Response(text=page, content_type="text/html")

        hostile_app = web.Application()
        hostile_app.router.add_get("/", attack)
        async with serving(hostile_app) as hostile:
            context = await browser.new_context()
            page = await context.new_page()
            try:
                await page.goto(hostile.replace("127.0.0.1", HOSTILE_HOST) + "/")
                await page.wait_for_function("document.title === 'tried'")
                assert await page.evaluate("window.readResult") == "blocked"  # no CORS: nothing to read
                await page.wait_for_timeout(500)  # the form's post lands in the iframe
                refused = [(m, p, s) for m, p, s in seen if m == "POST"]
                assert ("POST", "/api/graph/rewind", 403) in refused, seen  # the fetch and the form
                assert ("POST", "/api/ui/rewind", 403) in refused, seen
                assert all(s >= 400 for _, _, s in refused), seen

                # DNS rebinding: the attacker's name now points at the API's own port
                response = await page.goto(f"http://{HOSTILE_HOST}:{port}/ui")
                assert response is not None and response.status == 403
                status, text = await page.evaluate(
                    "fetch('/api/ui/conversations').then(async r => [r.status, await r.text()])"
                )
                assert status == 403 and thread not in text and json.loads(text)["error"]["code"] == "forbidden_host"
            finally:
                await context.close()
    assert [t.question for t in await service.history(key)] == ["one", "two"]
