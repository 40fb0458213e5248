"""The :class:`~station.ports.BatchRepository` on ``batches``, ``batch_seals``, ``batch_counts``.

``batch_counts`` is kept by triggers on ``devices`` and ``certificates`` (migration 0007), so
no write path can forget it and it commits or rolls back with the row that changed it.
"""

from __future__ import annotations

from collections.abc import Iterator

from station.adapters.store.connection import Transactions
from station.domain.records import BatchCounts, BatchRecord, SealRecord
from station.domain.states import DeviceStatus

_COLUMNS = "name, product, size, status, created_at, id"


class SqliteBatches:
    """Batches (work orders) and their seals."""

    def __init__(self, tx: Transactions) -> None:
        self._tx = tx
        self._db = tx.db

    def save(self, record: BatchRecord) -> BatchRecord:
        """Insert or update a batch by name."""
        with self._tx.write():
            self._db.execute(
                "INSERT INTO batches (name, product, size, status, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "product = excluded.product, size = excluded.size, status = excluded.status",
                [record.name, record.product, record.size, record.status, record.created_at],
            )
        saved = self.get(record.name)
        assert saved is not None  # just written in this connection
        return saved

    def get(self, name: str) -> BatchRecord | None:
        """Return the batch called ``name``."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM batches WHERE name = ?", [name]).fetchone()
        return BatchRecord(*row) if row else None

    def all(self) -> list[BatchRecord]:
        """Every batch, newest first."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM batches ORDER BY id DESC").fetchall()
        return [BatchRecord(*row) for row in rows]

    def seal(self, name: str) -> SealRecord | None:
        """The seal of batch ``name``, if it was sealed."""
        row = self._db.execute(
            "SELECT batch, count, digest, sealed_at FROM batch_seals WHERE batch = ?", [name]
        ).fetchone()
        return SealRecord(*row) if row else None

    def save_seal(self, seal: SealRecord) -> None:
        """Store the seal of a batch."""
        with self._tx.write():
            self._db.execute(
                "INSERT INTO batch_seals (batch, count, digest, sealed_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(batch) DO UPDATE SET count = excluded.count, "
                "digest = excluded.digest, sealed_at = excluded.sealed_at",
                [seal.batch, seal.count, seal.digest, seal.sealed_at],
            )

    def iter_seals(self) -> Iterator[SealRecord]:
        """Every stored seal, by batch name."""
        rows = self._db.execute(
            "SELECT batch, count, digest, sealed_at FROM batch_seals ORDER BY batch"
        ).fetchall()
        return iter([SealRecord(*row) for row in rows])

    def counts(self, name: str) -> BatchCounts:
        """Batch ``name``'s provisioned devices and logged certificates (one row, no count)."""
        row = self._db.execute(
            "SELECT batch, provisioned, certificates FROM batch_counts WHERE batch = ?", [name]
        ).fetchone()
        return BatchCounts(*row) if row else BatchCounts(name)

    def recount(self) -> Iterator[BatchCounts]:
        """Every batch's counts as its rows say now (one pass over each table's batch index)."""
        rows = self._db.execute(
            "SELECT batch, sum(provisioned), sum(certificates) FROM ("
            " SELECT batch, count(*) AS provisioned, 0 AS certificates FROM devices"
            " WHERE status = ? GROUP BY batch"
            " UNION ALL SELECT batch, 0, count(*) FROM certificates GROUP BY batch"
            ") GROUP BY batch ORDER BY batch",
            [str(DeviceStatus.PROVISIONED)],
        ).fetchall()
        return iter([BatchCounts(*row) for row in rows])

    def iter_counts(self) -> Iterator[BatchCounts]:
        """Every batch's kept counts, by batch name."""
        rows = self._db.execute(
            "SELECT batch, provisioned, certificates FROM batch_counts ORDER BY batch"
        ).fetchall()
        return iter([BatchCounts(*row) for row in rows])
