"""Service tests run on an initialised station whose admin is 'boss'."""

import pytest


@pytest.fixture
def admin_station(station):
    station.database().initialize(config_file="c", data_dir="d", admin="boss", operator="boss")
    return station
