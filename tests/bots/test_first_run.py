"""The first five minutes, as a newcomer spends them: the README's script through ``make run``,
then every capability of the offline demo (a sum, a ticket from the bundled MCP server that
waits for approval, a file, the team, memory) through the same console, each answer checked."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from tests import ROOT
from tests.bots.test_console import console

README = (ROOT / "README.md").read_text("utf-8")
ONCE = "(Offline demo: "


@pytest.fixture
async def empty_database(pg_url: str) -> AsyncIterator[str]:
    """A database of its own on the test server: a newcomer's, with nothing in it yet."""
    name = f"first_run_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute(f"CREATE DATABASE {name}")
        yield re.sub(r"/postgres\?", f"/{name}?", pg_url)
        await conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def in_order(text: str, *expected: str) -> None:
    """Each of ``expected`` appears in ``text``, each after the one before it."""
    at = 0
    for part in expected:
        found = text.find(part, at)
        assert found >= 0, f"{part!r} is missing after position {at} of:\n{text}"
        at = found + len(part)


async def test_the_readme_first_run_script_through_make_run(empty_database: str) -> None:
    command = next(line for line in README.splitlines() if line.startswith("printf ") and "| make run" in line)
    # a newcomer's shell: none of our settings, and not inside another make (MAKELEVEL, MAKEFLAGS)
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("OPENAI_", "BACKTRACK_", "TAVILY_", "MAKE", "MFLAGS"))}
    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", command, cwd=ROOT, env={**clean, "DATABASE_URL": empty_database},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = (s.decode() for s in await asyncio.wait_for(proc.communicate(), 300))
    assert proc.returncode == 0, err
    assert "offline demo model: set OPENAI_API_KEY for real answers" in err and "Traceback" not in err
    in_order(out, "The capital of France is Paris.",
              f"{ONCE}a real model answers any question",  # said once, on the first answer
              "\nParis has a population of about 2.1 million",
              "\n1. What is the capital of France?", "\n2. What is its population?",
              "\nRewound 1 turn. Left the live branch (still kept for audit):\n  2. What is its population?",
              "\nIt now ends with: 1. What is the capital of France?",
              "\n1. What is the capital of France?")
    second = out.split("\nParis has a population", 1)[1].split("\n1. ", 1)[0]
    assert ONCE not in second  # what a real model would do differently is said once
    assert out.rstrip().splitlines()[-1].startswith("1. What is the capital of France?")  # 2 is gone


async def test_every_capability_of_the_offline_demo_in_one_console_session(
    pg_url: str, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("Minutes of Monday\nThe report is due on Friday.\n", "utf-8")
    script = [
        "What is 17 times 23?", "What is 2 plus 2?",
        "create a ticket: printer on floor 2 is out of toner", "/approve",
        "create a ticket: spam", "/reject", "list tickets",
        "/attach notes.txt What is due?",
        "/team on", "What is 17 times 23?", "What is the population of France and Japan?", "/team off",
        "remember that I am on the payments team", "What do you know about me?", "/rewind 2",
        "What do you know about me?",
    ]
    run = await console(pg_url, f"demo-{uuid.uuid4().hex[:8]}", "\n".join(script) + "\n", "--json",
                        cwd=str(tmp_path), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                        BACKTRACK_MCP_CONFIG=str(ROOT / "mcp.demo.json"))
    assert run.returncode == 0, run.stderr
    said = {row["input"]: row["output"] for row in map(json.loads, run.stdout.splitlines())}
    assert list(said) == list(dict.fromkeys(script))
    outputs = [json.loads(line)["output"] for line in run.stdout.splitlines()]
    calc, again = outputs[0], outputs[1]
    assert calc.startswith("17 * 23 = 391 (worked out with the calculator tool)") and ONCE in calc
    assert again == "2 + 2 = 4 (worked out with the calculator tool)"  # the note is said once
    asked, created, asked_again, rejected, listed = outputs[2:7]
    assert asked == ('The assistant wants to run `create_ticket` with {"title": "printer on floor 2 is out of '
                     'toner"}. It runs on the MCP server demo. Approve or reject? (/approve or /reject)')
    assert created.startswith("Created ticket #1: printer on floor 2 is out of toner")
    assert "spam" in asked_again and rejected == "I did not run create_ticket: console rejected it."
    assert listed.startswith("#1: printer on floor 2 is out of toner") and "spam" not in listed
    tickets = (tmp_path / ".backtrack" / "demo-tickets.txt").read_text("utf-8")
    assert tickets == "printer on floor 2 is out of toner\n"  # approved once, rejected never filed
    assert said["/attach notes.txt What is due?"].startswith(
        "You attached notes.txt: 2 lines, 47 characters; it begins \u201cMinutes of Monday\u201d.")
    team_sum, team_research = outputs[9], outputs[10]
    assert team_sum.startswith("The analyst: 17 * 23 = 391 (worked out with the calculator tool).")
    in_order(team_research, "The researcher found:", "France has a population of about 68 million",
             "(source: web_search \u201cpopulation of France\u201d)", "Japan has a population",
             "The analyst: France has about 0.55 times the population of Japan")
    assert ONCE in team_sum and ONCE not in team_research
    remembered, known, _, forgotten = outputs[12:16]
    assert remembered.startswith("Remembered 'team': I am on the payments team")
    assert known == "Here is what I remember about you:\n- team: I am on the payments team"
    assert forgotten.startswith("I remember nothing about you yet")  # the rewind took the memory back
    assert "Traceback" not in run.stderr
