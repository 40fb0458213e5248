"""The :class:`~station.ports.BatchRepository` on ``batches`` and ``batch_seals``."""

from __future__ import annotations

from collections.abc import Iterator

from station.adapters.store.connection import Transactions
from station.domain.records import BatchRecord, SealRecord

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
