"""The fault matrix's fixtures live in ``cluster.py`` with its helpers."""

from __future__ import annotations

from tests.faults.cluster import two_instances

__all__ = ["two_instances"]
