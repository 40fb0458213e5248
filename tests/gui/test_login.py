"""Login by PIN or badge, role-dependent views, auto-lock."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtTest import QTest

from station.bootstrap import Station
from tests.support.gui import WAIT_MS, gui_config, log_in


def test_technician_logs_in_with_pin_and_sees_only_the_line(qtbot, plain_station, window_of):
    window = window_of(plain_station)
    assert window.locked
    log_in(qtbot, window, "terry")
    assert not window.locked
    assert window.view_titles() == ["Line"]
    assert window.session.name == "terry"  # every command from the window names terry
    assert "terry (technician)" in window.who.text()
    # technicians can neither reprint nor rework, even if they reached the QA widgets
    assert not window.qa.reprint_button.isEnabled()
    assert not window.qa.rework_button.isEnabled()
    assert not window.batches.seal_button.isEnabled()


def test_roles_decide_the_views(qtbot, plain_station, window_of):
    window = window_of(plain_station)
    log_in(qtbot, window, "quentin")
    assert window.view_titles() == ["Line", "QA", "Batches"]
    assert window.qa.reprint_button.isEnabled()
    window.lock()
    assert window.locked and window.session.name == ""
    log_in(qtbot, window, "ada")
    assert window.view_titles() == ["Line", "QA", "Batches", "Admin"]


def test_badge_scan_logs_in_and_a_wrong_pin_is_refused(qtbot, plain_station, window_of):
    window = window_of(plain_station)
    window.login.name.setText("terry")
    window.login.pin.setText("0000")
    window.login.login_button.click()
    qtbot.waitUntil(lambda: "login refused" in window.login.message.text(), timeout=WAIT_MS)
    assert window.locked and window.operator is None

    qtbot.keyClicks(window.login.badge, "BADGE-QUENTIN")
    qtbot.keyClick(window.login.badge, "\r")
    qtbot.waitUntil(lambda: window.operator is not None, timeout=WAIT_MS)
    assert window.operator.name == "quentin"


def test_window_locks_itself_after_inactivity(qtbot, plain_station, window_of):
    station = Station(
        config=gui_config(plain_station.config, lock_after_s=1), clock=plain_station.clock
    )
    window = window_of(station)
    log_in(qtbot, window, "terry")
    assert window.lock_timer.isActive() and window.lock_timer.interval() == 1000
    qtbot.waitUntil(lambda: window.locked, timeout=WAIT_MS)
    assert window.session.name == ""
    assert window.login.badge.text() == ""
    station.close()


def test_input_in_the_window_restarts_the_inactivity_lock(qtbot, plain_station, window_of):
    station = Station(
        config=gui_config(plain_station.config, lock_after_s=60), clock=plain_station.clock
    )
    window = window_of(station)
    window.show()
    qtbot.waitExposed(window)
    log_in(qtbot, window, "terry")
    restarts: list[tuple[int, int]] = []  # (key, timer ms left just before the restart)
    note_input = window.note_input

    def recording(event: QEvent) -> None:
        if event.type() == QEvent.Type.KeyPress:
            restarts.append((event.key(), window.lock_timer.remainingTime()))
        note_input(event)

    window.note_input = recording
    window.lock_timer.start(600_000)  # ten minutes left; a restart sets it back to one
    # a key press through the platform window, as a keyboard delivers it
    QTest.keyClick(window.windowHandle(), Qt.Key.Key_Shift)
    assert [key for key, _ in restarts] == [Qt.Key.Key_Shift]
    assert restarts[0][1] > 60_000  # it was the ten-minute countdown ...
    # ... restarted by the key press (a coarse timer may round a minute up by a few percent)
    assert 0 < window.lock_timer.remainingTime() < 100_000
    assert not window.locked
    window.lock()
    station.close()
