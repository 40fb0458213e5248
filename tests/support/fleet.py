"""The fleet tests' plain helpers: what the ledger and a station's own chain hold.

The fixtures (``fleet_of``, ``sql``) are in ``tests/fleet/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable

from station.bootstrap import Station


def ledger_events(sql: Callable[..., list[tuple[object, ...]]], station: str) -> list[int]:
    """The seqs the ledger holds for ``station``, in order (duplicates would show twice)."""
    return [
        int(r[0])
        for r in sql("SELECT seq FROM fleet_events WHERE station = %s ORDER BY seq", station)
    ]


def local_seqs(station: Station) -> list[int]:
    return [e.seq for e in station.store().audit.events()]
