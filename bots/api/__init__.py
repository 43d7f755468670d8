"""``backtrack api``: the HTTP API (aiohttp) and, mounted on it, the web viewer."""

from bots.api.app import build_app, run

__all__ = ["build_app", "run"]
