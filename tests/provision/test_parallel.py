"""Sixteen lab boards on sixteen slots at once: one worker thread per slot, no interference."""

from __future__ import annotations

import threading
import time

from station.domain.provision_events import Passed, ProvisionEvent, StepStarted
from station.domain.records import DeviceQuery
from station.services.provision_line import ProvisionLine
from tests.support.rig import Rig


def test_sixteen_boards_in_parallel_all_pass_without_interference(rig: Rig) -> None:
    boards = rig.lab.start(16, "se")
    admin = rig.station()
    admin.batches().open(name="WO-16", product="lab-x509", size=16, operator="boss")
    events: list[ProvisionEvent] = []
    lock = threading.Lock()

    def emit(event: ProvisionEvent) -> None:
        with lock:
            events.append(event)

    base = rig.station()
    line = ProvisionLine(base.for_thread, batch="WO-16", operator="tina", emit=emit)
    try:
        for board in boards:
            line.plugged(f"slot-{board.index:02d}", board.port)
        deadline = time.monotonic() + 600
        while not line.idle and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        line.stop()

    outcomes = line.outcomes()
    assert len(outcomes) == 16
    assert all(o.passed for o in outcomes), [o for o in outcomes if not o.passed]
    # each slot reported only its own board, and every slot ran at the same time as others
    by_slot = {o.slot: o for o in outcomes}
    for board in boards:
        outcome = by_slot[f"slot-{board.index:02d}"]
        assert outcome.serial == board.serial
        assert outcome.registration_id == f"lab-{board.serial.lower()}"
    passed = [e for e in events if isinstance(e, Passed)]
    assert sorted(e.slot for e in passed) == sorted(by_slot)
    first_pass = events.index(passed[0])
    started_before = {e.slot for e in events[:first_pass] if isinstance(e, StepStarted)}
    assert len(started_before) > 1  # slots overlapped (they did not run one after another)
    store = admin.store()
    assert store.devices.count(DeviceQuery(batch="WO-16", status="provisioned")) == 16
    assert store.certificates.count(batch="WO-16") == 16
    assert not store.jobs.open()
    rig.verify()
