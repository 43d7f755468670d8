"""What users read: the apology, error texts and the listings every adapter shows alike.

Wording lives apart from the service and the command table so that both can use it
without importing each other; an adapter only decides where the text goes.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.errors import BacktrackError
    from core.places import PlaceChoice, PlaceSetting
    from core.types import Audit, RewindResult, Turn, Usage
    from core.usage import UsageReport

__all__ = [
    "SORRY",
    "format_audit",
    "format_history",
    "format_model",
    "format_persona",
    "format_rewind",
    "format_turn",
    "format_usage",
    "preview",
    "user_message",
]

SORRY = "Sorry, something went wrong."
"""What a user sees for an unexpected failure, on every platform; the details go to the log."""

_PREVIEW = 80


def user_message(error: BacktrackError) -> str:
    """What a chat user sees for an error: short, no internals."""
    text = error.message
    return text[:1].upper() + text[1:] if text else "Something went wrong."


def preview(text: str, limit: int = _PREVIEW) -> str:
    """One line of at most ``limit`` characters, for listings and notices."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def format_turn(turn: Turn) -> str:
    who = f" ({turn.user})" if turn.user else ""
    return f"{turn.index}. {preview(turn.question)}{who} → {preview(turn.answer)}"


def format_history(turns: list[Turn]) -> str:
    if not turns:
        return "This conversation has no turns on its current branch."
    return "\n".join(format_turn(t) for t in turns)


def format_rewind(result: RewindResult) -> str:
    n = len(result.removed)
    lines = [f"Rewound {n} turn{'s' if n != 1 else ''}. Left the live branch (still kept for audit):"]
    lines += [f"  {format_turn(t)}" for t in result.removed]
    if result.head is None:
        lines.append("The conversation is now back at its start.")
    else:
        lines.append(f"It now ends with: {format_turn(result.head)}")
    return "\n".join(lines)


def _ratings(turn: Turn) -> str:
    """`` 👍2 👎1``: how the answer was rated, if it was."""
    up = sum(f.value == "up" for f in turn.feedback)
    down = len(turn.feedback) - up
    return "".join(f" {mark}{n}" for mark, n in (("👍", up), ("👎", down)) if n)


def format_audit(audit: Audit) -> str:
    """Every branch: live turns marked ``*``, each turn's fork point, and who rewound when."""
    if not audit.turns:
        return "This conversation has no turns yet."
    index = {b.turn.checkpoint_id: b.turn.index for b in audit.turns}
    lines = ["Every turn on every branch (* = live branch):"]
    for b in audit.turns:
        after = index.get(b.parent_checkpoint_id or "", 0)
        fork = f" [after turn {after}]" if b.turn.index != after + 1 or not b.live else ""
        rated = _ratings(b.turn)
        lines.append(f"{'*' if b.live else ' '} {format_turn(b.turn)}{fork}{rated} @{b.turn.checkpoint_id}")
    for r in audit.rewinds:
        start = index.get(r.from_checkpoint_id or "", 0)
        end = index.get(r.to_checkpoint_id or "", 0)
        who = r.user or "someone"
        lines.append(f"Rewound by {who} at {r.at:%Y-%m-%d %H:%M} from turn {start} to turn {end}")
    return "\n".join(lines)


# -- per-place settings and usage ------------------------------------------------------

_SAVED = "Saved; it applies from the next message in this place."


def _origin(setting: PlaceSetting, place: str) -> str:
    """Where a setting comes from and who made it, e.g. "here, by U1 on 2026-12-02 11:50 UTC"."""
    where = "here" if setting.place == place else "for the whole server"
    by = f" by {setting.updated_by}" if setting.updated_by else ""
    return f"{where}{by} on {setting.updated_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def format_persona(choice: PlaceChoice, place: str, *, changed: bool) -> str:
    lines = [_SAVED] if changed else []
    if choice.persona is None or choice.persona_from is None:
        lines.append("This place uses the built-in persona.")
    else:
        lines += [f"Persona (set {_origin(choice.persona_from, place)}):", choice.persona]
    if not changed:
        lines.append("Admins change it with /persona <text>, or go back with /persona reset.")
    return "\n".join(lines)


def format_model(choice: PlaceChoice, place: str, allowed: tuple[str, ...], *, changed: bool) -> str:
    lines = [_SAVED] if changed else []
    origin = f"set {_origin(choice.model_from, place)}" if choice.model_from else "the default"
    lines += [f"Model: {choice.model} ({origin}).", f"Allowed: {', '.join(allowed)}."]
    if not changed:
        lines.append("Admins change it with /model <name>, or go back with /model reset.")
    return "\n".join(lines)


def _tokens(usage: Usage) -> str:
    return f"{usage.total:,} ({usage.input_tokens:,} in, {usage.output_tokens:,} out)"


def format_usage(report: UsageReport) -> str:
    lines = ["Tokens used (days and months in UTC):"]
    if report.user_today is not None and report.user_month is not None:
        lines.append(f"You: today {_tokens(report.user_today)}, this month {_tokens(report.user_month)}")
    lines.append(f"This place: today {_tokens(report.place_today)}, this month {_tokens(report.place_month)}")
    limits = ((report.user_cap, "person"), (report.place_cap, "place"))
    caps = [f"{cap:,} per {who}" for cap, who in limits if cap]
    if caps:
        lines.append(f"Daily caps: {', '.join(caps)}.")
    return "\n".join(lines)
