"""Admission for the line: no board runs without an operator; the board that just passed,
started again unswapped, is told to be swapped (not sent to QA); a locked board the station
cannot place says everything the station knows about it."""

from __future__ import annotations

from station.domain.provision_events import Disposition, Failed, Step
from station.domain.records import DeviceQuery
from station_lab.boards.faults import Faults
from tests.support.rig import Rig


def _failed(events: list[object]) -> Failed:
    (failed,) = [e for e in events if isinstance(e, Failed)]
    return failed


def test_a_board_is_never_started_without_an_operator(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "nokey")
    events: list[object] = []
    outcome = rig.run(board.port, "WO-SYM", operator="", events=events)

    assert not outcome.passed and outcome.code == "auth.permission_denied"
    assert outcome.step is Step.CONNECT and "nobody is logged in" in outcome.reason
    assert _failed(events).disposition is Disposition.RETRY  # log in and start it again
    store = rig.station().store()
    assert store.jobs.open() == [] and store.devices.count(DeviceQuery()) == 0
    assert rig.run(board.port, "WO-SYM").passed  # untouched: it runs once someone is there

    # a board that passed without a certificate is recognised by the identity it holds
    again = rig.run(board.port, "WO-SYM", passed_serial=board.serial)
    assert again.code == "provision.already_passed"


def test_the_passed_board_started_again_is_told_to_be_swapped_not_sent_to_qa(rig: Rig) -> None:
    first, second = rig.lab.start(2, "se")
    passed = rig.run(first.port, "WO-X509")
    assert passed.passed
    events: list[object] = []
    again = rig.run(first.port, "WO-X509", passed_serial=first.serial, events=events)

    assert not again.passed and again.code == "provision.already_passed"
    assert again.step is Step.DUPLICATES
    assert again.reason.startswith(f"Board {first.serial} already passed (batch WO-X509")
    assert "Swap it for the next board" in again.remedy
    assert _failed(events).disposition is Disposition.SWAP
    store = rig.station().store()
    assert store.jobs.open() == []  # nothing started, nothing to resume or void
    assert store.devices.get(passed.registration_id).status == "provisioned"

    # a truly new board in the same slot goes on
    assert rig.run(second.port, "WO-X509", passed_serial=first.serial).passed
    # without the line's word that it passed here, the same board is a duplicate for QA
    anywhere = rig.run(first.port, "WO-X509", slot="s2")
    assert anywhere.code == "identity.duplicate"
    rig.verify()


def test_a_locked_board_without_a_record_says_what_the_station_knows(rig: Rig) -> None:
    # a board without a serial, recorded under the serial scanned the first time, comes back
    # with another sticker scanned: its serial is new, but the board carries its identity
    (board,) = rig.lab.start(1, "se", Faults(no_serial=True))
    first = rig.run(board.port, "WO-X509", serial="STK-A")
    assert first.passed
    events: list[object] = []
    again = rig.run(board.port, "WO-X509", serial="STK-B", events=events)

    assert again.code == "provision.board_locked" and again.step is Step.DUPLICATES
    assert (
        f"carries registration ID {first.registration_id}, which is recorded for board STK-A"
        in again.reason
    )
    failed = _failed(events)
    assert failed.disposition is Disposition.QA
    assert "board_registration_id=" + first.registration_id in failed.detail
    assert "jobs=" in failed.detail and ":passed@record" in failed.detail

    # a board locked outside this station: nothing to go on, and the tile says so
    (stranger,) = rig.lab.start(1, "se")
    station = rig.station()
    link = station.board_session(stranger.port)
    link.lock()
    link.close()
    locked = rig.run(stranger.port, "WO-X509", slot="s2")
    assert locked.code == "provision.board_locked"
    assert (
        locked.reason == f"Board {stranger.serial} is locked but the station has no record of it."
    )
    assert "board_registration_id=none" in locked.detail and "jobs=none" in locked.detail
