"""The viewer's JSON calls end to end: the real app with a token, real PostgreSQL, the fake model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bots.api import build_app
from core.conversations.service import ConversationService
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings
from tests.conftest import FakeWebhook
from tests.fakes.http import serving
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall

TOKEN = "viewer-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Viewer:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def get(self, path: str, headers: dict[str, str] | None = AUTH, **query: Any) -> tuple[int, Any]:
        async with self.session.get(self.url + path, params=query, headers=headers) as response:
            return response.status, await response.json()

    async def post(self, path: str, body: Any, headers: dict[str, str] | None = AUTH) -> tuple[int, Any]:
        async with self.session.post(self.url + path, json=body, headers=headers) as response:
            return response.status, await response.json()


@pytest.fixture
async def web_service(make_settings: Callable[..., Settings], fake_webhook: FakeWebhook) -> AsyncIterator[
        tuple[Settings, ConversationService]]:
    settings = make_settings(API_TOKEN=TOKEN, BACKTRACK_WEBHOOK_URL=fake_webhook.url)
    async with open_service(settings) as service:
        yield settings, service


@pytest.fixture
async def viewer(web_service: tuple[Settings, ConversationService]) -> AsyncIterator[Viewer]:
    settings, service = web_service
    async with serving(build_app(settings, service)) as url, aiohttp.ClientSession() as session:
        yield Viewer(session, url)


async def test_without_the_token_the_page_is_a_login_form_and_data_calls_are_refused(
    viewer: Viewer, web_service: tuple[Settings, ConversationService], unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("secret"))
    await web_service[1].ask(key, "private words")
    async with viewer.session.get(viewer.url + "/ui") as response:
        page = await response.text()
    assert response.status == 200 and 'id="login-form"' in page and "private words" not in page
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    for path, query in (("/api/ui/conversations", {}), ("/api/ui/tree", {"key": str(key)}),
                        ("/api/ui/steps", {"key": str(key), "checkpoint_id": "x"})):
        for headers in (None, {"Authorization": "Bearer wrong"}):
            status, body = await viewer.get(path, headers=headers, **query)
            assert status == 401 and body["error"]["code"] == "unauthorized"
    status, _ = await viewer.post("/api/ui/forget", {"key": str(key)}, headers=None)
    assert status == 401
    assert await web_service[1].exists(key)


async def test_the_list_searches_filters_pages_and_shows_pending_requests(
    viewer: Viewer, web_service: tuple[Settings, ConversationService], fake_llm: FakeOpenAI,
    unique: Callable[[str], str],
) -> None:
    service = web_service[1]
    tag = unique("find")
    keys = [ThreadKey.api(f"{tag}-{i}") for i in range(3)]
    for i, key in enumerate(keys):
        await service.ask(key, f"question {i} about {tag}")
    await service.ask(ThreadKey.console(f"{tag}-console"), f"console {tag}")
    fake_llm.queue(ToolCall("post_to_webhook", {"message": "hi"}))
    await service.ask(keys[0], "post hi")

    status, page = await viewer.get("/api/ui/conversations", q=tag, platform="api")
    assert status == 200 and not page["more"]
    rows = page["conversations"]
    assert [r["key"] for r in rows] == [str(k) for k in reversed(keys)]  # the last answered first
    assert [r["pending"] for r in rows] == [False, False, True]
    assert rows[0]["title"] == f"question 2 about {tag}" and rows[0]["turns"] == 1
    _, first = await viewer.get("/api/ui/conversations", q=tag, limit="2")
    _, second = await viewer.get("/api/ui/conversations", q=tag, limit="2", offset="2")
    assert first["more"] and not second["more"]
    assert len({r["key"] for r in first["conversations"] + second["conversations"]}) == 4
    _, none = await viewer.get("/api/ui/conversations", q="%_no such thing_%")
    assert none["conversations"] == []
    for limit in ("1000", "0", "-1", "ten"):
        status, bad = await viewer.get("/api/ui/conversations", limit=limit)
        assert status == 400 and bad["error"]["message"], limit


async def test_tree_marks_branches_rewinds_and_replays_and_steps_show_the_tool_result(
    viewer: Viewer, web_service: tuple[Settings, ConversationService], fake_llm: FakeOpenAI,
    unique: Callable[[str], str],
) -> None:
    service = web_service[1]
    key = ThreadKey.api(unique("tree"))
    one = (await service.ask(key, "one")).turn
    fake_llm.queue(ToolCall("web_search", {"query": "capital of France"}), Reply("Paris."))
    two = (await service.ask(key, "capital?")).turn
    await service.rewind(key, 1, user="ada")
    three = (await service.ask(key, "three")).turn
    assert one and two and three
    replayed = (await service.replay(key, three.checkpoint_id, user="bob")).turn
    assert replayed

    status, tree = await viewer.get("/api/ui/tree", key=str(key))
    assert status == 200 and tree["head_checkpoint_id"] == replayed.checkpoint_id
    turns = {t["question"] + ("*" if t["replay_of"] else ""): t for t in tree["turns"]}
    assert {q: t["live"] for q, t in turns.items()} == {"one": True, "capital?": False, "three": False, "three*": True}
    assert turns["three*"]["replay_of"] == three.checkpoint_id
    assert turns["three"]["parent_checkpoint_id"] == one.checkpoint_id
    rewind = tree["rewinds"][0]
    assert (rewind["user"], rewind["from_checkpoint_id"], rewind["to_checkpoint_id"]) == (
        "ada", two.checkpoint_id, one.checkpoint_id)

    status, found = await viewer.get("/api/ui/steps", key=str(key), checkpoint_id=two.checkpoint_id)
    assert status == 200
    tools = [s for s in found["steps"] if s["node"] == "tools"]
    assert "Paris" in tools[0]["added"][0]["content"] and tools[0]["added"][0]["type"] == "tool"

    status, _ = await viewer.post("/api/ui/rewind", {"key": str(key), "checkpoint_id": two.checkpoint_id})
    assert status == 200
    assert [t.question for t in await service.history(key)] == ["one", "capital?"]
    _, tree = await viewer.get("/api/ui/tree", key=str(key))
    assert tree["rewinds"][-1]["user"] == "web"


async def test_bad_input_gets_a_sentence_and_changes_nothing(
    viewer: Viewer, web_service: tuple[Settings, ConversationService], unique: Callable[[str], str]
) -> None:
    service = web_service[1]
    key = ThreadKey.api(unique("bad"))
    await service.ask(key, "keep me")
    cases = [
        ("/api/ui/rewind", {"key": "nonsense", "checkpoint_id": "x"}, 400),
        ("/api/ui/rewind", {"key": str(key), "checkpoint_id": "not-a-turn"}, 422),
        ("/api/ui/resolve", {"key": str(key), "approval_id": 1, "approve": "yes"}, 400),
        ("/api/ui/resolve", {"key": str(key), "approval_id": 999999, "approve": False}, 409),
        ("/api/ui/forget", {"key": "api:" + unique("nobody")}, 404),
        ("/api/ui/forget", ["not", "an", "object"], 400),
    ]
    for path, body, expected in cases:
        status, answer = await viewer.post(path, body)
        assert status == expected, (path, body, answer)
        assert answer["error"]["message"] and "Traceback" not in answer["error"]["message"]
    status, _ = await viewer.get("/api/ui/tree", key="slack:lower:case")
    assert status == 400
    assert [t.question for t in await service.history(key)] == ["keep me"]


async def test_actions_reject_a_pending_request_and_delete_the_conversation(
    viewer: Viewer, web_service: tuple[Settings, ConversationService], fake_llm: FakeOpenAI,
    fake_webhook: FakeWebhook, unique: Callable[[str], str],
) -> None:
    service = web_service[1]
    key = ThreadKey.api(unique("act"))
    fake_llm.queue(ToolCall("post_to_webhook", {"message": "spam"}), Reply("Not posted."))
    paused = await service.ask(key, "post spam")
    assert paused.approval is not None
    _, tree = await viewer.get("/api/ui/tree", key=str(key))
    assert tree["pending"]["id"] == paused.approval.id and tree["pending"]["args"] == {"message": "spam"}
    status, done = await viewer.post(
        "/api/ui/resolve", {"key": str(key), "approval_id": paused.approval.id, "approve": False})
    assert status == 200 and done["answer"] == "Not posted." and fake_webhook.posts == []
    _, tree = await viewer.get("/api/ui/tree", key=str(key))
    assert tree["pending"] is None
    steps = (await viewer.get("/api/ui/steps", key=str(key), checkpoint_id=tree["turns"][-1]["checkpoint_id"]))[1]
    paused_step = next(s for s in steps["steps"] if s["pause"])
    assert paused_step["decision"] == {"approved": False, "by": "web"}

    status, _ = await viewer.post("/api/ui/forget", {"key": str(key)})
    assert status == 200 and not await service.exists(key)
    status, _ = await viewer.get("/api/ui/tree", key=str(key))
    assert status == 404
