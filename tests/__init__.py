"""backtrack's test suite; ``ROOT`` is the repository it tests."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
