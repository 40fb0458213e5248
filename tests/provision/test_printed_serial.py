"""Boards that report no serial: the technician scans the one printed on the board."""

from __future__ import annotations

import pytest

from station.domain.boards import printed_serial
from station.domain.errors import ValidationError
from station.domain.provision_events import Failed, Step
from station.domain.records import DeviceQuery
from station_lab.boards.faults import Faults
from tests.provision.conftest import Rig


def test_board_without_a_serial_stops_at_connect_and_asks_for_a_scan(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "se", Faults(no_serial=True))
    events: list[object] = []
    outcome = rig.run(board.port, "WO-X509", events=events)

    assert not outcome.passed and outcome.code == "provision.serial_needed"
    assert outcome.step is Step.CONNECT
    assert "reports no serial number" in outcome.reason
    assert outcome.remedy.startswith("Scan the serial number printed on the board")
    failed = [e for e in events if isinstance(e, Failed)]
    assert [f.code for f in failed] == ["provision.serial_needed"]
    # nothing was written for a board the station cannot name
    store = rig.station().store()
    assert store.count_certificates() == 0 and store.count_devices(DeviceQuery()) == 0


def test_scanned_serial_names_the_board_and_its_identity(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "se", Faults(no_serial=True))
    outcome = rig.run(board.port, "WO-X509", serial=" STK-0042 ")

    assert outcome.passed, outcome.reason
    assert outcome.serial == "STK-0042"
    store = rig.station().store()
    (device,) = store.devices(DeviceQuery(serial="STK-0042"))
    assert device.registration_id == outcome.registration_id
    assert "stk-0042" in device.registration_id
    rig.verify()


def test_scanned_serial_must_match_a_board_that_reports_its_own(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "se")
    outcome = rig.run(board.port, "WO-X509", serial="SOMEONE-ELSE")

    assert not outcome.passed and outcome.code == "provision.serial_mismatch"
    assert board.serial in outcome.reason and "SOMEONE-ELSE" in outcome.reason
    assert rig.station().store().count_certificates() == 0
    # the same board with its own serial scanned (or none) goes through
    assert rig.run(board.port, "WO-X509", serial=board.serial).passed


def test_same_printed_serial_on_a_second_board_is_a_duplicate(rig: Rig) -> None:
    first, second = rig.lab.start(2, "se", Faults(no_serial=True))
    assert rig.run(first.port, "WO-X509", serial="STK-7").passed
    again = rig.run(second.port, "WO-X509", slot="s2", serial="STK-7")
    assert not again.passed and again.code == "identity.duplicate"


@pytest.mark.parametrize(
    "text", ["", "   ", "has space", "x" * 65, "-leading-dash", "semi;colon", "ünï"]
)
def test_printed_serial_refuses_what_cannot_be_a_serial(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        printed_serial(text)
    assert "is not a board serial number" in caught.value.message
    assert caught.value.remedy


@pytest.mark.parametrize("text", ["A", "SN-0001", "lot7/unit_12:rev.B", "9" * 64])
def test_printed_serial_accepts_sticker_serials(text: str) -> None:
    assert printed_serial(f"  {text}\n") == text
