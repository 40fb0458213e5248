"""The :class:`~station.ports.OperatorRepository` on the ``operators`` table."""

from __future__ import annotations

from typing import Any

from station.adapters.store.connection import Transactions
from station.domain.records import OperatorRecord, Role

_COLUMNS = "name, role, enabled, created_at, pin_hash, badge_hash, id"


class SqliteOperators:
    """The station's operators."""

    def __init__(self, tx: Transactions) -> None:
        self._tx = tx
        self._db = tx.db

    def get(self, name: str) -> OperatorRecord | None:
        """Return the operator called ``name``."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM operators WHERE name = ?", [name]
        ).fetchone()
        return _operator(row) if row else None

    def all(self) -> list[OperatorRecord]:
        """Every operator, by name."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM operators ORDER BY name").fetchall()
        return [_operator(row) for row in rows]

    def save(self, record: OperatorRecord) -> OperatorRecord:
        """Insert or update an operator by name."""
        with self._tx.write():
            self._db.execute(
                "INSERT INTO operators (name, role, enabled, pin_hash, badge_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET role = excluded.role, "
                "enabled = excluded.enabled, pin_hash = excluded.pin_hash, "
                "badge_hash = excluded.badge_hash",
                [
                    record.name,
                    str(record.role),
                    int(record.enabled),
                    record.pin_hash,
                    record.badge_hash,
                    record.created_at,
                ],
            )
        saved = self.get(record.name)
        assert saved is not None  # just written in this connection
        return saved

    def pin_failures(self, name: str) -> int:
        """Wrong PINs in a row for operator ``name`` (0 when none)."""
        row = self._db.execute(
            "SELECT failures FROM pin_failures WHERE operator = ?", [name]
        ).fetchone()
        return 0 if row is None else int(row[0])

    def save_pin_failures(self, name: str, failures: int) -> None:
        """Set the count of wrong PINs in a row (0 removes the row)."""
        with self._tx.write():
            if failures > 0:
                self._db.execute(
                    "INSERT INTO pin_failures (operator, failures) VALUES (?, ?) "
                    "ON CONFLICT(operator) DO UPDATE SET failures = excluded.failures",
                    [name, failures],
                )
            else:
                self._db.execute("DELETE FROM pin_failures WHERE operator = ?", [name])

    def iter_pin_failures(self) -> list[tuple[str, int]]:
        """Every (operator, wrong PINs in a row) with a count, by operator."""
        rows = self._db.execute(
            "SELECT operator, failures FROM pin_failures ORDER BY operator"
        ).fetchall()
        return [(str(name), int(failures)) for name, failures in rows]


def _operator(row: Any) -> OperatorRecord:
    return OperatorRecord(
        name=row[0],
        role=Role(row[1]),
        enabled=bool(row[2]),
        created_at=row[3],
        pin_hash=row[4],
        badge_hash=row[5],
        id=row[6],
    )
