"""The line view tells the truth (#21) and asks the operator on the slot's tile (#22).

Lab boards and a real station: a board without a serial makes its slot ask on the tile while the
worker waits; the batch box, the message bar and the Start buttons follow the line's state.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

from station.domain.records import DeviceQuery
from station_lab.boards.faults import Faults
from tests.support.gui import WAIT_MS, log_in
from tests.support.rig import Rig

DONE = ("PASS", "FAIL", "needs QA")


def _window(qtbot, lab_station, window_of, boards, *, batch: str = "WO-X509"):
    for number, board in enumerate(boards, start=1):
        lab_station.discovery().bind_plugged(f"slot-{number}", board.location)
    window = window_of(lab_station)
    log_in(qtbot, window, "terry")
    line = window.line
    qtbot.keyClicks(line.scan, batch)
    qtbot.keyClick(line.scan, "\r")
    qtbot.waitUntil(lambda: line.batch == batch, timeout=WAIT_MS)
    return window, line


def test_a_board_without_a_serial_is_asked_on_its_tile_while_the_worker_waits(
    qtbot, rig: Rig, lab_station, window_of
):
    (board,) = rig.lab.start(1, "se", Faults(no_serial=True))
    _, line = _window(qtbot, lab_station, window_of, [board])
    tile = line.tiles["slot-1"]
    line.start_slot("slot-1")
    qtbot.waitUntil(lambda: tile.result == "SCAN SERIAL", timeout=300_000)
    assert not tile.serial_field.isHidden() and not tile.start_button.isEnabled()
    assert "in slot-1 reports no serial number" in tile.reason_label.text()
    assert "slot slot-1" not in tile.reason_label.text()
    assert not line.idle  # the slot's worker waits for the answer; the window does not
    assert line.message.text().startswith("Scan the serial printed on the board in slot-1")

    # something that cannot be a serial, typed on the tile: refused, the slot keeps asking
    qtbot.keyClicks(tile.serial_field, "two words")
    qtbot.keyClick(tile.serial_field, "\r")
    assert "Not accepted for slot-1" in line.message.text()
    assert tile.result == "SCAN SERIAL" and tile.serial_field.text() == ""

    qtbot.keyClicks(tile.serial_field, "STK-T1")
    qtbot.keyClick(tile.serial_field, "\r")
    qtbot.waitUntil(lambda: tile.result in DONE, timeout=300_000)
    assert tile.result == "PASS", tile.reason_label.text()
    assert "STK-T1" in tile.board_label.text() and tile.serial_field.isHidden()
    assert (line.passed, line.failed) == (1, 0)
    devices, _total = lab_station.devices().search(DeviceQuery(batch="WO-X509"))
    assert [d.serial for d in devices] == ["STK-T1"]
    rig.verify()


def test_a_board_pulled_while_its_slot_asks_ends_without_a_failure(
    qtbot, rig: Rig, lab_station, window_of
):
    (board,) = rig.lab.start(1, "se", Faults(no_serial=True))
    window, line = _window(qtbot, lab_station, window_of, [board])
    tile = line.tiles["slot-1"]
    window.start_hotplug()  # the board in the fixture starts at once, and asks
    qtbot.waitUntil(lambda: tile.result == "SCAN SERIAL", timeout=300_000)
    rig.lab.unplug(board.index)
    qtbot.waitUntil(lambda: line.idle, timeout=300_000)
    assert tile.result == "idle" and tile.board_label.text() == "no board"
    assert (line.passed, line.failed) == (0, 0) and line.model.asking == ()
    assert lab_station.store().certificates.count() == 0


def test_the_window_shows_only_what_is_true_before_and_after_a_board(
    qtbot, rig: Rig, lab_station, window_of, monkeypatch
):
    monkeypatch.setattr("station.gui.line_view.NOTE_MS", 200)
    (board,) = rig.lab.start(1, "se")
    lab_station.discovery().bind_plugged("slot-1", board.location)
    window = window_of(lab_station)
    log_in(qtbot, window, "terry")
    line = window.line
    tiles = line.tiles

    # before a batch is chosen: no work order in the box, nothing to start, and it says so
    qtbot.waitUntil(lambda: line.batch_box.count() > 0, timeout=WAIT_MS)
    assert line.batch_box.currentIndex() == -1 and line.batch_box.currentText() == ""
    assert not any(t.start_button.isEnabled() for t in tiles.values())
    assert line.message.text().startswith("Choose a batch")
    qtbot.keyClicks(line.scan, "WO-X509")
    qtbot.keyClick(line.scan, "\r")
    qtbot.waitUntil(lambda: line.batch == "WO-X509", timeout=WAIT_MS)
    assert line.batch_box.currentText() == "WO-X509"
    assert line.message.text().startswith("Batch WO-X509")
    assert all(t.start_button.isEnabled() for t in tiles.values())

    # a note (a refused scan) goes back to what the line waits for once it has been read
    qtbot.keyClicks(line.scan, "nothing-we-know")
    qtbot.keyClick(line.scan, "\r")
    qtbot.waitUntil(lambda: "nothing-we-know" in line.message.text(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: line.message.text().startswith("Batch WO-X509"), timeout=WAIT_MS)

    # a slot without a bound board says so in a technician's words, naming the slot once
    line.start_slot("slot-3")
    qtbot.waitUntil(lambda: tiles["slot-3"].result == "FAIL", timeout=WAIT_MS)
    assert tiles["slot-3"].reason_label.text() == "slot-3 is not bound to a USB port"

    # a passed board: with hot-plug on, its Start is off until the next board arrives
    window.start_hotplug()
    qtbot.waitUntil(lambda: tiles["slot-1"].result in DONE, timeout=300_000)
    assert tiles["slot-1"].result == "PASS"
    assert not tiles["slot-1"].start_button.isEnabled()
    tiles["slot-1"].setFocus()
    qtbot.keyClick(tiles["slot-1"], Qt.Key.Key_Return)
    assert "is done: swap in the next board" in line.message.text()
    assert line.passed == 1
    fresh = rig.lab.swap(board.index)
    qtbot.waitUntil(lambda: line.passed == 2, timeout=300_000)
    assert fresh.serial in tiles["slot-1"].board_label.text()
    assert not tiles["slot-1"].start_button.isEnabled()
