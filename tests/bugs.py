"""An unexpected failure on purpose, and what the outermost boundary must do with it.

No real code path is known to crash (that is the point), so these tests make one service
verb raise a plain ``RuntimeError``: the adapter around it must log it with its traceback,
count it in ``backtrack_errors_total{kind="internal"}`` and tell the user only the apology.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from core.conversations.service import ConversationService

__all__ = ["BUG", "Bug", "break_verb", "internal_errors", "logged_bug"]

BUG = "a bug with internals: /srv/backtrack/secret.py line 42"
"""The error's text: it must never reach a user."""


class Bug(RuntimeError):
    pass


def internal_errors() -> float:
    return REGISTRY.get_sample_value("backtrack_errors_total", {"kind": "internal"}) or 0.0


def break_verb(monkeypatch: pytest.MonkeyPatch, service: ConversationService, name: str) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise Bug(BUG)

    monkeypatch.setattr(service, name, broken)


def logged_bug(caplog: pytest.LogCaptureFixture) -> bool:
    """The bug was logged once, at ERROR, with its traceback."""
    found = [r for r in caplog.records if r.exc_info and r.exc_info[0] is Bug]
    return len(found) == 1 and found[0].levelname == "ERROR"
