"""The results: one table with a column per system, the goals, and the JSON file."""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Goal", "Report", "Row", "machine"]

SYSTEMS = ("in_memory", "naive", "backtrack")
_HEADERS = ("in-memory saver", "naive", "backtrack")


@dataclass
class Row:
    name: str
    unit: str
    in_memory: float | None = None
    naive: float | None = None
    backtrack: float | None = None


@dataclass
class Goal:
    name: str
    target: str
    measured: float
    met: bool


@dataclass
class Report:
    mode: str
    machine: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, unit: str, **values: float | None) -> None:
        self.rows.append(Row(name, unit, **values))

    def goal(self, name: str, target: str, measured: float, met: bool) -> None:
        self.goals.append(Goal(name, target, measured, met))

    def table(self) -> str:
        width = max(len(r.name) + len(r.unit) + 3 for r in self.rows)
        lines = [f"{'':<{width}}" + "".join(f"{h:>17}" for h in _HEADERS)]
        lines.append("-" * len(lines[0]))
        for row in self.rows:
            label = f"{row.name} ({row.unit})" if row.unit else row.name
            cells = (getattr(row, s) for s in SYSTEMS)
            lines.append(f"{label:<{width}}" + "".join(f"{_fmt(v):>17}" for v in cells))
        lines.append("")
        lines.append("goals (backtrack):")
        for goal in self.goals:
            verdict = "met" if goal.met else "NOT met"
            lines.append(f"  {goal.name}: {_fmt(goal.measured)} (goal {goal.target}): {verdict}")
        return "\n".join(lines)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def machine(postgres_version: str) -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "cores": int(cores) if cores.isdigit() else None,
        "cpu": cpu,
        "python": platform.python_version(),
        "postgres": postgres_version,
    }
