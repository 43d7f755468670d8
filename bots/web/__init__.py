"""The time-travel viewer: a static page at ``/ui`` and its JSON calls under ``/api/ui/``."""

from __future__ import annotations

from bots.web.routes import add_viewer

__all__ = ["add_viewer"]
