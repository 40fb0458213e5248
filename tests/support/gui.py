"""GUI test helpers: a ``[gui]`` section for tests, the test operators, logging in through the
login screen, and how long to wait on a busy machine."""

from __future__ import annotations

import dataclasses

from pytestqt.qtbot import QtBot

from station.bootstrap import Station
from station.config import GuiSection, StationConfig
from station.domain.records import Role
from station.gui.main_window import MainWindow

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
    """Add the test operators (``station`` is logged in as an admin)."""
    for name, (role, pin, badge) in PEOPLE.items():
        station.operators().add(name, role, pin=pin, badge=badge)


def log_in(qtbot: QtBot, window: MainWindow, name: str) -> None:
    """Log in through the login screen with name and PIN, and wait for the tabs."""
    window.login.name.setText(name)
    window.login.pin.setText(PEOPLE[name][1])
    qtbot.keyClick(window.login.pin, "\r")
    qtbot.waitUntil(lambda: window.operator is not None, timeout=WAIT_MS)
    assert window.operator is not None and window.operator.name == name
