"""The :class:`~station.ports.PushOutbox` on the station database's ``pushes`` table.

It has its own connection to the same SQLite file (WAL), so a push commits each state change on
its own, independent of whatever transaction the identity store is in. Every ``mark`` is
committed before it returns: after a kill, the table says which devices were sent, which were
confirmed and which still wait.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from station.adapters.store.connection import open_connection, translate
from station.domain.errors import StoreError
from station.domain.pushes import OutboxEntry, PushState

_COLUMNS = "batch, registration_id, state, attempts, last_error, remote, id"


class SqliteOutbox:
    """The push outbox; open it on a database the identity store has migrated."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 10_000) -> None:
        self._path = path
        self._conn = open_connection(path, busy_timeout_ms)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def enqueue(self, batch: str, registration_ids: Iterable[str]) -> int:
        """Add ``pending`` rows for IDs not yet queued (in the given order)."""
        now = _now()
        with self._transaction():
            before = self._conn.total_changes
            self._conn.executemany(
                "INSERT OR IGNORE INTO pushes (batch, registration_id, state, updated_at) "
                "VALUES (?, ?, 'pending', ?)",
                ((batch, rid, now) for rid in registration_ids),
            )
            return self._conn.total_changes - before

    def take(
        self, batch: str, states: Sequence[PushState], limit: int, *, after_id: int = 0
    ) -> list[OutboxEntry]:
        """Up to ``limit`` entries in ``states`` with an id above ``after_id``, oldest first."""
        marks = ", ".join("?" for _ in states)
        # walk the (batch, id) index from the cursor: no sort of every pending row per chunk
        rows = self._read(
            f"SELECT {_COLUMNS} FROM pushes INDEXED BY pushes_batch_order "
            f"WHERE batch = ? AND id > ? AND state IN ({marks}) ORDER BY id LIMIT ?",
            [batch, after_id, *(str(s) for s in states), limit],
        )
        return [_entry(row) for row in rows]

    def mark(
        self,
        batch: str,
        registration_ids: Sequence[str],
        state: PushState,
        *,
        error: str = "",
        remote: str = "",
        attempt: bool = False,
    ) -> None:
        """Move entries to ``state`` and commit."""
        now = _now()
        with self._transaction():
            self._conn.executemany(
                "UPDATE pushes SET state = ?, last_error = ?, remote = ?, updated_at = ?, "
                "attempts = attempts + ? WHERE batch = ? AND registration_id = ?",
                (
                    (str(state), error, remote, now, 1 if attempt else 0, batch, rid)
                    for rid in registration_ids
                ),
            )

    def entries(self, batch: str) -> Iterator[OutboxEntry]:
        """Every entry of ``batch`` in outbox order, streamed."""
        last = 0
        while True:
            rows = self._read(
                f"SELECT {_COLUMNS} FROM pushes WHERE batch = ? AND id > ? ORDER BY id LIMIT 1000",
                [batch, last],
            )
            if not rows:
                return
            yield from (_entry(row) for row in rows)
            last = int(str(rows[-1][-1]))

    def counts(self, batch: str) -> dict[str, int]:
        """Entries per state."""
        rows = self._read(
            "SELECT state, count(*) FROM pushes WHERE batch = ? GROUP BY state", [batch]
        )
        return {str(state): int(str(n)) for state, n in rows}

    def _read(self, sql: str, params: list[object]) -> list[tuple[object, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _transaction(self) -> _Tx:
        return _Tx(self)

    def _error(self, exc: sqlite3.Error) -> StoreError:
        return translate(exc, self._path)


class _Tx:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error)."""

    def __init__(self, outbox: SqliteOutbox) -> None:
        self._outbox = outbox

    def __enter__(self) -> None:
        try:
            self._outbox._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._outbox._error(exc) from exc

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        conn = self._outbox._conn
        if exc_type is not None:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._outbox._error(exc) from exc
            return
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as error:
            raise self._outbox._error(error) from error


def _entry(row: tuple[object, ...]) -> OutboxEntry:
    batch, rid, state, attempts, error, remote, row_id = row
    return OutboxEntry(
        batch=str(batch),
        registration_id=str(rid),
        state=PushState(str(state)),
        attempts=int(str(attempts)),
        last_error=str(error),
        remote=str(remote),
        id=int(str(row_id)),
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
