import json
import subprocess
import sys
from pathlib import Path

import pytest

from station.adapters.store.unit_of_work import SqliteUnitOfWork
from station.domain.audit import EventDraft, verify_chain
from station.domain.errors import DuplicateIdentityError
from station.domain.records import DeviceQuery
from station.services.identities import record_identity


def test_a_failure_mid_use_case_leaves_nothing_half_written(
    store: SqliteUnitOfWork, make_manifest, clock
) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), store:
        store.audit.append(EventDraft(kind="device.recorded", subject="dev-x"))
        raise Boom
    assert list(store.audit.events()) == []
    assert store.audit.head() is None

    # a use case that fails after writing its event and device row rolls both back
    record_identity(store, make_manifest("SN1"), clock=clock, station="st", operator="op")
    with pytest.raises(DuplicateIdentityError):
        record_identity(store, make_manifest("SN1"), clock=clock, station="st", operator="op")
    assert [e.kind for e in store.audit.events()] == ["device.recorded"]
    assert store.devices.count(DeviceQuery()) == 1


def test_nested_blocks_are_savepoints(store: SqliteUnitOfWork) -> None:
    with store:
        store.audit.append(EventDraft(kind="outer", subject="a"))
        with pytest.raises(RuntimeError), store:
            store.audit.append(EventDraft(kind="inner", subject="b"))
            raise RuntimeError
    assert [e.kind for e in store.audit.events()] == ["outer"]


def test_a_durable_transaction_syncs_its_own_commit_and_only_its_own(
    store: SqliteUnitOfWork, db_path: Path, clock
) -> None:
    def synchronous() -> int:
        return int(store._tx.db.conn.execute("PRAGMA synchronous").fetchone()[0])

    assert synchronous() == 1  # NORMAL: WAL commits are fsynced at checkpoints
    with store.durable():
        store.audit.append(EventDraft(kind="device.recorded", subject="dev-1"))
        assert synchronous() == 2  # FULL: this commit fsyncs the WAL
    assert synchronous() == 1
    other = SqliteUnitOfWork.open(db_path, clock=clock)
    try:
        assert [e.kind for e in other.audit.events()] == ["device.recorded"]
    finally:
        other.close()
    with pytest.raises(RuntimeError), store.durable():
        raise RuntimeError("rolled back")
    assert synchronous() == 1
    with store, pytest.raises(RuntimeError, match="cannot be nested"), store.durable():
        pass


WRITER = r"""
import sys
from datetime import datetime, UTC
from pathlib import Path
from station.adapters.store.unit_of_work import SqliteUnitOfWork
from station.domain.audit import EventDraft

class Clock:
    def now(self):
        return datetime.now(UTC)

store = SqliteUnitOfWork.open(Path(sys.argv[1]), clock=Clock(), busy_timeout_ms=30000)
name = sys.argv[2]
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()  # both writers start together
for i in range(int(sys.argv[3])):
    store.audit.append(EventDraft(kind="test.write", subject=name, payload={"i": i}))
store.close()
"""


def test_two_processes_writing_at_once_lose_nothing(db_path: Path, clock) -> None:
    SqliteUnitOfWork.open(db_path, clock=clock).close()  # create and migrate once
    count = 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db_path), name, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("writer-a", "writer-b")
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.wait(timeout=120) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    store = SqliteUnitOfWork.open(db_path, clock=clock)
    try:
        events = list(store.audit.events())
        assert len(events) == 2 * count
        assert verify_chain(events) is None
        for name in ("writer-a", "writer-b"):
            seen = [json.loads(e.payload_json)["i"] for e in events if e.subject == name]
            assert seen == list(range(count))
    finally:
        store.close()
