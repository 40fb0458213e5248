"""The GUI's slot worker provisions the Cortex-M board in QEMU: bound slot, batch scanned, PASS."""

from __future__ import annotations

import pytest

from station.domain.records import DeviceQuery
from tests.support.gui import WAIT_MS, log_in
from tests.support.rig import Rig


@pytest.mark.parametrize("rig", ["qemu"], indirect=True)
def test_secure_element_board_in_qemu_passes_through_the_slot_worker(
    qtbot, rig: Rig, lab_station, window_of
) -> None:
    (board,) = rig.lab.start(1, "se")
    lab_station.discovery().bind_plugged("slot-1", board.location)
    window = window_of(lab_station)
    log_in(qtbot, window, "terry")
    line = window.line
    qtbot.keyClicks(line.scan, "WO-X509")
    qtbot.keyClick(line.scan, "\r")
    qtbot.waitUntil(lambda: line.batch == "WO-X509", timeout=WAIT_MS)
    tile = line.tiles["slot-1"]
    qtbot.waitUntil(lambda: tile.step_label.text() == "ready", timeout=WAIT_MS)
    line.start_slot("slot-1")
    qtbot.waitUntil(lambda: tile.result in ("PASS", "FAIL", "needs QA"), timeout=300_000)
    assert tile.result == "PASS", tile.reason_label.text()
    devices, _total = lab_station.devices().search(DeviceQuery(batch="WO-X509"))
    assert [d.serial for d in devices] == [board.serial]
    rig.verify()
