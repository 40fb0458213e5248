"""The Cortex-M port in QEMU against the real station: the provisioning rig of tests/provision
(SQLite store, SoftHSM2 CA, lab root, a batch per lab product) with a lab of QEMU boards, and
the GUI fixtures of tests/gui."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from station_lab.boards.runner import LabBoards
from tests.support.gui import lab_station, window_of
from tests.support.rig import Rig

# the GUI's fixtures (the rig's are registered for every folder)
__all__ = ["lab_station", "window_of"]


@pytest.fixture
def qemu_lab(rig: Rig) -> Iterator[LabBoards]:
    """A lab runner whose boards are the Cortex-M firmware in QEMU, published in the rig's
    registry (the station discovers them like any lab board)."""
    lab = LabBoards(
        rig.config.lab_dir, baud=0, registry=rig.config.lab_dir / "boards.json", firmware="qemu"
    )
    try:
        yield lab
    finally:
        lab.stop()
