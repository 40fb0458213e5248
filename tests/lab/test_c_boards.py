"""C boards in the lab: the runner starts the C agent's host port, and says plainly what it lacks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from station.domain.errors import LabBoardError
from station_lab.boards import c_agent
from station_lab.boards.faults import Faults
from station_lab.boards.runner import LabBoards


def test_the_registry_lists_c_boards_run_by_the_host_port(tmp_path: Path) -> None:
    with LabBoards(tmp_path / "lab", baud=0, firmware="c") as lab:
        (board,) = lab.start(1, "nokey")
        registry = json.loads(lab.registry_path.read_text())
        (entry,) = registry["boards"]
        assert entry["firmware"] == "c" and entry["device"] == board.port
        assert board.process is not None
        assert Path(os.readlink(f"/proc/{board.process.pid}/exe")) == c_agent.agent_binary()


def test_a_fault_the_c_board_cannot_inject_is_refused(tmp_path: Path) -> None:
    with LabBoards(tmp_path / "lab", baud=0, firmware="c") as lab:
        with pytest.raises(LabBoardError) as caught:
            lab.start(1, "tpm", Faults(lie_ek=True))
        assert "lie_ek" in caught.value.message
        assert "--firmware python" in caught.value.remedy
        assert lab.boards == {}


def test_unknown_firmware_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LabBoardError) as caught:
        LabBoards(tmp_path / "lab", firmware="rust")
    assert "python, c" in caught.value.remedy


def test_an_unbuilt_agent_says_to_run_make_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(c_agent.BINARY_ENV, str(tmp_path / "missing"))
    with (
        LabBoards(tmp_path / "lab", baud=0, firmware="c") as lab,
        pytest.raises(LabBoardError) as caught,
    ):
        lab.start(1, "se")
    assert "make agent" in caught.value.remedy


def test_c_boards_have_no_lab_first_boot(tmp_path: Path) -> None:
    with LabBoards(tmp_path / "lab", baud=0, firmware="c") as lab:
        (board,) = lab.start(1, "se")
        with pytest.raises(LabBoardError) as caught:
            lab.power_on(board.index, endpoint="localhost:1", ca_bundle=None)
        assert "first boot" in caught.value.message
