"""The :class:`~station.ports.LabelRepository` on the ``labels`` table (the print log)."""

from __future__ import annotations

from collections.abc import Iterator

from station.adapters.store.connection import Transactions
from station.domain.records import LabelRecord

_COLUMNS = "registration_id, template, printer, kind, operator, printed_at, reason, id"


class SqliteLabels:
    """The print log."""

    def __init__(self, tx: Transactions) -> None:
        self._tx = tx
        self._db = tx.db

    def save(self, record: LabelRecord) -> LabelRecord:
        """Append one print-log entry."""
        with self._tx.write():
            cursor = self._db.execute(
                "INSERT INTO labels (registration_id, template, printer, kind, reason, operator, "
                "printed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    record.registration_id,
                    record.template,
                    record.printer,
                    record.kind,
                    record.reason,
                    record.operator,
                    record.printed_at,
                ],
            )
        return LabelRecord(**{**record.__dict__, "id": int(cursor.lastrowid or 0)})

    def for_device(self, registration_id: str) -> list[LabelRecord]:
        """The print log of one device, oldest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM labels WHERE registration_id = ? ORDER BY id",
            [registration_id.lower()],
        ).fetchall()
        return [LabelRecord(*row) for row in rows]

    def iter_all(self) -> Iterator[LabelRecord]:
        """The whole print log, oldest first."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM labels ORDER BY id").fetchall()
        return iter([LabelRecord(*row) for row in rows])
