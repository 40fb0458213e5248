"""The :class:`~station.ports.DeviceRepository` on ``devices`` and the ``device_keys`` index."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from typing import Any

from station.adapters.store.connection import Transactions
from station.domain.errors import StoreError
from station.domain.records import (
    DEVICE_EVENT_KINDS,
    CrossChecked,
    DeviceQuery,
    DeviceRecord,
    StoredManifest,
)
from station.domain.states import DeviceStatus

log = logging.getLogger(__name__)

_COLUMNS = (
    "registration_id, serial, batch, product, attestation, status, ek_sha256, cert_thumbprint, "
    "manifest, manifest_hash, event_seq, created_at, updated_at, id"
)
_PAGE = 1000


class SqliteDevices:
    """Recorded identities, one row per registration ID."""

    def __init__(self, tx: Transactions) -> None:
        self._tx = tx
        self._db = tx.db

    def save(self, record: DeviceRecord) -> None:
        """Insert or replace the row for ``record.registration_id``."""
        values = _values(record)
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in values if c != "created_at")
        try:
            with self._tx.write():
                self._db.execute(
                    f"INSERT INTO devices ({columns}) VALUES ({marks}) "
                    f"ON CONFLICT(registration_id) DO UPDATE SET {updates}",
                    list(values.values()),
                )
        except sqlite3.IntegrityError as exc:
            raise StoreError(
                f"device {record.registration_id} conflicts with a recorded identity: {exc}",
                registration_id=record.registration_id,
            ) from exc

    def get(self, registration_id: str) -> DeviceRecord | None:
        """Return the device with this registration ID (case-insensitive)."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM devices WHERE registration_id = ?",
            [registration_id.lower()],
        ).fetchone()
        return _device(row) if row else None

    def find(self, query: DeviceQuery) -> list[DeviceRecord]:
        """Return devices matching ``query``, newest first, bounded by ``query.limit``."""
        where, params = _filter(query)
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM devices{where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, query.limit, query.offset],
        ).fetchall()
        return [_device(row) for row in rows]

    def count(self, query: DeviceQuery) -> int:
        """Count devices matching ``query``."""
        where, params = _filter(query)
        row = self._db.execute(f"SELECT count(*) FROM devices{where}", params).fetchone()
        return int(row[0])

    def iter_all(self) -> Iterator[DeviceRecord]:
        """Every device row as stored, in id order, streamed in pages."""
        return self._pages("", [])

    def iter_batch(self, batch: str, status: str) -> Iterator[DeviceRecord]:
        """The devices of one batch in one status, in id order, streamed along its index."""
        return self._pages(" AND batch = ? AND status = ?", [batch, status])

    def iter_cross_checked(self) -> Iterator[CrossChecked]:
        """Every device row in id order, with whether SQLite found it consistent.

        One join per page compares, inside SQLite, the index columns with the manifest's fields
        and the cited audit event's kind, subject and recorded hash with the row, so Python
        neither parses the manifest nor the event of a consistent row. Bad JSON makes a row
        doubtful (``False``), never an error.
        """
        kinds = ", ".join(f"'{kind}'" for kind in sorted(DEVICE_EVENT_KINDS))
        consistent = (
            "(CASE WHEN json_valid(d.manifest) THEN json_extract(d.manifest, '$.registration_id', "
            "'$.board.serial', '$.batch', '$.product', '$.attestation', '$.status', "
            "'$.tpm.ek_sha256', '$.x509.thumbprint_sha256') END) IS json_array(d.registration_id, "
            "d.serial, d.batch, d.product, d.attestation, d.status, nullif(d.ek_sha256, ''), "
            f"nullif(d.cert_thumbprint, '')) AND e.kind IN ({kinds}) "
            "AND e.subject = d.registration_id AND (CASE WHEN json_valid(e.payload) "
            "THEN json_extract(e.payload, '$.manifest_hash') END) IS d.manifest_hash"
        )
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT d.id, d.registration_id, d.attestation, d.status, d.cert_thumbprint, "
                f"d.manifest, d.manifest_hash, ifnull({consistent}, 0) FROM devices d "
                "LEFT JOIN events e ON e.seq = d.event_seq "
                f"WHERE d.id > ? ORDER BY d.id LIMIT {_PAGE}",
                [last],
            ).fetchall()
            if not rows:
                return
            yield from map(CrossChecked._make, rows)
            last = rows[-1][0]

    def by_id(self, row_id: int) -> DeviceRecord | None:
        """The device row with this row id, exactly as stored."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM devices WHERE id = ?", [row_id]).fetchone()
        return _device(row) if row else None

    def iter_manifests(self, batch: str, status: str) -> Iterator[StoredManifest]:
        """The stored manifests of one batch in one status, in id order, without records."""
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT registration_id, manifest_hash, manifest, id FROM devices "
                f"WHERE id > ? AND batch = ? AND status = ? ORDER BY id LIMIT {_PAGE}",
                [last, batch, status],
            ).fetchall()
            if not rows:
                return
            for registration_id, manifest_hash, manifest, _ in rows:
                yield StoredManifest(registration_id, manifest_hash, manifest)
            last = rows[-1][-1]

    def _pages(self, where: str, params: list[Any]) -> Iterator[DeviceRecord]:
        last = 0
        while True:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM devices WHERE id > ?{where} ORDER BY id LIMIT {_PAGE}",
                [last, *params],
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _device(row)
            last = rows[-1][-1]

    def key_owner(self, spki_sha256: str) -> str | None:
        """The registration ID that claimed a secure-element public key."""
        row = self._db.execute(
            "SELECT registration_id FROM device_keys WHERE spki_sha256 = ?", [spki_sha256]
        ).fetchone()
        return None if row is None else str(row[0])

    def claim_key(self, spki_sha256: str, registration_id: str) -> None:
        """Record (or move, when a device is re-recorded) the owner of a secure-element key."""
        with self._tx.write():
            self._db.execute(
                "INSERT INTO device_keys (spki_sha256, registration_id) VALUES (?, ?) "
                "ON CONFLICT(spki_sha256) DO UPDATE SET registration_id = excluded.registration_id",
                [spki_sha256, registration_id],
            )

    def iter_keys(self) -> Iterator[tuple[str, str]]:
        """Every clone-index entry as ``(spki_sha256, registration ID)``, by key."""
        rows = self._db.execute(
            "SELECT spki_sha256, registration_id FROM device_keys ORDER BY spki_sha256"
        )
        for key, owner in rows:
            yield str(key), str(owner)


def _values(record: DeviceRecord) -> dict[str, Any]:
    return {
        "registration_id": record.registration_id,
        "serial": record.serial,
        "batch": record.batch,
        "product": record.product,
        "attestation": record.attestation,
        "status": str(record.status),
        "ek_sha256": record.ek_sha256,
        "cert_thumbprint": record.cert_thumbprint,
        "manifest": record.manifest_json,
        "manifest_hash": record.manifest_hash,
        "event_seq": record.event_seq,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def _device(row: Any) -> DeviceRecord:
    status_text = row[5]
    try:
        status = DeviceStatus(status_text)
    except ValueError:
        # keep rows with an edited status readable; `station db verify` reports them
        status = DeviceStatus.PROVISIONING
        log.warning("device %s has an unknown status %r", row[0], status_text)
    return DeviceRecord(
        registration_id=row[0],
        serial=row[1],
        batch=row[2],
        product=row[3],
        attestation=row[4],
        status=status,
        ek_sha256=row[6],
        cert_thumbprint=row[7],
        manifest_json=row[8],
        manifest_hash=row[9],
        event_seq=row[10],
        created_at=row[11],
        updated_at=row[12],
        id=row[13],
    )


def _filter(query: DeviceQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("batch", query.batch),
        ("status", query.status),
        ("serial", query.serial),
        ("registration_id", query.registration_id.lower()),
        ("ek_sha256", query.ek_sha256.lower()),
        ("cert_thumbprint", query.cert_thumbprint.lower()),
    ):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
            if column in ("ek_sha256", "cert_thumbprint"):
                # lets SQLite use the partial index (it cannot prove "? != ''" itself)
                clauses.append(f"{column} != ''")
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params
