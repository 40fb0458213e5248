"""The local DPS stand-in as a fixture: ``dps`` runs it with ``dps_options``, which a folder or a
test overrides to configure it (linked hubs, limits, timeouts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from station_lab.dps import DpsOptions, LocalDps


@pytest.fixture
def dps_options(tmp_path: Path) -> DpsOptions:
    """The stand-in's defaults, its state in this test's tmp_path."""
    return DpsOptions(state_dir=tmp_path / "dps")


@pytest.fixture
def dps(dps_options: DpsOptions) -> Iterator[LocalDps]:
    """A running stand-in (HTTPS and MQTT on ephemeral ports), stopped at teardown."""
    with LocalDps(dps_options) as server:
        yield server
