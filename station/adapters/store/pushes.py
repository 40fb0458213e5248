"""The :class:`~station.ports.PushRepository`: the DPS outbox rows as stored."""

from __future__ import annotations

from collections.abc import Iterator

from station.adapters.store.connection import Transactions


class SqlitePushes:
    """Read access to the ``pushes`` table (the outbox adapter writes it)."""

    def __init__(self, tx: Transactions) -> None:
        self._db = tx.db

    def iter_all(self) -> Iterator[tuple[str, str, str]]:
        """Every outbox row as ``(batch, registration ID, state)``, in order."""
        rows = self._db.execute(
            "SELECT batch, registration_id, state FROM pushes ORDER BY id"
        ).fetchall()
        return iter([(str(b), str(r), str(s)) for b, r, s in rows])
