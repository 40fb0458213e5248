"""The :class:`~station.ports.CertificateRepository` on the ``certificates`` table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from station.adapters.store.connection import Transactions
from station.domain.records import CertificateRecord

_COLUMNS = (
    "serial_number, registration_id, thumbprint_sha256, certificate_pem, not_before, not_after, "
    "profile, status, issued_at, batch, job_id, void_reason, id"
)


class SqliteCertificates:
    """The issuance log."""

    def __init__(self, tx: Transactions) -> None:
        self._tx = tx
        self._db = tx.db

    def save(self, record: CertificateRecord) -> None:
        """Insert or update (by serial number) one issuance-log entry."""
        values = {
            "serial_number": record.serial_number.upper(),
            "registration_id": record.registration_id,
            "thumbprint_sha256": record.thumbprint_sha256,
            "certificate_pem": record.certificate_pem,
            "not_before": record.not_before,
            "not_after": record.not_after,
            "profile": record.profile,
            "status": record.status,
            "issued_at": record.issued_at,
            "batch": record.batch,
            "job_id": record.job_id,
            "void_reason": record.void_reason,
        }
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in values if c != "serial_number")
        with self._tx.write():
            self._db.execute(
                f"INSERT INTO certificates ({columns}) VALUES ({marks}) "
                f"ON CONFLICT(serial_number) DO UPDATE SET {updates}",
                list(values.values()),
            )

    def get(self, serial_number: str) -> CertificateRecord | None:
        """Return one issuance-log entry by serial number (hex, any case)."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM certificates WHERE serial_number = ?",
            [serial_number.upper()],
        ).fetchone()
        return _certificate(row) if row else None

    def count(self, *, batch: str = "", status: str = "") -> int:
        """Count issuance-log entries for a batch and/or a status."""
        clauses, params = [], []
        if batch:
            clauses.append("batch = ?")
            params.append(batch)
        if status:
            clauses.append("status = ?")
            params.append(status)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return int(
            self._db.execute(f"SELECT count(*) FROM certificates{where}", params).fetchone()[0]
        )

    def for_device(self, registration_id: str) -> list[CertificateRecord]:
        """Every issuance-log entry for one registration ID, oldest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM certificates WHERE registration_id = ? ORDER BY id",
            [registration_id.lower()],
        ).fetchall()
        return [_certificate(row) for row in rows]

    def iter_all(self) -> Iterator[CertificateRecord]:
        """The issuance log in order, streamed in pages."""
        last = 0
        while True:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM certificates WHERE id > ? ORDER BY id LIMIT 1000",
                [last],
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _certificate(row)
            last = rows[-1][-1]


def _certificate(row: Any) -> CertificateRecord:
    return CertificateRecord(
        serial_number=row[0],
        registration_id=row[1],
        thumbprint_sha256=row[2],
        certificate_pem=row[3],
        not_before=row[4],
        not_after=row[5],
        profile=row[6],
        status=row[7],
        issued_at=row[8],
        batch=row[9],
        job_id=row[10],
        void_reason=row[11],
        id=row[12],
    )
