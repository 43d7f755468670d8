"""The HTTP API end to end: a real aiohttp server, real PostgreSQL, the fake model."""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bots.api import build_app
from core.conversations.service import ConversationService
from core.runtime import open_service
from core.settings import Settings
from tests import ROOT
from tests.conftest import FakeWebhook
from tests.fakes.http import serving
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.processes import BacktrackProcess


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def post(self, path: str, body: Any = None, *, data: bytes | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"data": data} if data is not None else {"json": body}
        async with self.session.post(self.url + path, headers=headers, **kwargs) as response:
            return response.status, await response.json()

    async def call(self, method: str, path: str) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path) as response:
            return response.status, await response.json()


async def _serve(settings: Settings, service: ConversationService) -> AsyncIterator[Client]:
    async with serving(build_app(settings, service)) as url, aiohttp.ClientSession() as session:
        yield Client(session, url)


@pytest.fixture
async def api(settings: Settings, service: ConversationService) -> AsyncIterator[Client]:
    async for client in _serve(settings, service):
        yield client


async def test_ask_history_rewind_contract(api: Client, unique: Callable[[str], str]) -> None:
    thread = unique("c")
    status, first = await api.post("/api/graph", {"query": "one", "thread_id": thread})
    assert status == 200 and first["answer"] == "heard: one" and first["thread_id"] == thread
    status, second = await api.post("/api/graph", {"query": "two", "thread_id": thread, "user": "ada"})
    assert second["answer"] == "heard: one | two" and second["checkpoint_id"] != first["checkpoint_id"]

    status, history = await api.post("/api/graph/history", {"thread_id": thread})
    assert status == 200
    assert [(t["index"], t["question"], t["user"]) for t in history["turns"]] == [
        (1, "one", None), (2, "two", "ada")]
    assert history["turns"][1]["checkpoint_id"] == second["checkpoint_id"]

    status, rewound = await api.post("/api/graph/rewind", {"thread_id": thread, "steps_back": 1})
    assert status == 200
    assert rewound["checkpoint_id"] == first["checkpoint_id"]
    assert [t["question"] for t in rewound["removed"]] == ["two"]
    assert [t["question"] for t in rewound["turns"]] == ["one"]
    status, third = await api.post("/api/graph", {"query": "three", "thread_id": thread})
    assert third["answer"] == "heard: one | three"


async def test_feedback_is_stored_once_per_user_and_shown_on_each_turn(
    api: Client, unique: Callable[[str], str]
) -> None:
    thread = unique("fb")
    _, first = await api.post("/api/graph", {"query": "one", "thread_id": thread})
    _, second = await api.post("/api/graph", {"query": "two", "thread_id": thread})
    vote = {"thread_id": thread, "checkpoint_id": first["checkpoint_id"], "user": "ada", "value": "up"}
    assert (await api.post("/api/graph/feedback", vote))[1]["changed"] is True
    assert (await api.post("/api/graph/feedback", vote))[1]["changed"] is False
    await api.post("/api/graph/feedback", {**vote, "user": "bob", "value": "down"})
    await api.post("/api/graph/feedback", {**vote, "user": "bob", "value": "up"})

    _, history = await api.post("/api/graph/history", {"thread_id": thread})
    first_votes = [(f["user"], f["value"]) for f in history["turns"][0]["feedback"]]
    assert first_votes == [("ada", "up"), ("bob", "up")] and history["turns"][1]["feedback"] == []
    _, audit = await api.post("/api/graph/history", {"thread_id": thread, "all_branches": True})
    assert len(audit["turns"][0]["feedback"]) == 2

    status, bad = await api.post("/api/graph/feedback", {**vote, "value": "meh"})
    assert status == 400 and "up, down" in bad["error"]["message"]
    status, gone = await api.post("/api/graph/feedback", {**vote, "checkpoint_id": "nope"})
    assert status == 404 and gone["error"]["code"] == "not_found"
    assert second["checkpoint_id"] not in str(history["turns"][0]["feedback"])


async def test_rewinding_a_tool_using_turn(api: Client, fake_llm: FakeOpenAI, unique: Callable[[str], str]) -> None:
    thread = unique("tool")
    await api.post("/api/graph", {"query": "hi", "thread_id": thread})
    fake_llm.queue(ToolCall("current_datetime"), Reply("It is late."))
    status, body = await api.post("/api/graph", {"query": "what time is it?", "thread_id": thread})
    assert status == 200 and body["answer"] == "It is late."
    status, _ = await api.post("/api/graph/rewind", {"thread_id": thread, "steps_back": 1})
    assert status == 200
    status, body = await api.post("/api/graph", {"query": "again", "thread_id": thread})
    assert body["answer"] == "heard: hi | again"
    assert [m["role"] for m in fake_llm.requests[-1]["messages"]] == ["system", "user", "assistant", "user"]


async def test_healthz(api: Client) -> None:
    async with api.session.get(api.url + "/healthz") as response:
        assert response.status == 200 and (await response.json())["status"] == "ok"


BAD_REQUESTS: list[tuple[str, Any, int, str]] = [
    ("/api/graph", {"thread_id": "x"}, 400, "query"),
    ("/api/graph", {"query": "hi"}, 400, "thread_id"),
    ("/api/graph", {"query": 5, "thread_id": "x"}, 400, "query"),
    ("/api/graph", {"query": "hi", "thread_id": ["x"]}, 400, "thread_id"),
    ("/api/graph", {"query": "   ", "thread_id": "x"}, 400, "empty"),
    ("/api/graph", {"query": "hi", "thread_id": "no spaces allowed"}, 400, "thread"),
    ("/api/graph", {"query": "hi", "thread_id": "a:b"}, 400, "thread"),
    ("/api/graph", {"query": "hi", "thread_id": ""}, 400, "thread"),
    ("/api/graph", [1, 2], 400, "JSON object"),
    ("/api/graph/history", {"thread_id": "x", "limit": "3"}, 400, "limit"),
    ("/api/graph/history", {"thread_id": "x", "limit": 0}, 400, "limit"),
    ("/api/graph/rewind", {"thread_id": "x"}, 400, "steps_back"),
    ("/api/graph/rewind", {"thread_id": "x", "steps_back": True}, 400, "steps_back"),
    ("/api/graph/rewind", {"thread_id": "x", "steps_back": 1.5}, 400, "steps_back"),
]


@pytest.mark.parametrize(("path", "body", "status", "mentions"), BAD_REQUESTS)
async def test_bad_requests_get_a_clear_error_and_change_nothing(
    api: Client, unique: Callable[[str], str], path: str, body: Any, status: int, mentions: str
) -> None:
    thread = unique("bad")
    await api.post("/api/graph", {"query": "keep me", "thread_id": thread})
    if isinstance(body, dict) and body.get("thread_id") == "x":
        body = {**body, "thread_id": thread}
    got, error = await api.post(path, body)
    assert got == status
    assert mentions in error["error"]["message"]
    _, history = await api.post("/api/graph/history", {"thread_id": thread})
    assert [t["question"] for t in history["turns"]] == ["keep me"]


async def test_not_json_and_oversized_bodies(api: Client, settings: Settings) -> None:
    as_json = {"Content-Type": "application/json"}
    status, error = await api.post("/api/graph", data=b"{not json", headers=as_json)
    assert status == 400 and error["error"]["code"] == "invalid_input"
    status, error = await api.post("/api/graph", data=b'{"query": "hi", "thread_id": "t"}')  # not labelled JSON
    assert status == 415 and error["error"]["code"] == "unsupported_media_type"
    huge = b'{"query": "' + b"a" * (settings.max_body_bytes + 10) + b'", "thread_id": "big"}'
    status, error = await api.post("/api/graph", data=huge, headers=as_json)
    assert status == 413 and error["error"]["code"] == "too_large"


async def test_unknown_thread_and_impossible_rewinds(api: Client, unique: Callable[[str], str]) -> None:
    thread = unique("nf")
    status, error = await api.post("/api/graph/history", {"thread_id": thread})
    assert status == 404 and error["error"]["code"] == "not_found"
    status, _ = await api.post("/api/graph/rewind", {"thread_id": thread, "steps_back": 1})
    assert status == 404
    await api.post("/api/graph", {"query": "one", "thread_id": thread})
    for steps in (0, -3, 2):
        status, error = await api.post("/api/graph/rewind", {"thread_id": thread, "steps_back": steps})
        assert status == 422 and error["error"]["code"] == "rewind_out_of_range"
    _, history = await api.post("/api/graph/history", {"thread_id": thread})
    assert len(history["turns"]) == 1


async def test_model_failure_is_a_502_not_a_traceback(
    api: Client, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    from tests.fakes.openai_server import Fail

    fake_llm.queue(Fail(500, "secret internal detail"))
    status, error = await api.post("/api/graph", {"query": "hi", "thread_id": unique("f")})
    assert status == 502 and error["error"]["code"] == "agent_failed"
    assert "secret" not in str(error) and "Traceback" not in str(error)


async def test_bearer_token_is_required_when_set(
    make_settings: Callable[..., Settings], unique: Callable[[str], str]
) -> None:
    settings = make_settings(API_TOKEN="s3cret")
    async with open_service(settings) as service:
        async for api in _serve(settings, service):
            thread = unique("auth")
            for headers in (None, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                status, error = await api.post("/api/graph", {"query": "hi", "thread_id": thread}, headers=headers)
                assert status == 401 and error["error"]["code"] == "unauthorized"
            status, body = await api.post(
                "/api/graph", {"query": "hi", "thread_id": thread}, headers={"Authorization": "Bearer s3cret"})
            assert status == 200 and body["answer"] == "heard: hi"
            async with api.session.get(api.url + "/healthz") as response:
                assert response.status == 200


def test_refuses_a_public_address_without_a_token(pg_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": pg_url, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "bots", "api", "--host", "0.0.0.0", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert result.returncode != 0
    assert "API_TOKEN must be set" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_malformed_setting_names_the_variable(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bots", "api"], env={"BACKTRACK_PORT": "eighty", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "backtrack: invalid setting BACKTRACK_PORT: Input should be a valid integer, unable to parse string as an integer"
    ]


async def test_conversation_survives_a_sigkill_restart(
    pg_url: str, fake_llm: FakeOpenAI, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    env = {"DATABASE_URL": pg_url, "OPENAI_BASE_URL": fake_llm.url, "OPENAI_API_KEY": "k"}
    thread = unique("restart")
    first = BacktrackProcess(env, tmp_path / "api.log")
    await first.start()
    try:
        status, body = await first.post("/api/graph", {"query": "remember 42", "thread_id": thread})
        assert status == 200
    finally:
        first.signal(signal.SIGKILL)
        await first.wait_exit()
    second = BacktrackProcess(env, tmp_path / "api.log")
    await second.start()
    try:
        status, body = await second.post("/api/graph", {"query": "what number?", "thread_id": thread})
        assert status == 200 and body["answer"] == "heard: remember 42 | what number?"
    finally:
        second.kill()


async def test_approval_over_the_api(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str],
    fake_webhook: FakeWebhook,
) -> None:
    settings = make_settings(BACKTRACK_WEBHOOK_URL=fake_webhook.url)
    async with open_service(settings) as service:
        async for api in _serve(settings, service):
            thread = unique("hitl")
            fake_llm.queue(ToolCall("post_to_webhook", {"message": "hi team"}), Reply("Done."))
            status, paused = await api.post("/api/graph", {"query": "tell the team hi", "thread_id": thread, "user": "ada"})
            assert status == 200 and paused["approval"]["tool"] == "post_to_webhook"
            assert paused["approval"]["args"] == {"message": "hi team"} and paused["approval"]["status"] == "pending"
            status, error = await api.post("/api/graph", {"query": "and?", "thread_id": thread, "user": "ada"})
            assert status == 409 and error["error"]["code"] == "approval_pending"
            status, error = await api.post("/api/graph/resume", {"thread_id": thread, "approve": True, "user": "eve"})
            assert status == 403
            status, error = await api.post("/api/graph/resume", {"thread_id": thread, "approve": "yes"})
            assert status == 400 and "true or false" in error["error"]["message"]
            status, done = await api.post("/api/graph/resume", {"thread_id": thread, "approve": True, "user": "ada"})
            assert status == 200 and done["answer"] == "Done." and done["approval"] is None
            assert fake_webhook.posts == [{"text": "hi team", "content": "hi team"}]
            body = {"thread_id": thread, "approve": True, "user": "ada", "approval_id": paused["approval"]["id"]}
            status, error = await api.post("/api/graph/resume", body)
            assert status == 409 and error["error"]["code"] == "stale_approval"
            assert "already approved by ada" in error["error"]["message"]


async def test_all_branches_after_two_rewinds_and_replay_into_a_new_branch(
    api: Client, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    thread = unique("audit")
    for q in ("one", "two", "three"):
        await api.post("/api/graph", {"query": q, "thread_id": thread})
    await api.post("/api/graph/rewind", {"thread_id": thread, "steps_back": 1, "user": "ada"})
    await api.post("/api/graph", {"query": "three b", "thread_id": thread})
    await api.post("/api/graph/rewind", {"thread_id": thread, "steps_back": 2, "user": "bob"})
    await api.post("/api/graph", {"query": "two c", "thread_id": thread})

    status, audit = await api.post("/api/graph/history", {"thread_id": thread, "all_branches": True, "limit": 50})
    assert status == 200
    turns = {t["question"]: t for t in audit["turns"]}
    assert [t["question"] for t in audit["turns"]] == ["one", "two", "three", "three b", "two c"]
    assert {q for q, t in turns.items() if t["live"]} == {"one", "two c"}
    assert turns["three b"]["parent_checkpoint_id"] == turns["two"]["checkpoint_id"]
    assert turns["two c"]["parent_checkpoint_id"] == turns["one"]["checkpoint_id"]
    assert [(r["user"], r["from_checkpoint_id"], r["to_checkpoint_id"]) for r in audit["rewinds"]] == [
        ("ada", turns["three"]["checkpoint_id"], turns["two"]["checkpoint_id"]),
        ("bob", turns["three b"]["checkpoint_id"], turns["one"]["checkpoint_id"]),
    ]

    # replay "three" (an abandoned turn) from where it was asked: a new branch after "two"
    fake_llm.queue(Reply("three, again"))
    status, replayed = await api.post("/api/graph/replay", {"thread_id": thread, "checkpoint_id": turns["three"]["checkpoint_id"]})
    assert status == 200 and replayed["answer"] == "three, again"
    assert [m["content"] for m in fake_llm.requests[-1]["messages"] if m["role"] == "user"] == ["one", "two", "three"]
    _, live = await api.post("/api/graph/history", {"thread_id": thread})
    assert [t["question"] for t in live["turns"]] == ["one", "two", "three"]
    assert live["turns"][-1]["checkpoint_id"] == replayed["checkpoint_id"] != turns["three"]["checkpoint_id"]
    _, audit = await api.post("/api/graph/history", {"thread_id": thread, "all_branches": True, "limit": 50})
    assert [t["question"] for t in audit["turns"]].count("three") == 2  # the original stays intact
    status, _ = await api.post("/api/graph/replay", {"thread_id": thread, "checkpoint_id": "nope"})
    assert status == 422


async def test_checkpoints_record_platform_user_and_event(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    from core.keys import ThreadKey

    key = ThreadKey.api(unique("meta"))
    answer = await service.ask(key, "hi", user="ada", event_id="Ev123")
    async with service.pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT metadata FROM checkpoints WHERE thread_id = %s AND checkpoint_id = %s",
            (str(key), answer.checkpoint_id))).fetchone()
    assert row is not None
    assert {k: row["metadata"][k] for k in ("platform", "user", "event_id")} == {
        "platform": "api", "user": "ada", "event_id": "Ev123"}


async def test_idempotency_key_makes_a_retried_request_answer_once(
    api: Client, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    from tests.fakes.openai_server import Fail

    thread = unique("idem")
    body = {"query": "charge the card", "thread_id": thread}
    first = await api.post("/api/graph", body, headers={"Idempotency-Key": "req-1"})
    again = await api.post("/api/graph", body, headers={"Idempotency-Key": "req-1"})
    assert first == again and first[0] == 200
    assert len(fake_llm.requests) == 1
    _, history = await api.post("/api/graph/history", {"thread_id": thread})
    assert [t["question"] for t in history["turns"]] == ["charge the card"]

    fake_llm.queue(Fail(500))
    failed, _ = await api.post("/api/graph", {**body, "query": "second"}, headers={"Idempotency-Key": "req-2"})
    assert failed == 502
    status, retried = await api.post("/api/graph", {**body, "query": "second"}, headers={"Idempotency-Key": "req-2"})
    assert status == 200 and retried["answer"] == "heard: charge the card | second"

    status, error = await api.post("/api/graph", body, headers={"Idempotency-Key": "not valid!"})
    assert status == 400 and "Idempotency-Key" in error["error"]["message"]


async def test_delete_removes_the_conversation(api: Client, unique: Callable[[str], str]) -> None:
    thread, other = unique("del"), unique("keep")
    await api.post("/api/graph", {"query": "secret", "thread_id": thread})
    await api.post("/api/graph", {"query": "stays", "thread_id": other})
    status, body = await api.call("DELETE", f"/api/graph/{thread}")
    assert status == 200 and body == {"thread_id": thread, "deleted": True}
    status, _ = await api.post("/api/graph/history", {"thread_id": thread})
    assert status == 404
    status, _ = await api.call("DELETE", f"/api/graph/{thread}")
    assert status == 404
    status, error = await api.call("DELETE", "/api/graph/not%20valid")
    assert status == 400 and error["error"]["code"] == "invalid_key"
    status, body = await api.post("/api/graph", {"query": "again", "thread_id": thread})
    assert body["answer"] == "heard: again"  # nothing of the old conversation is left
    _, kept = await api.post("/api/graph/history", {"thread_id": other})
    assert [t["question"] for t in kept["turns"]] == ["stays"]


async def test_files_are_sent_as_base64_and_bad_ones_refused_before_the_turn(
    api: Client, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    thread = unique("files")
    csv = base64.b64encode(b"a,b\n1,2\n").decode()
    status, body = await api.post("/api/graph", {"query": "sum it", "thread_id": thread,
                                                 "files": [{"name": "t.csv", "data": csv}]})
    assert status == 200 and body["answer"].startswith("heard: [attached: t.csv] sum it --- t.csv ---\na,b\n1,2")
    status, body = await api.post("/api/graph", {"query": "x", "thread_id": thread,
                                                 "files": [{"name": "t.csv", "data": "not base64!"}]})
    assert status == 400 and body["error"]["message"] == 'files[0] must be an object with a "name" and base64 "data"'
    assert len(fake_llm.requests) == 1


async def test_the_team_field_puts_the_conversation_in_team_mode(
    api: Client, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    thread = unique("team")
    status, error = await api.post("/api/graph", {"query": "x", "thread_id": thread, "team": "yes"})
    assert status == 400 and "team" in error["error"]["message"]
    fake_llm.queue_for("coordinator", ToolCall("research", {"task": "look"}), Reply("The team's answer."))
    fake_llm.queue_for("researcher", Reply("Found it."))
    status, body = await api.post("/api/graph", {"query": "q", "thread_id": thread, "team": True})
    assert status == 200 and body["answer"] == "The team's answer."
    status, body = await api.post("/api/graph", {"query": "next", "thread_id": thread})  # it stays on
    assert body["answer"] == "heard: q | next" and len(fake_llm.requests_of("coordinator")) == 3
    status, body = await api.post("/api/graph", {"query": "last", "thread_id": thread, "team": False})
    assert body["answer"] == "heard: q | next | last" and len(fake_llm.requests_of("coordinator")) == 3


async def test_all_branches_with_steps_lists_each_step_its_tool_calls_and_what_it_returned(
    api: Client, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    thread = unique("steps")
    fake_llm.queue(ToolCall("web_search", {"query": "capital of France"}), Reply("Paris."))
    await api.post("/api/graph", {"query": "capital of France?", "thread_id": thread})
    body = {"thread_id": thread, "all_branches": True, "steps": True}
    status, audit = await api.post("/api/graph/history", body)
    assert status == 200
    steps = audit["turns"][0]["steps"]
    assert [s["agent"] for s in steps] == ["agent"] * len(steps)
    assert {"name": "web_search", "args": {"query": "capital of France"}} in [c for s in steps for c in s["tool_calls"]]
    assert steps[-1]["returned"] == "Paris." and all(s["duration_ms"] >= 0 for s in steps)
    _, plain = await api.post("/api/graph/history", {"thread_id": thread, "all_branches": True})
    assert "steps" not in plain["turns"][0]  # only when asked: reading steps costs queries


async def test_edit_retry_versions_and_branch(api: Client, unique: Callable[[str], str]) -> None:
    thread = unique("v")
    for query in ("one", "two"):
        await api.post("/api/graph", {"query": query, "thread_id": thread})
    status, edited = await api.post("/api/graph/edit", {"thread_id": thread, "index": 2, "query": "TWO"})
    assert status == 200 and edited["answer"] == "heard: one | TWO"
    assert (edited["version"], edited["versions"]) == (2, 2)
    status, retried = await api.post("/api/graph/retry", {"thread_id": thread, "user": "ada"})
    assert status == 200 and retried["answer"] == "heard: one | TWO" and retried["versions"] == 3
    status, found = await api.post("/api/graph/versions", {"thread_id": thread, "checkpoint_id": retried["checkpoint_id"]})
    assert [(t["question"], t["version"], t["versions"]) for t in found["versions"]] == [
        ("two", 1, 3), ("TWO", 2, 3), ("TWO", 3, 3)]
    first = found["versions"][0]["checkpoint_id"]
    status, switched = await api.post("/api/graph/branch", {"thread_id": thread, "checkpoint_id": first})
    assert status == 200 and switched["checkpoint_id"] == first
    assert [(t["question"], t["version"]) for t in switched["turns"]] == [("one", 1), ("two", 1)]
    status, refused = await api.post("/api/graph/edit", {"thread_id": thread, "index": 7, "query": "x"})
    assert status == 422 and refused["error"]["code"] == "rewind_out_of_range"
    status, refused = await api.post("/api/graph/branch", {"thread_id": thread, "checkpoint_id": "nope"})
    assert status == 422
    status, history = await api.post("/api/graph/history", {"thread_id": thread})
    assert [t["question"] for t in history["turns"]] == ["one", "two"]  # the refusals changed nothing
