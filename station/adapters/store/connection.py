"""Opening the station database file and running one transaction on it.

* WAL journal, ``synchronous=NORMAL``, a busy timeout.
* Every write transaction starts with ``BEGIN IMMEDIATE``: two processes never both read the chain
  head and then race to append (a deferred transaction would fail at the lock upgrade instead of
  waiting for the busy timeout). A nested block is a savepoint inside the outer transaction.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from station.domain.errors import StoreBusyError, StoreError

#: the ``meta`` key of the audit chain head (written with every event, never a setting)
AUDIT_HEAD = "audit_head"


def prepare_file(path: Path, *, create: bool) -> None:
    """Refuse a missing (unless ``create``) or zero-length database; create a new one 0600."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        if not create:
            raise StoreError(
                f"there is no station database at {path}",
                remedy="Check [station] data_dir (or [database] path) in the config; run "
                "'station init' only to set up a new station.",
                path=str(path),
            ) from None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # another process may have created it meanwhile: then open that one
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except OSError as exc:
        raise StoreError(f"cannot open the station database {path}: {exc.strerror}") from exc
    if size == 0:
        raise StoreError(
            f"the station database {path} is empty (zero bytes)",
            remedy="The file was truncated; restore the latest backup ('station db verify "
            "--anchor' tells you which head it must reach). The station does not start a new "
            "database in its place.",
            path=str(path),
        )


def open_connection(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (transactions are explicit) with WAL and a busy timeout.

    The identity store wraps it (:func:`connect`); the push and fleet outboxes keep a connection
    of their own to the same file, so that they commit independently of the store.
    """
    try:
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=True
        )
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"cannot open the station database {path}: {exc}",
            remedy="Check that the file is a station database and that the disk is not full; "
            "restore the latest backup if it is damaged.",
            path=str(path),
        ) from exc
    return conn


def connect(path: Path, busy_timeout_ms: int) -> Database:
    """The identity store's connection to ``path`` (see :func:`open_connection`)."""
    return Database(open_connection(path, busy_timeout_ms))


def translate(exc: sqlite3.Error, path: Path) -> StoreError:
    """The station error for a SQLite error (a lock held too long is :class:`StoreBusyError`)."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return StoreBusyError(
            f"the station database {path} stayed locked by another process",
            remedy="Wait a moment and retry; if it persists, close other station windows.",
            path=str(path),
        )
    return StoreError(f"database error on {path}: {text}", path=str(path))


class Transactions:
    """One connection's transactions, shared by every repository of a unit of work."""

    def __init__(self, db: Database, path: Path) -> None:
        self.db = db
        self.path = path

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One use case = one transaction. The outer block takes the write lock up front."""
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():  # nested use case: a savepoint inside the outer transaction
                yield
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise translate(exc, self.path) from exc

    @contextmanager
    def durable(self) -> Iterator[None]:
        """One transaction whose commit reaches the disk (``synchronous=FULL`` for it alone).

        In WAL mode a ``NORMAL`` commit is atomic and survives a crash of the process, but it
        is only fsynced at the next checkpoint: a power cut can lose the last commits. ``FULL``
        fsyncs the WAL at this commit (one fsync).
        """
        conn = self.db.conn
        if conn.in_transaction:
            raise RuntimeError("a durable transaction cannot be nested in another one")
        conn.execute("PRAGMA synchronous = FULL")
        try:
            with self.atomic():
                yield
        finally:
            conn.execute("PRAGMA synchronous = NORMAL")

    @contextmanager
    def write(self) -> Iterator[None]:
        """A single write: joins the caller's transaction, or is its own."""
        if self.db.conn.in_transaction:
            yield
        else:
            with self.atomic():
                yield

    def _rollback(self) -> None:
        # An error inside SQLite may already have ended the transaction.
        if self.db.conn.in_transaction:
            self.db.conn.execute("ROLLBACK")
