"""Slot workers: one QObject per slot in its own QThread; widgets only on the GUI thread; the
operator who starts a board is the one audited; serial scans for boards that report none;
hot-plug starts boards swapped into a bound slot."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QThread
from PySide6.QtWidgets import QApplication

from station.domain.records import DeviceQuery
from station.gui.line_view import SlotTile
from station_lab.boards.faults import Faults
from tests.support.gui import WAIT_MS, log_in
from tests.support.rig import BOTH_FIRMWARES, Rig

DONE = ("PASS", "FAIL", "needs QA")


def _line_with_boards(qtbot, rig: Rig, station, window_of, boards):
    """Bind ``boards`` to slot-1.., open the window as terry and choose the batch."""
    for number, board in enumerate(boards, start=1):
        station.discovery().bind_plugged(f"slot-{number}", board.location)
    window = window_of(station)
    log_in(qtbot, window, "terry")
    _select_batch(qtbot, window.line)
    return window, window.line


def _select_batch(qtbot, line, batch: str = "WO-X509") -> None:
    qtbot.keyClicks(line.scan, batch)
    qtbot.keyClick(line.scan, "\r")
    qtbot.waitUntil(lambda: line.batch == batch, timeout=WAIT_MS)


def _scan(qtbot, line, text: str) -> None:
    line.scan.setFocus()
    qtbot.keyClicks(line.scan, text)
    qtbot.keyClick(line.scan, "\r")


def test_each_slot_runs_in_its_own_thread_and_tiles_change_on_the_gui_thread(
    qtbot, rig: Rig, lab_station, window_of, monkeypatch
):
    boards = rig.lab.start(2, "se")
    applied_on: list[QThread] = []
    original_show = SlotTile.show_view

    def recording_show(tile: SlotTile, view: object) -> None:
        applied_on.append(QThread.currentThread())
        original_show(tile, view)

    monkeypatch.setattr(SlotTile, "show_view", recording_show)
    _window, line = _line_with_boards(qtbot, rig, lab_station, window_of, boards)
    # each slot gets ready (station, batch, CA key) before its first board
    qtbot.waitUntil(
        lambda: all(t.step_label.text() == "ready" for t in line.tiles.values()), timeout=WAIT_MS
    )
    line.start_slot("slot-1")
    line.start_slot("slot-2")
    tiles = [line.tiles["slot-1"], line.tiles["slot-2"]]
    qtbot.waitUntil(lambda: all(t.result in DONE for t in tiles), timeout=300_000)
    assert [t.result for t in tiles] == ["PASS", "PASS"]

    gui_thread = QApplication.instance().thread()
    workers = line.slot_workers
    assert sorted(workers) == ["slot-1", "slot-2", "slot-3"]  # every slot, ready or busy
    threads = {slot: worker.thread() for slot, worker in workers.items()}
    assert gui_thread not in threads.values()
    assert len(set(threads.values())) == 3
    assert all(thread.isRunning() for thread in threads.values())
    assert applied_on and all(thread is gui_thread for thread in applied_on)
    qtbot.waitUntil(lambda: line.idle, timeout=WAIT_MS)

    line.shutdown()
    assert all(thread.isFinished() for thread in threads.values())
    # handed back to the GUI thread, where Python destroys them
    assert all(worker.thread() is gui_thread for worker in workers.values())
    assert line.slot_workers == {}


def test_the_operator_who_starts_a_board_is_the_one_audited(
    qtbot, rig: Rig, lab_station, window_of
):
    first, second = rig.lab.start(2, "se")
    window, line = _line_with_boards(qtbot, rig, lab_station, window_of, (first, second))
    line.start_slot("slot-1")
    qtbot.waitUntil(lambda: line.tiles["slot-1"].result in DONE, timeout=300_000)

    # a badge scan switches the operator; the same slot worker then provisions as ada
    _scan(qtbot, line, "BADGE-ADA")
    qtbot.waitUntil(lambda: window.operator is not None and window.operator.name == "ada")
    line.start_slot("slot-2")
    qtbot.waitUntil(lambda: line.tiles["slot-2"].result in DONE, timeout=300_000)
    assert line.tiles["slot-2"].result == "PASS"

    store = lab_station.store()
    by_serial = {}
    for serial in (first.serial, second.serial):
        rid = f"lab-{serial.lower()}"
        by_serial[serial] = {e.operator for e in store.audit.events_for(rid)}
    assert by_serial[first.serial] == {"terry"}
    assert by_serial[second.serial] == {"ada"}


@BOTH_FIRMWARES
def test_serial_scans_go_to_the_slots_waiting_for_one(qtbot, rig: Rig, lab_station, window_of):
    boards = rig.lab.start(2, "se", Faults(no_serial=True))
    _window, line = _line_with_boards(qtbot, rig, lab_station, window_of, boards)
    one, two = line.tiles["slot-1"], line.tiles["slot-2"]
    line.start_slot("slot-1")
    qtbot.waitUntil(lambda: one.result == "SCAN SERIAL", timeout=300_000)
    line.start_slot("slot-2")
    qtbot.waitUntil(lambda: two.result == "SCAN SERIAL", timeout=300_000)
    # waiting for a scan is an action for the technician, not a failure
    assert line.failed == 0 and "Failed 0" in line.counters.text()
    assert "reports no serial number" in one.reason_label.text()
    assert one.step_label.text() == "the next serial scan goes here"
    assert two.step_label.text() == "serial scan: 1 ahead"

    # a scan that cannot be a serial is refused; nothing starts
    _scan(qtbot, line, "not a serial")
    qtbot.waitUntil(lambda: "is not a board serial number" in line.message.text(), timeout=WAIT_MS)
    assert one.result == two.result == "SCAN SERIAL"

    # Enter on slot-2's tile makes it take the next scan
    two.setFocus()
    qtbot.keyClick(two, Qt.Key.Key_Return)
    assert two.step_label.text() == "the next serial scan goes here"
    _scan(qtbot, line, "STK-B")
    qtbot.waitUntil(lambda: two.result in DONE, timeout=300_000)
    assert two.result == "PASS" and "STK-B" in two.board_label.text()
    assert one.result == "SCAN SERIAL" and one.step_label.text() == "the next serial scan goes here"
    _scan(qtbot, line, "STK-A")
    qtbot.waitUntil(lambda: one.result in DONE, timeout=300_000)
    assert one.result == "PASS" and "STK-A" in one.board_label.text()
    assert line.passed == 2 and line.failed == 0

    # with no slot waiting, an unknown scan is reported as such
    _scan(qtbot, line, "STK-C")
    qtbot.waitUntil(lambda: "STK-C" in line.message.text(), timeout=WAIT_MS)
    assert one.result == two.result == "PASS"
    devices, _total = lab_station.devices().search(DeviceQuery(batch="WO-X509"))
    serials = {d.serial for d in devices}
    assert serials == {"STK-A", "STK-B"}
    rig.verify()


def test_hot_plug_starts_the_board_swapped_into_a_bound_slot(
    qtbot, rig: Rig, lab_station, window_of
):
    (board,) = rig.lab.start(1, "se")
    window, line = _line_with_boards(qtbot, rig, lab_station, window_of, [board])
    tile = line.tiles["slot-1"]
    window.start_hotplug()  # the board already in the fixture starts at once
    qtbot.waitUntil(lambda: line.passed == 1, timeout=300_000)
    first_serial = board.serial

    fresh = rig.lab.swap(board.index)  # the next unit goes into the same fixture
    assert fresh.serial != first_serial
    qtbot.waitUntil(lambda: line.passed == 2, timeout=300_000)
    assert tile.result == "PASS" and fresh.serial in tile.board_label.text()


def test_a_slot_that_cannot_get_ready_says_why_before_any_board(
    qtbot, rig: Rig, lab_station, window_of, monkeypatch
):
    monkeypatch.setenv("STATION_PKCS11_PIN", "000000")  # someone changed the token PIN
    window = window_of(lab_station)
    log_in(qtbot, window, "terry")
    line = window.line
    _select_batch(qtbot, line)
    tiles = line.tiles.values()
    qtbot.waitUntil(lambda: all(t.result == "FAIL" for t in tiles), timeout=WAIT_MS)
    for tile in tiles:
        assert "PIN" in tile.reason_label.text()
        assert tile.detail_label.text() == "hsm.pin"
    # the admin puts the right PIN back; choosing the batch again gets every slot ready
    monkeypatch.setenv("STATION_PKCS11_PIN", "1234")
    _select_batch(qtbot, line)
    qtbot.waitUntil(
        lambda: all(t.result == "idle" and t.step_label.text() == "ready" for t in tiles),
        timeout=WAIT_MS,
    )
    assert all(t.reason_label.isHidden() and t.reason_label.text() == "" for t in tiles)


def test_a_rework_armed_for_one_board_never_voids_another(qtbot, rig: Rig, lab_station, window_of):
    first, second = rig.lab.start(2, "se")
    window, line = _line_with_boards(qtbot, rig, lab_station, window_of, (first, second))
    line.start_slot("slot-1")
    line.start_slot("slot-2")
    tiles = line.tiles
    qtbot.waitUntil(lambda: line.passed == 2, timeout=300_000)

    # QA arms a rework for the first board ...
    window.lock()
    log_in(qtbot, window, "quentin")
    window.show_view("QA")
    qa = window.qa
    qa.search.setText(first.serial)
    qa.search_button.click()
    qtbot.waitUntil(lambda: qa.current is not None, timeout=WAIT_MS)
    qa.reason.setText("wrong firmware")
    qa.rework_button.click()
    assert first.serial in qa.message.text()

    # ... but the second board is started: it stops before anything is written or voided
    line.start_slot("slot-2")
    qtbot.waitUntil(lambda: tiles["slot-2"].result == "FAIL", timeout=300_000)
    assert "provision.serial_mismatch" in tiles["slot-2"].detail_label.text()
    assert "rework stays armed" in line.message.text()
    second_rid = f"lab-{second.serial.lower()}"
    statuses = [c.status for c in lab_station.store().certificates.for_device(second_rid)]
    assert statuses == ["installed"]

    # the first board (factory-reset) then takes the rework it was armed for
    rig.lab.unplug(first.index)
    for child in first.state_dir.iterdir():
        if child.name != "board.log" and child.is_file():
            child.unlink()
    rig.lab.replug(first.index)
    line.start_slot("slot-1")
    qtbot.waitUntil(lambda: tiles["slot-1"].result == "running", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: tiles["slot-1"].result != "running", timeout=300_000)
    assert tiles["slot-1"].result == "PASS", tiles["slot-1"].reason_label.text()
    first_rid = f"lab-{first.serial.lower()}"
    statuses = sorted(c.status for c in lab_station.store().certificates.for_device(first_rid))
    assert statuses == ["installed", "voided"]
    rig.verify()


@pytest.mark.parametrize("rig", ["c"], indirect=True)
@pytest.mark.parametrize(
    ("kind", "batch"),
    [("se", "WO-X509"), ("nokey", "WO-NOKEY"), ("nokey", "WO-SYM"), ("tpm", "WO-TPM")],
)
def test_every_flow_passes_on_c_boards_through_the_slot_worker(
    qtbot, rig: Rig, lab_station, window_of, kind: str, batch: str
):
    (board,) = rig.lab.start(1, kind)
    lab_station.discovery().bind_plugged("slot-1", board.location)
    window = window_of(lab_station)
    log_in(qtbot, window, "terry")
    _select_batch(qtbot, window.line, batch)
    tile = window.line.tiles["slot-1"]
    qtbot.waitUntil(lambda: tile.step_label.text() == "ready", timeout=WAIT_MS)
    window.line.start_slot("slot-1")
    qtbot.waitUntil(lambda: tile.result in DONE, timeout=300_000)
    assert tile.result == "PASS", tile.reason_label.text()
    devices, _total = lab_station.devices().search(DeviceQuery(batch=batch))
    assert [d.serial for d in devices] == [board.serial]
    rig.verify()
