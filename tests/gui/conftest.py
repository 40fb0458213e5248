"""GUI rigs: a real station on a tmp config (SQLite file, SoftHSM2 CA, lab boards when needed),
operators with PINs and badges, and a helper to log in through the login screen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from station.bootstrap import Station, build_station
from station.config import StationConfig
from tests.support.gui import add_people, gui_config, lab_station, window_of

# shared with tests/cortex_m (tests/support/gui.py)
__all__ = ["lab_station", "window_of"]


@pytest.fixture
def plain_station(tmp_path: Path, config: StationConfig, clock) -> Iterator[Station]:
    """A station without CA or lab: an initialised database and the test operators."""
    built = build_station(gui_config(config), clock=clock)
    built.database().initialize(config_file="c", data_dir="d", admin="boss", operator="boss")
    add_people(built)
    yield built
    built.close()
