"""``backtrack prune`` removes exactly what is past each retention window, and nothing else.

Rows are aged by moving their timestamps back (the database's clock is the one retention
reads), one just past and one just inside each window.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings


async def _rows(conn: Any, sql: str, *args: Any) -> list[dict[str, Any]]:
    return list(await (await conn.execute(sql, args)).fetchall())


async def test_prune_removes_exactly_what_is_past_each_window(
    make_settings: Callable[..., Settings], unique: Callable[[str], str]
) -> None:
    settings = make_settings(
        BACKTRACK_USAGE_DETAIL_DAYS="90", BACKTRACK_FEEDBACK_DAYS="30", BACKTRACK_AUDIT_DAYS="60",
        BACKTRACK_FILE_GRACE_HOURS="24", BACKTRACK_EVENT_TTL_HOURS="48",
    )
    key = ThreadKey.api(unique("prune"))
    place = key.scopes[0]
    today = datetime.now(UTC).date()
    async with open_service(settings, maintenance=False) as service:
        first = await service.ask(key, "one")
        second = await service.ask(key, "two")
        assert first.turn and second.turn
        await service.feedback(key, first.checkpoint_id, "old-rater", "up")
        await service.feedback(key, second.checkpoint_id, "new-rater", "down")
        await service.rewind(key, 1, user="old-rewinder")
        await service.rewind_to(key, second.checkpoint_id, user="new-rewinder")
        old_token, _ = await service.access.create(unique("old-token"), ["api"])
        new_token, _ = await service.access.create(unique("new-token"), ["api"])
        active_token, _ = await service.access.create(unique("active-token"), ["api"])
        await service.access.revoke(old_token.id)
        await service.access.revoke(new_token.id)
        tag = unique("ev")
        async with service.pool.connection() as conn:
            for day, user, tokens in ((today - timedelta(days=100), "U1", 10), (today - timedelta(days=100), "U2", 5),
                                      (today - timedelta(days=100), "", 1), (today - timedelta(days=80), "U1", 7)):
                await conn.execute(
                    "INSERT INTO token_usage (day, platform, place, user_id, model, input_tokens, output_tokens)"
                    " VALUES (%s, 'api', %s, %s, 'm', %s, 1)", (day, place, user, tokens))
            past = "now() - interval '{}'"
            await conn.execute(f"UPDATE feedback SET created_at = {past.format('31 days')} WHERE user_id = 'old-rater'")
            await conn.execute(f"UPDATE feedback SET created_at = {past.format('29 days')} WHERE user_id = 'new-rater'")
            await conn.execute(f"UPDATE rewinds SET created_at = {past.format('61 days')} WHERE user_id = 'old-rewinder'")
            await conn.execute(f"UPDATE rewinds SET created_at = {past.format('59 days')} WHERE user_id = 'new-rewinder'")
            await conn.execute(f"UPDATE api_tokens SET revoked_at = {past.format('61 days')} WHERE id = %s", (old_token.id,))
            await conn.execute(f"UPDATE api_tokens SET created_at = {past.format('400 days')} WHERE id = %s",
                               (active_token.id,))
            for name, age in (("old", "49 hours"), ("new", "47 hours")):
                await conn.execute("INSERT INTO processed_events (event_id, seen_at) VALUES (%s, now() - %s::interval)",
                                   (f"{tag}-{name}", age))
            for name, age in (("old", "25 hours"), ("new", "23 hours")):
                await conn.execute(
                    "INSERT INTO files (sha256, mime, size, data, created_at) VALUES (%s, 'text/plain', 1, 'x',"
                    " now() - %s::interval)", (f"{tag}-{name}", age))

        report = await service.prune()

        async with service.pool.connection() as conn:
            usage = await _rows(conn, "SELECT day, user_id, input_tokens FROM token_usage WHERE place = %s"
                                      " ORDER BY day, user_id", place)
            raters = await _rows(conn, "SELECT f.user_id FROM feedback f JOIN turns t ON t.id = f.turn_id"
                                       " WHERE t.conversation_key = %s", str(key))
            rewinders = await _rows(conn, "SELECT user_id FROM rewinds WHERE conversation_key = %s", str(key))
            token_rows = await _rows(conn, "SELECT id FROM api_tokens WHERE id = ANY(%s)",
                                 [old_token.id, new_token.id, active_token.id])
            events = await _rows(conn, "SELECT event_id FROM processed_events WHERE event_id LIKE %s", f"{tag}-%")
            files = await _rows(conn, "SELECT sha256 FROM files WHERE sha256 LIKE %s", f"{tag}-%")
    # usage: the two people's rows of 100 days ago are one place total (10 + 5 + the 1 already there)
    assert [(r["day"], r["user_id"], r["input_tokens"]) for r in usage][:2] == [
        (today - timedelta(days=100), "", 16), (today - timedelta(days=80), "U1", 7)]
    assert [r["user_id"] for r in raters] == ["new-rater"]
    assert [r["user_id"] for r in rewinders] == ["new-rewinder"]
    assert sorted(r["id"] for r in token_rows) == sorted([new_token.id, active_token.id])  # active ones never go
    assert [r["event_id"] for r in events] == [f"{tag}-new"]
    assert [r["sha256"] for r in files] == [f"{tag}-new"]
    assert report.usage_rows >= 2 and report.feedback >= 1 and report.audit >= 2
    assert report.events >= 1 and report.files >= 1
    # the conversation itself is whole: its turns are not the ratings' or the audit's to take
    async with open_service(settings, maintenance=False) as service:
        assert [t.question for t in await service.history(key)] == ["one", "two"]


async def test_without_the_optional_windows_ratings_and_the_audit_stay(
    make_settings: Callable[..., Settings], unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("keep"))
    async with open_service(make_settings(), maintenance=False) as service:
        answer = await service.ask(key, "one")
        await service.feedback(key, answer.checkpoint_id, "rater", "up")
        await service.rewind(key, 1, user="rewinder")
        async with service.pool.connection() as conn:
            assert answer.turn is not None
            await conn.execute("UPDATE feedback SET created_at = now() - interval '3000 days' WHERE turn_id = %s",
                               (answer.turn.turn_id,))
            await conn.execute("UPDATE rewinds SET created_at = now() - interval '3000 days'"
                               " WHERE conversation_key = %s", (str(key),))
        await service.prune()
        audit = await service.audit(key)
        assert [r.user for r in audit.rewinds] == ["rewinder"] and audit.turns[0].turn.feedback
