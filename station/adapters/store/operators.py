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
