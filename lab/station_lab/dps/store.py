"""The stand-in's state in SQLite: enrollments, groups, registration states and the hub registry.

One table per record kind, keyed by the lower-case id, with an ever-increasing ``seq``. Queries
page in a scrambled but stable order (a bijective hash of ``seq``, indexed): real DPS lists in no
order a client may rely on, so neither does the stand-in. Records are stored as the JSON the PUT
answers with. The stdlib ``sqlite3`` is enough here (the lab may import anything); one connection
is shared by the server's threads behind a lock, which keeps writes serialised like a single DPS
partition.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

KINDS: Final = (
    "enrollments",
    "groups",
    "registrations",
    "certificates",
    "cas",
    "hub_devices",
    "adr",
)
PAGED: Final = ("enrollments", "groups", "registrations")
# The paging order: an odd multiplier modulo 2^32 permutes seq (no two records share a position).
ORDER: Final = "((seq * 2654435761) % 4294967296)"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS enrollments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS registrations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, doc TEXT NOT NULL,
    group_key TEXT);
CREATE INDEX IF NOT EXISTS registrations_group ON registrations(group_key, seq);
-- enrolled X.509 certificates by upper-case SHA-256 thumbprint (answers only ever show their info)
CREATE TABLE IF NOT EXISTS certificates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
-- CA certificates a group's caReferences name (the ARM upload the lab does not emulate)
CREATE TABLE IF NOT EXISTS cas (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
-- the lab's device registry (ADR namespace): the credential and its policies (no keys, key URIs)
CREATE TABLE IF NOT EXISTS adr (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
-- the linked hubs' device registry: which hub got which device (key: registration ID)
CREATE TABLE IF NOT EXISTS hub_devices (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
"""


class DpsStore:
    """Thread-safe record storage for the stand-in (one SQLite file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        for kind in PAGED:  # IF NOT EXISTS: state directories of older stand-ins get it too
            group = "group_key, " if kind == "registrations" else ""
            self._db.execute(f"CREATE INDEX IF NOT EXISTS {kind}_order ON {kind}({group}{ORDER})")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run a read-check-write sequence atomically (and exclusively among threads)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """Return one record, or None."""
        with self._lock:
            row = self._db.execute(
                f"SELECT doc FROM {_table(kind)} WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put(
        self, kind: str, key: str, doc: dict[str, Any], *, group_key: str | None = None
    ) -> None:
        """Insert or replace a record, keeping its position (seq) when it already exists."""
        text = json.dumps(doc, separators=(",", ":"))
        with self._lock:
            if kind == "registrations":
                self._db.execute(
                    "INSERT INTO registrations (key, doc, group_key) VALUES (?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET doc = excluded.doc, "
                    "group_key = excluded.group_key",
                    (key, text, group_key),
                )
            else:
                self._db.execute(
                    f"INSERT INTO {_table(kind)} (key, doc) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET doc = excluded.doc",
                    (key, text),
                )

    def delete(self, kind: str, key: str) -> bool:
        """Delete a record; return whether it existed."""
        with self._lock:
            cursor = self._db.execute(f"DELETE FROM {_table(kind)} WHERE key = ?", (key,))
        return cursor.rowcount > 0

    def count(self, kind: str) -> int:
        """Count the records of one kind."""
        with self._lock:
            row = self._db.execute(f"SELECT count(*) FROM {_table(kind)}").fetchone()
        return int(row[0])

    def count_by_attestation(self, kind: str, attestation: str) -> int:
        """Count the records of one kind whose attestation type is ``attestation``."""
        with self._lock:
            row = self._db.execute(
                f"SELECT count(*) FROM {_table(kind)} "
                "WHERE json_extract(doc, '$.attestation.type') = ?",
                (attestation,),
            ).fetchone()
        return int(row[0])

    def page(
        self, kind: str, *, after: int, limit: int, group_key: str | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Return up to ``limit`` records after position ``after`` and the next position.

        Positions follow :data:`ORDER`, not insertion; start with ``after=0``. The next
        position is None when no record follows the page.
        """
        where = f"{ORDER} > ?"
        args: list[Any] = [after]
        if group_key is not None:
            where += " AND group_key = ?"
            args.append(group_key)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {ORDER}, doc FROM {_table(kind)} WHERE {where} ORDER BY {ORDER} LIMIT ?",
                (*args, limit + 1),
            ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        docs = [dict(json.loads(doc)) for _, doc in rows]
        return docs, (int(rows[-1][0]) if more and rows else None)

    def all(self, kind: str) -> list[dict[str, Any]]:
        """Return every record of one kind in insertion order (small tables only)."""
        with self._lock:
            rows = self._db.execute(f"SELECT doc FROM {_table(kind)} ORDER BY seq").fetchall()
        return [dict(json.loads(doc)) for (doc,) in rows]

    def reset(self) -> None:
        """Forget every record."""
        with self._lock:
            for kind in KINDS:
                self._db.execute(f"DELETE FROM {_table(kind)}")

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()


def _table(kind: str) -> str:
    # Table names cannot be bound parameters; only the known kinds are ever interpolated.
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}")
    return kind
