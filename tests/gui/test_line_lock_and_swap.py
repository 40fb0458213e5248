"""The line around the lock and the swap: a board plugged in while the window is locked waits on
its tile and runs in the name of whoever logs in; without hot-plug, Next board on the board that
just passed tells the technician to swap it instead of sending it to QA."""

from __future__ import annotations

from station.domain.records import DeviceQuery
from tests.support.gui import PEOPLE, WAIT_MS, log_in
from tests.support.rig import Rig

DONE = ("PASS", "FAIL", "needs QA", "SWAP BOARD")


def _line(qtbot, station, window_of, boards):
    for number, board in enumerate(boards, start=1):
        station.discovery().bind_plugged(f"slot-{number}", board.location)
    window = window_of(station)
    log_in(qtbot, window, "terry")
    line = window.line
    line.handle_scan("WO-X509")
    qtbot.waitUntil(lambda: line.batch == "WO-X509", timeout=WAIT_MS)
    return window, line


def test_a_board_plugged_in_while_locked_waits_and_runs_for_whoever_logs_in(
    qtbot, rig: Rig, lab_station, window_of
):
    (board,) = rig.lab.start(1, "se")
    window, line = _line(qtbot, lab_station, window_of, [board])
    tile = line.tiles["slot-1"]
    window.start_hotplug()  # the board in the fixture starts at once, as terry
    qtbot.waitUntil(lambda: line.passed == 1, timeout=300_000)
    first_serial = board.serial

    window.lock()
    fresh = rig.lab.swap(board.index)  # the next unit goes in while nobody is at the window
    summary = window.lock_screen.slots["slot-1"]
    qtbot.waitUntil(lambda: summary.result.text() == "WAITING", timeout=WAIT_MS)
    assert tile.step_label.text() == "starts at the next login"
    assert "plugged in while the window was locked" in tile.reason_label.text()
    store = lab_station.store()
    assert store.jobs.open() == []  # nothing started it: nobody is logged in
    assert store.devices.count(DeviceQuery(serial=fresh.serial)) == 0

    # another operator logs in on the lock screen: the board starts in their name
    qtbot.keyClicks(window.login.badge, PEOPLE["ada"][2])
    qtbot.keyClick(window.login.badge, "\r")
    qtbot.waitUntil(lambda: line.passed == 2, timeout=300_000)
    assert tile.result == "PASS" and fresh.serial in tile.board_label.text()
    rid = f"lab-{fresh.serial.lower()}"
    assert {e.operator for e in store.audit.events_for(rid)} == {"ada"}
    assert {e.operator for e in store.audit.events_for(f"lab-{first_serial.lower()}")} == {"terry"}


def test_next_board_on_the_board_that_passed_says_swap_it_and_a_new_board_runs(
    qtbot, rig: Rig, lab_station, window_of
):
    (board,) = rig.lab.start(1, "se")
    first_serial = board.serial
    _window, line = _line(qtbot, lab_station, window_of, [board])
    tile = line.tiles["slot-1"]
    line.start_slot("slot-1")
    qtbot.waitUntil(lambda: tile.result in DONE, timeout=300_000)
    assert tile.result == "PASS" and tile.start_button.text() == "Next board"

    tile.start_button.click()  # the technician forgot to swap: the same board is in the slot
    qtbot.waitUntil(lambda: tile.result == "SWAP BOARD", timeout=300_000)
    assert tile.reason_label.text().startswith(f"Board {first_serial} already passed")
    assert tile.step_label.text() == "already passed: swap in the next board"
    assert "Swap it for the next board" in line.message.text()
    assert (line.passed, line.failed) == (1, 0)
    assert tile.start_button.isEnabled() and tile.start_button.text() == "Next board"

    fresh = rig.lab.swap(board.index)  # now the next unit really goes in
    tile.start_button.click()
    qtbot.waitUntil(lambda: line.passed == 2, timeout=300_000)
    assert tile.result == "PASS" and fresh.serial in tile.board_label.text()
    assert line.failed == 0
    devices, _total = lab_station.devices().search(DeviceQuery(batch="WO-X509"))
    assert {d.serial for d in devices} == {first_serial, fresh.serial}
