"""``backtrack`` / ``python -m bots``: one entry point, one subcommand per adapter."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from core.errors import BacktrackError
from core.logs import configure_logging
from core.settings import Settings, load_settings

__all__ = ["main"]

# subcommand -> ("module:function", help); each function is ``async (settings, args) -> int``.
ADAPTERS: dict[str, tuple[str, str]] = {
    "console": ("bots.console:run", "chat in the terminal (also reads piped stdin)"),
    "api": ("bots.api:run", "serve the HTTP API"),
    "slack": ("bots.slack:run", "run the Slack bot (HTTP events or Socket Mode)"),
    "discord": ("bots.discord:run", "run the Discord bot"),
    "migrate": ("bots.maintenance:migrate", "apply pending database migrations and exit"),
    "prune": ("bots.maintenance:prune", "apply the retention settings now and exit"),
    "token": ("bots.maintenance:tokens", "create, list or revoke scoped API and viewer tokens"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backtrack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in ADAPTERS.items():
        sub = commands.add_parser(name, help=help_text)
        sub.set_defaults(module=module)
        if name in ("api", "slack"):
            sub.add_argument("--host", help="listen address (default: BACKTRACK_HOST or 127.0.0.1)")
            sub.add_argument("--port", type=int, help="listen port (default: BACKTRACK_PORT or 8080)")
        if name == "api":
            sub.add_argument("--workers", type=int, default=1, help="processes sharing the port (default: 1)")
            sub.add_argument("--supervisor", type=int, help=argparse.SUPPRESS)  # a worker's supervisor pid
        if name == "token":
            sub.add_argument("action", choices=("create", "list", "revoke"))
            sub.add_argument("target", nargs="?", help="create: the token's name; revoke: its id")
            sub.add_argument("--scope", action="append", default=[], metavar="SCOPE",
                             help="what it reaches, repeatable: slack, slack:TEAM, slack:TEAM:CHANNEL, "
                                  "discord, discord:GUILD, discord:GUILD:CHANNEL, discord:dm, api, console")
        if name == "console":
            sub.add_argument("--thread", default="default", help="conversation name (default: default)")
            sub.add_argument("--json", action="store_true", help="print one JSON object per input line")
            sub.add_argument("--no-ui", action="store_true", help="do not serve the web viewer on loopback")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except BacktrackError as exc:
        print(f"backtrack: {exc.message}", file=sys.stderr)
        return 2
    level = settings.log_level.upper()
    if args.command == "console" and "log_level" not in settings.model_fields_set:
        level = "WARNING"  # keep the terminal for the chat; BACKTRACK_LOG_LEVEL overrides
    configure_logging(level)  # JSON lines unless stderr is a terminal
    for noisy in ("httpx", "httpcore", "openai", "pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    module, _, function = args.module.partition(":")
    run: Callable[[Settings, Any], Coroutine[Any, Any, int]] = getattr(
        importlib.import_module(module), function
    )
    try:
        return asyncio.run(run(settings, args))
    except BacktrackError as exc:
        print(f"backtrack: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # e.g. the port is taken: a sentence, not a traceback
        print(f"backtrack: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
