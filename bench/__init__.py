"""The persistence benchmark: in-memory saver vs the tutorial Postgres setup vs backtrack.

Run it with ``make bench`` (or ``python -m bench --quick``); see docs/performance.md.
"""
