"""The :class:`~station.ports.AuditLog` on the ``events`` table (head kept in ``meta``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from station.adapters.store.connection import AUDIT_HEAD, Transactions
from station.domain.audit import AuditEvent, EventDraft, chain
from station.ports import Clock

_COLUMNS = "seq, time, station, operator, kind, subject, payload, prev_hash, hash"


class SqliteAuditLog:
    """The hash-chained audit log."""

    def __init__(self, tx: Transactions, clock: Clock) -> None:
        self._tx = tx
        self._db = tx.db
        self._clock = clock

    def append(self, draft: EventDraft) -> AuditEvent:
        """Chain ``draft`` after the current head and store it, with the new head, atomically."""
        with self._tx.write():
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM events ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            prev = _event(row) if row else None
            event = chain(draft, prev=prev, time=self._clock.now())
            self._db.execute(
                f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    event.seq,
                    event.time,
                    event.station,
                    event.operator,
                    event.kind,
                    event.subject,
                    event.payload_json,
                    event.prev_hash,
                    event.hash,
                ],
            )
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [AUDIT_HEAD, f"{event.seq}:{event.hash}"],
            )
        return event

    def events(self, *, after_seq: int = 0) -> Iterator[AuditEvent]:
        """Iterate events in seq order, in pages, so a long chain streams in constant memory."""
        last = after_seq
        while True:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT 1000", [last]
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _event(row)
            last = rows[-1][0]

    def event(self, seq: int) -> AuditEvent | None:
        """Return one event by sequence number."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM events WHERE seq = ?", [seq]).fetchone()
        return _event(row) if row else None

    def events_for(self, subject: str) -> list[AuditEvent]:
        """Return the events about one subject, oldest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM events WHERE subject = ? ORDER BY seq", [subject]
        ).fetchall()
        return [_event(row) for row in rows]

    def events_at(self, seqs: Sequence[int]) -> dict[int, AuditEvent]:
        """Return the events with these sequence numbers, in one query (missing ones left out)."""
        if not seqs:
            return {}
        marks = ", ".join("?" for _ in seqs)
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM events WHERE seq IN ({marks})", list(seqs)
        ).fetchall()
        return {row[0]: _event(row) for row in rows}

    def head(self) -> tuple[int, str] | None:
        """The (seq, hash) recorded as chain head in the same transaction as the last event."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", [AUDIT_HEAD]).fetchone()
        return None if row is None else parse_head(str(row[0]))


def parse_head(text: str) -> tuple[int, str]:
    """``(seq, hash)`` from the stored ``seq:hash`` text."""
    seq, _, digest = text.partition(":")
    return int(seq), digest


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        seq=row[0],
        time=row[1],
        station=row[2],
        operator=row[3],
        kind=row[4],
        subject=row[5],
        payload_json=row[6],
        prev_hash=row[7],
        hash=row[8],
    )
