"""Who may reach what over HTTP: web pages on other origins, foreign Host names, scoped tokens.

Plain HTTP here; tests/bots/web/test_browser.py runs the same attacks from a real Chromium.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bots.api import build_app
from core.conversations.service import ConversationService
from core.keys import ThreadKey
from core.settings import Settings
from tests import ROOT
from tests.fakes.http import serving

Call = Callable[..., Any]


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, *, body: Any = None, data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"data": data} if data is not None else ({"json": body} if body is not None else {})
    async with session.request(method, url, headers=headers, **kwargs) as response:
        return response.status, await response.json()


@pytest.fixture
async def loopback(settings: Settings, service: ConversationService) -> AsyncIterator[str]:
    """``backtrack api`` as a new user runs it: loopback, no API_TOKEN."""
    async with serving(build_app(settings, service, "127.0.0.1")) as url:
        yield url


async def _two_turns(service: ConversationService, key: ThreadKey) -> None:
    await service.ask(key, "one")
    await service.ask(key, "two")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Content-Type": "text/plain", "Origin": "http://evil.example"}, "forbidden_origin"),
        ({"Content-Type": "text/plain"}, "unsupported_media_type"),  # a form or a no-cors fetch
        ({"Content-Type": "application/x-www-form-urlencoded"}, "unsupported_media_type"),
        ({"Content-Type": "application/json", "Origin": "http://evil.example"}, "forbidden_origin"),
        ({"Content-Type": "application/json", "Origin": "null"}, "forbidden_origin"),  # a sandboxed page
    ],
)
async def test_a_change_a_web_page_could_send_is_refused_and_changes_nothing(
    loopback: str, service: ConversationService, unique: Callable[[str], str], headers: dict[str, str], code: str
) -> None:
    thread = unique("csrf")
    await _two_turns(service, ThreadKey.api(thread))
    body = f'{{"thread_id": "{thread}", "steps_back": 1}}'.encode()
    async with aiohttp.ClientSession() as session:
        for path in ("/api/graph/rewind", "/api/graph"):
            status, error = await _call(session, "POST", loopback + path, data=body, headers=headers)
            assert status in (403, 415) and error["error"]["code"] == code, (path, error)
        if "Origin" in headers:  # a DELETE has no body to label: its Origin is what tells
            status, error = await _call(session, "DELETE", loopback + f"/api/graph/{thread}", headers=headers)
            assert status == 403 and error["error"]["code"] == code, error
    assert [t.question for t in await service.history(ThreadKey.api(thread))] == ["one", "two"]


async def test_the_servers_own_page_and_tools_still_change_things(
    loopback: str, service: ConversationService, unique: Callable[[str], str]
) -> None:
    thread = unique("same")
    await _two_turns(service, ThreadKey.api(thread))
    own = {"Origin": loopback}  # the viewer's fetch() sends its own origin
    async with aiohttp.ClientSession() as session:
        status, _ = await _call(session, "POST", loopback + "/api/graph/rewind",
                                body={"thread_id": thread, "steps_back": 1}, headers=own)
        assert status == 200
        status, _ = await _call(session, "DELETE", loopback + f"/api/graph/{thread}")  # curl: no Origin
        assert status == 200


async def test_a_foreign_host_name_reads_nothing_dns_rebinding(
    loopback: str, service: ConversationService, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("rebind"))
    await service.ask(key, "a secret question")
    port = loopback.rsplit(":", 1)[1]
    async with aiohttp.ClientSession() as session:
        for path in ("/api/ui/conversations", "/api/graph/history", "/ui", "/healthz"):
            method = "POST" if path == "/api/graph/history" else "GET"
            async with session.request(method, loopback + path, json={"thread_id": key.parts[0]},
                                       headers={"Host": f"evil.example:{port}"}) as response:
                text = await response.text()
            assert response.status == 403 and "forbidden_host" in text, (path, text)
            assert "secret" not in text and str(key) not in text
        for name in ("localhost", "127.0.0.1", "[::1]"):  # the loopback names still work
            status, page = await _call(session, "GET", loopback + "/api/ui/conversations",
                                       headers={"Host": f"{name}:{port}"})
            assert status == 200, (name, page)


async def test_allowed_hosts_and_origins_are_the_operators_to_add(
    make_settings: Callable[..., Settings], service: ConversationService, unique: Callable[[str], str]
) -> None:
    settings = make_settings(BACKTRACK_ALLOWED_HOSTS="bot.internal", BACKTRACK_ALLOWED_ORIGINS="https://tools.example")
    thread = unique("allowed")
    await _two_turns(service, ThreadKey.api(thread))
    async with serving(build_app(settings, service, "127.0.0.1")) as url, aiohttp.ClientSession() as session:
        port = url.rsplit(":", 1)[1]
        status, _ = await _call(session, "GET", url + "/healthz", headers={"Host": f"bot.internal:{port}"})
        assert status == 200
        status, _ = await _call(session, "GET", url + "/healthz", headers={"Host": f"other.internal:{port}"})
        assert status == 403
        status, _ = await _call(session, "POST", url + "/api/graph/rewind", body={"thread_id": thread, "steps_back": 1},
                                headers={"Origin": "https://tools.example"})
        assert status == 200


# -- scoped tokens ------------------------------------------------------------------------


@pytest.fixture
async def scoped(
    make_settings: Callable[..., Settings], service: ConversationService
) -> AsyncIterator[tuple[str, str, aiohttp.ClientSession]]:
    """A token-protected API and a token for one Slack workspace (T1) only."""
    settings = make_settings(API_TOKEN="admin-secret")
    _, token = await service.access.create("team one", ["slack:T1"])
    async with serving(build_app(settings, service)) as url, aiohttp.ClientSession() as session:
        yield url, token, session


async def test_a_scoped_token_sees_and_acts_on_its_places_only(
    scoped: tuple[str, str, aiohttp.ClientSession], service: ConversationService, unique: Callable[[str], str]
) -> None:
    url, token, session = scoped
    tag = unique("S").upper().replace("-", "")[:10]
    mine, theirs = ThreadKey.slack("T1", "C" + tag, "1700.1"), ThreadKey.slack("T2", "C" + tag, "1700.1")
    for key in (mine, theirs):
        await _two_turns(service, key)
    auth = {"Authorization": f"Bearer {token}"}
    status, page = await _call(session, "GET", url + f"/api/ui/conversations?q={tag}", headers=auth)
    assert status == 200 and [c["key"] for c in page["conversations"]] == [str(mine)]
    status, _ = await _call(session, "GET", url + f"/api/ui/tree?key={mine}", headers=auth)
    assert status == 200
    # another workspace's conversation, and one that does not exist: the same refusal
    missing = ThreadKey.slack("T2", "C" + tag, "1999.9")
    refusals = []
    for key in (theirs, missing):
        status, error = await _call(session, "GET", url + f"/api/ui/tree?key={key}", headers=auth)
        refusals.append((status, error))
    assert refusals[0] == refusals[1] and refusals[0][0] == 403, refusals
    assert str(theirs) not in str(refusals[0][1])
    for path, body in (("/api/ui/rewind", {"key": str(theirs), "checkpoint_id": "x"}),
                       ("/api/ui/forget", {"key": str(theirs)})):
        status, _ = await _call(session, "POST", url + path, body=body, headers=auth)
        assert status == 403, path
    assert len(await service.history(theirs)) == 2  # nothing changed over there
    status, _ = await _call(session, "POST", url + "/api/graph", body={"query": "hi", "thread_id": "x"}, headers=auth)
    assert status == 403  # the API's own conversations are another scope
    assert (await _call(session, "GET", url + "/api/places/slack:T2:C1", headers=auth))[0] == 403
    assert (await _call(session, "GET", url + "/api/places/slack:T1:C1", headers=auth))[0] == 200
    # the operator's token reaches both
    admin = {"Authorization": "Bearer admin-secret"}
    status, page = await _call(session, "GET", url + f"/api/ui/conversations?q={tag}", headers=admin)
    assert sorted(c["key"] for c in page["conversations"]) == sorted([str(mine), str(theirs)])


async def test_tokens_are_stored_hashed_and_a_revoked_one_is_refused(
    scoped: tuple[str, str, aiohttp.ClientSession], service: ConversationService
) -> None:
    url, token, session = scoped
    async with service.pool.connection() as conn:
        rows = await (await conn.execute("SELECT * FROM api_tokens WHERE name = 'team one'")).fetchall()
    row = next(r for r in rows if r["token_hash"] == hashlib.sha256(token.encode()).hexdigest())
    assert token not in str(row)
    auth = {"Authorization": f"Bearer {token}"}
    assert (await _call(session, "GET", url + "/api/ui/conversations", headers=auth))[0] == 200
    assert await service.access.revoke(row["id"])
    status, error = await _call(session, "GET", url + "/api/ui/conversations", headers=auth)
    assert status == 401 and error["error"]["code"] == "unauthorized"
    for wrong in ("bt_guessed", "admin-secretX", ""):
        assert (await _call(session, "GET", url + "/api/ui/conversations",
                            headers={"Authorization": f"Bearer {wrong}"}))[0] == 401


async def test_the_token_command_creates_lists_and_revokes(pg_url: str) -> None:
    env = {"DATABASE_URL": pg_url, "PATH": "/usr/bin:/bin"}

    async def backtrack(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bots", "token", *args, env=env, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    code, out, _ = await backtrack("create", "cli ops", "--scope", "discord:123", "--scope", "slack")
    assert code == 0
    summary, token = out.strip().splitlines()
    assert "reaches discord:123, slack" in summary and token.startswith("bt_")
    token_id = summary.split()[2]
    code, out, _ = await backtrack("list")
    assert f"{token_id}\tcli ops\tdiscord:123,slack" in out and token not in out
    code, out, _ = await backtrack("revoke", token_id)
    assert code == 0 and "revoked" in out
    code, out, err = await backtrack("create", "bad", "--scope", "slack:lowercase")
    assert code != 0 and "invalid scope" in err and "Traceback" not in err
