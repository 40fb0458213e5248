"""Read-only tasks on a second connection to the station database, in a process of their own.

``station db verify`` walks a million-event chain while the first process checks the device
rows: two cores, one database file (WAL lets both read). The worker is a fresh interpreter
(``python -m`` this module: never a ``fork`` of a process with threads, and no re-run of the
caller's main script as ``multiprocessing`` would do); the task and its result pass through
its standard input and output, pickled (both ends are this station's code). A small database
does not pay for the start of a process, and a frozen app cannot start one, so then the task
runs in the caller's process when its result is asked for.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from station.domain.errors import StoreError
from station.ports import UnitOfWork

T = TypeVar("T")

#: from this many audit events on, a second process pays for its start (about a second)
BACKGROUND_FROM_EVENTS = 100_000


def can_start() -> bool:
    """Whether this process can start a worker (a frozen app has no ``python -m``)."""
    return not getattr(sys, "frozen", False)


def start(path: Path, task: Callable[[UnitOfWork], T]) -> Callable[[], T]:
    """Run ``task`` on a new read-only unit of work of ``path`` in another process.

    Returns:
        A function that waits for the result, or raises what ``task`` raised.

    Raises:
        StoreError: (from the returned function) the worker died or could not start.
    """
    errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the returned function)
    try:
        worker = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    except OSError as exc:
        errors.close()
        raise StoreError(f"cannot start a second process: {exc.strerror}") from exc
    assert worker.stdin is not None and worker.stdout is not None  # both are pipes
    worker.stdin.write(pickle.dumps((str(path), task)))
    worker.stdin.close()
    stdout = worker.stdout

    def result() -> T:
        with errors:
            answer = stdout.read()
            stdout.close()
            code = worker.wait()
            if code != 0 or not answer:
                errors.seek(0)
                tail = errors.read()[-2000:].decode("utf-8", "replace").strip()
                raise StoreError(
                    f"the second process reading {path} failed (exit status {code})",
                    remedy="Run the command again; if it fails again, report the detail.",
                    detail=tail,
                )
        ok, value = pickle.loads(answer)
        if not ok:
            raise cast(BaseException, value)
        return cast(T, value)

    return result


class _Clock:
    """A read-only task writes nothing, so it never asks; the store needs one all the same."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def _serve() -> None:
    """The worker: read (path, task), run it on a read-only unit of work, write the outcome."""
    from station.adapters.store.unit_of_work import SqliteUnitOfWork  # in the worker only

    path, task = pickle.loads(sys.stdin.buffer.read())
    outcome: tuple[bool, Any]
    try:
        store = SqliteUnitOfWork.open(Path(path), clock=_Clock(), migrate=False, create=False)
        try:
            outcome = (True, task(store))
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 (handed to the caller, which raises it)
        outcome = (False, exc)
    sys.stdout.buffer.write(pickle.dumps(outcome))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _serve()
