"""The :class:`~station.ports.SettingsRepository` on the ``meta`` table."""

from __future__ import annotations

from station.adapters.store.connection import AUDIT_HEAD, Transactions
from station.domain.errors import StoreError


class SqliteSettings:
    """Station-wide configuration rows (the audit head lives beside them but is not one)."""

    def __init__(self, tx: Transactions) -> None:
        self._tx = tx
        self._db = tx.db

    def get(self, key: str) -> str | None:
        """A station-wide setting from ``meta``."""
        _refuse_head(key)
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def save(self, key: str, value: str) -> None:
        """Store a station-wide setting in ``meta``."""
        _refuse_head(key)
        with self._tx.write():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )

    def with_prefix(self, prefix: str) -> list[tuple[str, str]]:
        """Every setting whose key starts with ``prefix``, by key."""
        rows = self._db.execute(
            "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ? AND key != ? ORDER BY key",
            [len(prefix), prefix, AUDIT_HEAD],
        ).fetchall()
        return [(str(key), str(value)) for key, value in rows]


def _refuse_head(key: str) -> None:
    if key == AUDIT_HEAD:
        raise StoreError("the audit head is not a setting", key=key)
