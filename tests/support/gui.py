"""GUI test helpers: a ``[gui]`` section for tests, the test operators, logging in through the
login screen, how long to wait on a busy machine, and the window fixtures (a lab station, windows
that are shut down at the end) for the GUI and Cortex-M tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from station.bootstrap import Station
from station.config import GuiSection, StationConfig
from station.domain.records import Role
from station.gui.main_window import MainWindow
from tests.support.rig import Rig

WAIT_MS = 60_000  # generous: two busy cores, swtpm and scrypt logins
SLOTS = ("slot-1", "slot-2", "slot-3")
#: name -> (role, PIN, badge)
PEOPLE = {
    "terry": (Role.TECHNICIAN, "135791", "BADGE-TERRY"),
    "quentin": (Role.QA, "246802", "BADGE-QUENTIN"),
    "ada": (Role.ADMIN, "999999", "BADGE-ADA"),
}


def gui_config(config: StationConfig, **gui: object) -> StationConfig:
    """``config`` with a ``[gui]`` section for tests (three named slots, no beep)."""
    values: dict[str, object] = {"slot_names": SLOTS, "beep_on_fail": False, "hotplug": False}
    values.update(gui)
    return dataclasses.replace(config, gui=GuiSection(**values))  # type: ignore[arg-type]


def add_people(station: Station) -> None:
    """Add the test operators (as the admin 'boss')."""
    for name, (role, pin, badge) in PEOPLE.items():
        station.operators().add(name, role, pin=pin, badge=badge, operator="boss")


def log_in(qtbot: QtBot, window: MainWindow, name: str) -> None:
    """Log in through the login screen with name and PIN, and wait for the tabs."""
    window.login.name.setText(name)
    window.login.pin.setText(PEOPLE[name][1])
    qtbot.keyClick(window.login.pin, "\r")
    qtbot.waitUntil(lambda: window.operator is not None, timeout=WAIT_MS)
    assert window.operator is not None and window.operator.name == name


@pytest.fixture
def lab_station(rig: Rig) -> Iterator[Station]:
    """A provisioning-ready station (rig: SoftHSM2 CA, lab batches) with the test operators."""
    rig.config = gui_config(rig.config)
    built = rig.station()
    add_people(built)
    yield built


@pytest.fixture
def window_of(qtbot: QtBot) -> Iterator[object]:
    """Build main windows that are shut down (slot workers stopped) at the end of the test."""
    windows: list[MainWindow] = []

    def make(station: Station) -> MainWindow:
        window = MainWindow(station)
        qtbot.addWidget(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.line.shutdown()
        # pool tasks hold their own stations: let them finish before the tmp files go
        from PySide6.QtCore import QThreadPool

        QThreadPool.globalInstance().waitForDone(WAIT_MS)
