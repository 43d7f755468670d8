"""What users read: the apology, error texts and the listings every adapter shows alike.

Wording lives apart from the service and the command table so that both can use it
without importing each other; an adapter only decides where the text goes.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.errors import BacktrackError
    from core.records import Audit, PlaceChoice, PlaceSetting, Step, Turn, Usage
    from core.storage.usage import UsageReport
    from core.types import RewindResult

__all__ = [
    "SORRY",
    "SUPERSEDED",
    "format_audit",
    "format_help",
    "format_history",
    "format_model",
    "format_persona",
    "format_rewind",
    "format_team",
    "format_turn",
    "format_usage",
    "preview",
    "progress",
    "user_message",
    "version_label",
]

SORRY = "Sorry, something went wrong."
"""What a user sees for an unexpected failure, on every platform; the details go to the log."""

_PREVIEW = 80


def user_message(error: BacktrackError) -> str:
    """What a chat user sees for an error: short, no internals."""
    text = error.message
    return text[:1].upper() + text[1:] if text else "Something went wrong."


_PROGRESS = {"research": "researching…", "analyse": "analysing…"}


def progress(tool: str | None) -> str | None:
    """What a team turn is doing, from its status (``OnStatus``): None when it is not delegating."""
    return _PROGRESS.get(tool or "")


def format_team(on: bool, changed: bool) -> str:
    """The reply to ``/team``: the conversation's mode and how to switch it."""
    if on:
        state = "Team mode is on" if changed else "Team mode is on here"
        return (f"{state}: a coordinator answers, handing research to a researcher and "
                "calculations to an analyst. /team off switches back to the single assistant.")
    state = "Team mode is off" if changed else "Team mode is off here"
    return f"{state}: the single assistant answers. /team on lets a team of agents answer."


def preview(text: str, limit: int = _PREVIEW) -> str:
    """One line of at most ``limit`` characters, for listings and notices."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


_OPEN, _CLOSE = "\u2039", "\u203a"
"""The angle quotes chat apps show around "2/3" on an answer with several versions."""


def format_turn(turn: Turn) -> str:
    who = f" ({turn.user})" if turn.user else ""
    versions = f" {_OPEN}{turn.version}/{turn.versions}{_CLOSE}" if turn.versions > 1 else ""
    return f"{turn.index}. {preview(turn.question)}{who} → {preview(turn.answer)}{versions}"


def format_version(turn: Turn, *, switched: bool) -> str:
    """``(Version 2 of 2 of turn 3; /branch lists them.)``, or the line a switch answers."""
    version, versions = turn.version, turn.versions
    if switched:
        return (f"Switched to version {version} of {versions} of turn {turn.index}: {format_turn(turn)}\n"
                "The conversation continues from there (and from what was asked after it, if anything).")
    if versions == 1:
        return f"(Turn {turn.index}.)"
    return f"(Version {version} of {versions} of turn {turn.index}; /branch lists them, /branch N switches.)"


SUPERSEDED = "\u21a9 answer to an earlier version of this message"
"""What an answer's message says once its question was edited and answered anew (then a link)."""


def version_label(turn: Turn) -> str:
    """The "2/3" between the previous/next controls under an answer with other versions."""
    return f"{turn.version}/{turn.versions}"


_HELP = (
    ("Ask", (("just write", "What is the capital of France?"),
             ("attach a file", "a PDF or an image with your message: it is read with the question"))),
    ("Look back", (("{p}history [N]", "{p}history 5: the last 5 turns"),
                   ("{p}history --all", "every branch, every rewind, the ratings"))),
    ("Branch", (("{p}rewind [N]", "{p}rewind 2: back two turns (nothing is deleted)"),
                ("{p}edit N TEXT", "{p}edit 2 What about Spain? (or edit your message)"),
                ("{p}retry", "another answer to the last question (or Try again)"),
                ("{p}branch [N]", "{p}branch 1: continue on version 1"))),
    ("Team", (("{p}team on|off", "{p}team on: a coordinator, a researcher and an analyst answer"),)),
    ("Tools", (("{p}tools", "what this place's MCP tools may do; admins: {p}tools add NAME"),
               ("{p}approve / {p}reject", "decide on an action the assistant waits to run"))),
    ("Memory", (("{p}memory", "what I remember about you (only you see it); {p}memory forget 1"),)),
    ("Settings", (("{p}persona [TEXT]", "this place's system prompt (admins change it)"),
                  ("{p}model [NAME]", "this place's model (admins pick one)"),
                  ("{p}usage", "your tokens and this place's"),
                  ("{p}new", "start a fresh conversation here; {p}forget deletes this one"))),
)


def format_help(prefix: str = "/") -> str:
    """What a person can do, grouped, one example each; ``prefix`` as commands are typed here."""
    lines = []
    for group, rows in _HELP:
        lines.append(f"{group}:")
        lines += [f"  {what.format(p=prefix)} \u2014 {example.format(p=prefix)}" for what, example in rows]
    return "\n".join(lines)


def format_versions(versions: list[Turn], current: Turn) -> str:
    """The versions of one turn, the one on the live branch marked ``*``."""
    lines = [f"Turn {current.index} has {len(versions)} versions (/branch N switches):"]
    for number, turn in enumerate(versions, 1):
        mark = "*" if turn.turn_id == current.turn_id else " "
        shown = f"{_OPEN}{number}/{len(versions)}{_CLOSE}"
        lines.append(f"{mark} {shown} {preview(turn.question)} → {preview(turn.answer)}")
    return "\n".join(lines)


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
        if b.steps and (summary := format_steps(b.steps)):
            lines.append(f"    steps: {summary}")
    for r in audit.rewinds:
        start = index.get(r.from_checkpoint_id or "", 0)
        end = index.get(r.to_checkpoint_id or "", 0)
        who = r.user or "someone"
        lines.append(f"Rewound by {who} at {r.at:%Y-%m-%d %H:%M} from turn {start} to turn {end}")
    return "\n".join(lines)


def format_steps(steps: Sequence[Step]) -> str:
    """``researcher: web_search x2 (1.2 s) → analyst: calculator (0.3 s) → coordinator (0.2 s)``.

    One entry per run of consecutive steps by one agent, with the tools it called and the
    time it took; a single agent's plain answer (one agent, no tools) needs no line.
    """
    runs: list[tuple[str, list[str], float]] = []
    for step in steps:
        if step.node == "input":
            continue  # the question arriving: not something an agent did
        # the main graph's own nodes are "the agent"; a team's are its members (coordinator, …)
        name = step.node if step.agent == "agent" and step.node not in ("agent", "tools") else step.agent
        calls = [c["name"] for m in step.added for c in m.tool_calls]
        if runs and runs[-1][0] == name:
            runs[-1][1].extend(calls)
            runs[-1] = (name, runs[-1][1], runs[-1][2] + step.duration_ms)
        else:
            runs.append((name, calls, step.duration_ms))
    if len(runs) == 1 and not runs[0][1]:
        return ""
    parts = []
    for name, calls, ms in runs:
        named = dict.fromkeys(calls)  # first-call order, once each
        counted = ", ".join(f"{c} x{calls.count(c)}" if calls.count(c) > 1 else c for c in named)
        parts.append(f"{name}{': ' + counted if counted else ''} ({ms / 1000:.1f} s)")
    return " → ".join(parts)


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
