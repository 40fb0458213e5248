"""``db verify`` on a big database walks the chain in a second process: nothing slips through.

The threshold is lowered so a small database takes the same path as a million-device one: the
chain walk runs in the worker, the row scan and the device walk in this process.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from station.adapters.store.unit_of_work import SqliteUnitOfWork
from station.domain.errors import StoreError
from station.domain.records import DeviceQuery
from station.services.identities import record_identity
from station.services.integrity import verify_store


@pytest.fixture
def recorded(store: SqliteUnitOfWork, make_manifest, clock, db_path: Path) -> Path:
    for index in range(4):
        record_identity(
            store, make_manifest(f"SN{index}"), clock=clock, station="st", operator="op"
        )
    return db_path


def _verify_in_two(path: Path, clock):
    store = SqliteUnitOfWork.open(path, clock=clock, create=False)
    store.background_from_events = 0  # always the second process
    try:
        return verify_store(store)
    finally:
        store.close()


def _tamper(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_the_second_process_walks_the_chain_and_finds_an_edited_event(recorded, clock) -> None:
    untouched = _verify_in_two(recorded, clock)
    assert (untouched.events, untouched.devices, untouched.ok) == (4, 4, True)
    _tamper(recorded, "UPDATE events SET subject = 'dev-other' WHERE seq = 3")
    report = _verify_in_two(recorded, clock)
    assert report.first is not None
    assert (report.first.table, report.first.row) == ("events", "seq 3")
    assert "edited" in report.first.reason


def test_a_device_edited_while_the_chain_is_walked_elsewhere_is_found(recorded, clock) -> None:
    _tamper(recorded, "UPDATE devices SET serial = 'SN9' WHERE registration_id = 'dev-sn2'")
    report = _verify_in_two(recorded, clock)
    assert [(p.table, p.row) for p in report.problems] == [("devices", "dev-sn2")]
    assert "column serial" in report.problems[0].reason


def _raises(store: SqliteUnitOfWork) -> int:
    raise ValueError(f"raised in the worker, {store.devices.count(DeviceQuery())} devices")


def _dies(store: SqliteUnitOfWork) -> int:
    os._exit(3)


def test_what_the_worker_raises_reaches_the_caller_and_a_dead_worker_is_named(
    recorded, clock
) -> None:
    store = SqliteUnitOfWork.open(recorded, clock=clock)
    store.background_from_events = 0
    try:
        with pytest.raises(ValueError, match="raised in the worker, 4 devices"):
            store.in_background(_raises)()
        with pytest.raises(StoreError, match="exit status 3"):
            store.in_background(_dies)()
    finally:
        store.close()


def test_sqlite_vouches_for_untouched_rows_only(recorded, clock) -> None:
    _tamper(recorded, "UPDATE devices SET batch = 'WO-9' WHERE registration_id = 'dev-sn1'")
    store = SqliteUnitOfWork.open(recorded, clock=clock, create=False)
    try:
        verdicts = {
            row.registration_id: row.consistent for row in store.devices.iter_cross_checked()
        }
    finally:
        store.close()
    assert verdicts == {"dev-sn0": True, "dev-sn1": False, "dev-sn2": True, "dev-sn3": True}
