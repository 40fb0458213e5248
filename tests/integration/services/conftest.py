"""Service tests run as an initialised station's admin."""

import pytest


@pytest.fixture
def admin_station(station):
    station.database().initialize(config_file="c", data_dir="d", admin="boss")
    station.operator = "boss"
    return station
