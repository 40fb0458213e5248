"""The :class:`~station.ports.FleetOutbox` on the station database's ``fleet_outbox`` table.

The queue is the station's own audit chain: :meth:`SqliteFleetOutbox.enqueue_new` copies the seq
and hash of every event not queued yet, so an event is queued whatever wrote it, and nothing about
replication touches the transactions that record devices. It has its own connection to the same
SQLite file (WAL) and commits each change before returning: after a kill the table says exactly
which events the ledger acknowledged.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from station.adapters.store.connection import open_connection, translate
from station.domain.audit import AuditEvent
from station.domain.errors import IntegrityError, StoreError
from station.domain.fleet import OutboxStatus

_EVENT_COLUMNS = "e.seq, e.time, e.station, e.operator, e.kind, e.subject, e.payload, e.prev_hash"


class SqliteFleetOutbox:
    """The fleet outbox; open it on a database the identity store has migrated."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 10_000) -> None:
        self._path = path
        self._conn = open_connection(path, busy_timeout_ms)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def enqueue_new(self) -> int:
        """Queue every event after the last queued one, in seq order."""
        return self._write(
            "INSERT INTO fleet_outbox (seq, hash, state, enqueued_at) "
            "SELECT seq, hash, 'pending', ? FROM events "
            "WHERE seq > (SELECT ifnull(max(seq), 0) FROM fleet_outbox) ORDER BY seq",
            [_now()],
        )

    def pending(self, limit: int) -> list[AuditEvent]:
        """The oldest unsent events with the hash they were queued with."""
        rows = self._read(
            f"SELECT {_EVENT_COLUMNS}, e.hash, o.hash FROM fleet_outbox o "
            "LEFT JOIN events e ON e.seq = o.seq "
            "WHERE o.state = 'pending' ORDER BY o.seq LIMIT ?",
            [limit],
        )
        events = []
        for row in rows:
            queued_hash = str(row[9])
            if row[0] is None or str(row[8]) != queued_hash:
                raise IntegrityError(
                    f"audit event queued for the fleet ledger (hash {queued_hash[:12]}) is "
                    "missing or changed in the station database",
                    remedy="Run 'station db verify': the local audit chain was edited. The "
                    "ledger keeps the version it already holds.",
                    path=str(self._path),
                )
            events.append(
                AuditEvent(
                    seq=int(row[0]),
                    time=str(row[1]),
                    station=str(row[2]),
                    operator=str(row[3]),
                    kind=str(row[4]),
                    subject=str(row[5]),
                    payload_json=str(row[6]),
                    prev_hash=str(row[7]),
                    hash=str(row[8]),
                )
            )
        return events

    def mark_sent_through(self, seq: int) -> int:
        """Mark every pending event up to ``seq`` sent."""
        return self._write(
            "UPDATE fleet_outbox SET state = 'sent', sent_at = ?, last_error = '' "
            "WHERE state = 'pending' AND seq <= ?",
            [_now(), seq],
        )

    def note_failure(self, error: str) -> None:
        """Count a failed attempt on the oldest pending event."""
        self._write(
            "UPDATE fleet_outbox SET attempts = attempts + 1, last_error = ? "
            "WHERE seq = (SELECT min(seq) FROM fleet_outbox WHERE state = 'pending')",
            [error[:500]],
        )

    def status(self) -> OutboxStatus:
        """Head of the local chain, last sent event, pending count and the oldest error."""
        head = self._read("SELECT ifnull(max(seq), 0) FROM events", [])[0][0]
        sent = self._read(
            "SELECT ifnull(max(seq), 0), ifnull(max(sent_at), '') FROM fleet_outbox "
            "WHERE state = 'sent'",
            [],
        )[0]
        queued = self._read("SELECT ifnull(max(seq), 0) FROM fleet_outbox", [])[0][0]
        oldest = self._read(
            "SELECT attempts, last_error FROM fleet_outbox WHERE state = 'pending' "
            "ORDER BY seq LIMIT 1",
            [],
        )
        pending = self._read("SELECT count(*) FROM fleet_outbox WHERE state = 'pending'", [])
        not_queued = max(int(head) - int(queued), 0)
        return OutboxStatus(
            head_seq=int(head),
            sent_seq=int(sent[0]),
            pending=int(pending[0][0]) + not_queued,
            attempts=int(oldest[0][0]) if oldest else 0,
            last_error=str(oldest[0][1]) if oldest else "",
            last_sent_at=str(sent[1]),
        )

    def _read(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _write(self, sql: str, params: list[Any]) -> int:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                changed = conn.execute(sql, params).rowcount
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return int(changed)

    def _error(self, exc: sqlite3.Error) -> StoreError:
        return translate(exc, self._path)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
