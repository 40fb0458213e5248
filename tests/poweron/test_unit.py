"""The firmware side's first boot in-process: what it refuses before any network traffic, what a
factory reset forgets, and how the lab side reports a board that is not there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cbor2
import pytest

from station.domain.errors import LabBoardError
from station.protocol.messages import Request, Status, decode_response, encode_request
from station_lab.boards.firmware import Firmware
from station_lab.boards.poweron import (
    ASSIGNMENT_FILE,
    PowerOnResult,
    first_boot,
    hub_object,
    power_on,
)
from station_lab.boards.state import BoardState, Identity


def _board(tmp_path: Path, kind: str = "se") -> BoardState:
    state = BoardState(tmp_path / "board-1")
    state.create(Identity(serial="LB-1", model="LAB-SE-1", hardware="B", firmware="1", kind=kind))
    return state


def test_no_dps_object_is_not_provisioned(tmp_path: Path) -> None:
    result = first_boot(_board(tmp_path), None, endpoint="127.0.0.1:1", ca_bundle=None)
    assert (result.status, result.error_code) == ("error", "not-provisioned")
    assert result.serial == "LB-1" and result.board == "board-1"


def test_dps_info_without_any_credential_is_reported(tmp_path: Path) -> None:
    state = _board(tmp_path)
    dps = {"endpoint": "global.azure-devices-provisioning.net", "scope": "0ne1", "rid": "r-1"}
    state.object_path("dps").write_bytes(cbor2.dumps(dps))
    result = first_boot(state, None, endpoint="127.0.0.1:1", ca_bundle=None)
    assert result.status == "error"
    assert "no credential" in result.error
    assert result.registration_id == "r-1"


def test_corrupt_dps_object_is_reported(tmp_path: Path) -> None:
    state = _board(tmp_path)
    state.object_path("dps").write_bytes(b"\xff\x00garbage")
    result = first_boot(state, None, endpoint="127.0.0.1:1", ca_bundle=None)
    assert result.status == "error" and "not CBOR" in result.error


def test_hub_object_reads_back_and_factory_reset_forgets_it(tmp_path: Path) -> None:
    state = _board(tmp_path)
    firmware = Firmware(state)
    request = encode_request(Request(seq=1, op="read", args={"name": "hub"}))
    assert decode_response(firmware.handle(request)).status == Status.NOT_FOUND
    stored = {"assignedHub": "hub-a", "deviceId": "d-1", "registrationId": "d-1"}
    (state.root / ASSIGNMENT_FILE).write_text(json.dumps(stored))
    assert cbor2.loads(hub_object(state) or b"") == {
        "hub": "hub-a",
        "deviceId": "d-1",
        "rid": "d-1",
    }
    again = encode_request(Request(seq=2, op="read", args={"name": "hub"}))
    answer = decode_response(firmware.handle(again))
    assert answer.status == Status.OK
    assert cbor2.loads(answer.result["data"])["hub"] == "hub-a"
    state.erase()
    assert hub_object(state) is None


def test_result_round_trips_through_json() -> None:
    result = PowerOnResult(board="lab-1", serial="S", status="assigned", assigned_hub="h")
    assert PowerOnResult.from_json(json.loads(json.dumps(result.to_json()))) == result
    assert result.assigned


def test_power_on_of_a_board_that_is_gone_raises(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    with pytest.raises(LabBoardError) as caught:
        power_on(gone.pid, tmp_path / "board-1", endpoint="127.0.0.1:1", ca_bundle=None)
    assert "not running" in caught.value.message
