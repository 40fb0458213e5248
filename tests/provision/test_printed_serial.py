"""Boards that report no serial: the technician scans the one printed on the board."""

from __future__ import annotations

import pytest

from station.domain.boards import printed_serial
from station.domain.errors import PromptDeclinedError, ValidationError
from station.domain.prompts import Ask, OperatorQuestion
from station.domain.provision_events import Disposition, Failed, Step
from station.domain.records import DeviceQuery
from station.services.provision import ProvisionRequest
from station.services.provision.admission import MAX_SERIAL_ASKS
from station_lab.boards.faults import Faults
from tests.support.rig import Rig


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
    assert store.certificates.count() == 0 and store.devices.count(DeviceQuery()) == 0


def test_scanned_serial_names_the_board_and_its_identity(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "se", Faults(no_serial=True))
    outcome = rig.run(board.port, "WO-X509", serial=" STK-0042 ")

    assert outcome.passed, outcome.reason
    assert outcome.serial == "STK-0042"
    store = rig.station().store()
    (device,) = store.devices.find(DeviceQuery(serial="STK-0042"))
    assert device.registration_id == outcome.registration_id
    assert "stk-0042" in device.registration_id
    rig.verify()


def test_scanned_serial_must_match_a_board_that_reports_its_own(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "se")
    outcome = rig.run(board.port, "WO-X509", serial="SOMEONE-ELSE")

    assert not outcome.passed and outcome.code == "provision.serial_mismatch"
    assert board.serial in outcome.reason and "SOMEONE-ELSE" in outcome.reason
    assert rig.station().store().certificates.count() == 0
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


class ScriptedPrompt:
    """A fake operator: answers each question with the next scripted answer (None declines)."""

    def __init__(self, *answers: str | None) -> None:
        self._answers = list(answers)
        self.questions: list[OperatorQuestion] = []

    def ask(self, question: OperatorQuestion) -> str:
        self.questions.append(question)
        answer = self._answers.pop(0)
        if answer is None:
            raise PromptDeclinedError("the operator walked away", remedy="Come back.")
        return answer


def _run_with(rig: Rig, port: str, prompt: ScriptedPrompt, events: list[object]):
    station = rig.station()
    link = station.board_session(port, handshake=False)
    try:
        request = ProvisionRequest(slot="slot-3", batch="WO-X509", operator="tina")
        return station.provisioning().run(link, request, emit=events.append, prompt=prompt)
    finally:
        link.close()
        station.close()
        rig.stations.remove(station)


def test_a_board_without_a_serial_asks_the_operator_and_asks_again_after_a_bad_scan(
    rig: Rig,
) -> None:
    (board,) = rig.lab.start(1, "se", Faults(no_serial=True))
    prompt = ScriptedPrompt("not a serial", " STK-0099 ")
    events: list[object] = []
    outcome = _run_with(rig, board.port, prompt, events)

    assert outcome.passed, outcome.reason
    assert outcome.serial == "STK-0099"
    first, second = prompt.questions
    assert first.slot == "slot-3" and first.ask is Ask.BOARD_SERIAL and first.problem == ""
    assert "in slot-3 reports no serial number" in first.text  # not "slot slot-3"
    assert "is not a board serial number" in second.problem
    (device,) = rig.station().store().devices.find(DeviceQuery(serial="STK-0099"))
    assert device.registration_id == outcome.registration_id
    assert not [e for e in events if isinstance(e, Failed)]
    rig.verify()


def test_a_declined_prompt_stops_the_board_at_connect_with_the_prompts_remedy(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "se", Faults(no_serial=True))
    prompt = ScriptedPrompt(None)
    events: list[object] = []
    outcome = _run_with(rig, board.port, prompt, events)

    assert not outcome.passed and outcome.code == "provision.serial_needed"
    assert outcome.step is Step.CONNECT
    assert "reports no serial number and none was scanned" in outcome.reason
    assert "walked away" in outcome.reason and outcome.remedy == "Come back."
    (failed,) = [e for e in events if isinstance(e, Failed)]
    assert failed.disposition is Disposition.RETRY
    store = rig.station().store()
    assert store.certificates.count() == 0 and store.devices.count(DeviceQuery()) == 0


def test_a_board_with_its_own_serial_is_never_asked(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "se")
    prompt = ScriptedPrompt()
    outcome = _run_with(rig, board.port, prompt, [])
    assert outcome.passed and outcome.serial == board.serial
    assert prompt.questions == []


def test_three_scans_that_are_no_serial_stop_the_board(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "se", Faults(no_serial=True))
    prompt = ScriptedPrompt("a b", "c d", "e f")
    outcome = _run_with(rig, board.port, prompt, [])
    assert not outcome.passed and outcome.code == "provision.serial_needed"
    assert "3 scans were no serial number" in outcome.reason
    assert len(prompt.questions) == MAX_SERIAL_ASKS == 3
