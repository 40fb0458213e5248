"""GUI rigs: a real station on a tmp config (SQLite file, SoftHSM2 CA, lab boards when needed),
operators with PINs and badges, and a helper to log in through the login screen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from station.bootstrap import Station, build_station
from station.config import StationConfig
from station.gui.main_window import MainWindow
from tests.support.gui import WAIT_MS, add_people, gui_config
from tests.support.rig import Rig


@pytest.fixture
def plain_station(tmp_path: Path, config: StationConfig, clock) -> Iterator[Station]:
    """A station without CA or lab: an initialised database and the test operators."""
    built = build_station(gui_config(config), clock=clock, operator="boss")
    built.database().initialize(config_file="c", data_dir="d", admin="boss")
    add_people(built)
    yield built
    built.close()


@pytest.fixture
def lab_station(rig: Rig) -> Iterator[Station]:
    """A provisioning-ready station (rig: SoftHSM2 CA, lab batches) with the test operators."""
    rig.config = gui_config(rig.config)
    built = rig.station("boss")
    add_people(built)
    built.operator = ""
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
