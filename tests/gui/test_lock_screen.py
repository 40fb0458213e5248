"""The lock screen: who locked, the line read-only while slots run, unlock or hand over."""

from __future__ import annotations

import dataclasses

from PySide6.QtWidgets import QPushButton

from station.services.line.model import SlotResult, SlotView
from tests.support.gui import PEOPLE, WAIT_MS, log_in
from tests.support.rig import Rig


def _buttons(widget) -> list[str]:
    return [b.text() for b in widget.findChildren(QPushButton) if b.isEnabled()]


def test_lock_screen_is_not_the_login_screen_and_unlocks_as_it_was_left(
    qtbot, plain_station, window_of
):
    window = window_of(plain_station)
    assert window.stack.currentWidget() is window.login_screen  # nobody yet: plain login
    window.lock()  # nothing to lock
    assert window.stack.currentWidget() is window.login_screen
    log_in(qtbot, window, "quentin")
    window.show_view("Batches")
    window.lock()
    lock = window.lock_screen
    assert window.locked and window.stack.currentWidget() is lock
    assert lock.banner.text() == "LOCKED"
    assert "Locked by quentin (qa)" in lock.who.text()
    assert "quentin" in window.login.title.text()
    assert window.login is lock.login and window.login.name.text() == "quentin"
    # read-only: a tile per slot, and the only thing to press is the unlock form's button
    assert list(lock.slots) == list(window.line.tiles)
    assert _buttons(lock) == ["Log in"]
    assert "batch not chosen" in lock.line_state.text()

    # the same operator's PIN unlocks: back where they were
    window.login.pin.setText(PEOPLE["quentin"][1])
    window.login.submit_pin()
    qtbot.waitUntil(lambda: not window.locked, timeout=WAIT_MS)
    assert window.tabs.currentWidget() is window.batches
    assert window.session.name == "quentin"

    # another operator takes over with their badge: their own views, from the line
    window.lock()
    qtbot.keyClicks(window.login.badge, PEOPLE["terry"][2])
    qtbot.keyClick(window.login.badge, "\r")
    qtbot.waitUntil(lambda: not window.locked, timeout=WAIT_MS)
    assert window.operator.name == "terry" and window.view_titles() == ["Line"]
    assert window.tabs.currentWidget() is window.line


def test_the_summary_follows_the_line_while_locked(qtbot, plain_station, window_of):
    window = window_of(plain_station)
    log_in(qtbot, window, "terry")
    window.lock()
    tile = window.line.tiles["slot-2"]
    # a board handed to the slot while nobody is at the window, as the line model shows it
    running = SlotView(
        slot="slot-2",
        result=SlotResult.RUNNING,
        board="board on /dev/pts/9",
        step="step: issue certificate",
        done=5,
        total=12,
        reason="",
        remedy="",
        detail="",
        can_start=False,
        start_text="Start",
    )
    tile.show_view(running)
    summary = window.lock_screen.slots["slot-2"]
    qtbot.waitUntil(lambda: summary.result.text() == "RUNNING", timeout=WAIT_MS)
    assert summary.step.text() == "step: issue certificate"
    assert summary.board.text() == "board on /dev/pts/9"
    tile.show_view(dataclasses.replace(running, result=SlotResult.PASS, done=12))
    qtbot.waitUntil(lambda: summary.result.text() == "PASS", timeout=WAIT_MS)


def test_boards_keep_provisioning_while_the_window_is_locked(
    qtbot, rig: Rig, lab_station, window_of
):
    boards = rig.lab.start(2, "se")
    for slot, board in zip(("slot-1", "slot-2"), boards, strict=True):
        lab_station.discovery().bind_plugged(slot, board.location)
    window = window_of(lab_station)
    log_in(qtbot, window, "terry")
    line = window.line
    line.handle_scan("WO-X509")
    qtbot.waitUntil(lambda: line.batch == "WO-X509", timeout=WAIT_MS)
    for slot in ("slot-1", "slot-2"):
        line.start_slot(slot)
    qtbot.waitUntil(lambda: line.tiles["slot-1"].result == "running", timeout=WAIT_MS)
    window.lock()
    summary = window.lock_screen.slots
    qtbot.waitUntil(
        lambda: all(summary[s].result.text() == "PASS" for s in ("slot-1", "slot-2")),
        timeout=300_000,
    )
    assert boards[0].serial in summary["slot-1"].board.text()
    assert "Passed 2" in window.lock_screen.line_state.text()
    assert "WO-X509" in window.lock_screen.line_state.text()
    recorded = lab_station.store().devices.get(f"lab-{boards[0].serial.lower()}")
    assert recorded is not None and recorded.status == "provisioned"
