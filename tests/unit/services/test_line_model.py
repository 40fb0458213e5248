"""The line model without Qt: slot states, the serial and rework queues, Start, messages."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from station.domain.errors import KeyPinError, ScanMismatchError
from station.domain.products import ProductAttestation
from station.domain.prompts import OperatorQuestion, serial_question
from station.domain.provision_events import (
    Disposition,
    Failed,
    Passed,
    Resumed,
    Step,
    StepPassed,
    StepStarted,
    steps_for,
)
from station.domain.records import OperatorRecord, Role
from station.services.line import (
    BatchChoice,
    LineModel,
    ProvisionOrder,
    Scan,
    ScanKind,
    SelectBatch,
    SlotResult,
    SwitchOperator,
)

STEPS = steps_for(ProductAttestation.X509, lock=True)
WO = BatchChoice("WO-1", "widget", size=10, provisioned=4, steps=STEPS)


@dataclass
class FakeQuestion:
    """What a slot worker waits on, recording how it was settled."""

    question: OperatorQuestion
    answers: list[str] = field(default_factory=list)
    declined: list[str] = field(default_factory=list)

    def answer(self, text: str) -> bool:
        if self.answers or self.declined:
            return False
        self.answers.append(text)
        return True

    def decline(self, why: str, *, remedy: str = "") -> bool:
        if self.answers or self.declined:
            return False
        self.declined.append(why)
        return True


def _line(*, hotplug: bool = True, slots: int = 3) -> LineModel:
    model = LineModel([f"slot-{n}" for n in range(1, slots + 1)], hotplug=hotplug)
    model.choose(WO)
    return model


def _failed(slot: str, disposition: Disposition, code: str = "x.y") -> Failed:
    return Failed(slot, Step.CSR, "It broke.", "Fix it.", code, "detail", "SN-1", 7, disposition)


def _ask(model: LineModel, slot: str) -> FakeQuestion:
    question = FakeQuestion(serial_question(slot, "LAB-SE"))
    model.asked(question)
    return question


def test_before_a_batch_nothing_starts_and_the_message_says_to_choose_one() -> None:
    model = LineModel(["slot-1"])
    assert model.message.startswith("Choose a batch")
    assert not model.view("slot-1").can_start
    assert not model.start("slot-1")
    assert model.message == "Choose a batch first: scan its work order."
    assert model.plugged("slot-1", "/dev/a", operator="terry") is None
    model.expire_note()
    assert model.message.startswith("Choose a batch")  # back to what the line waits for


def test_a_board_runs_to_pass_and_its_start_is_off_until_the_next_board_arrives() -> None:
    model = _line()
    assert model.message == "Batch WO-1 (widget): plug boards in."
    assert model.view("slot-1").can_start
    assert model.start("slot-1")
    assert model.view("slot-1").step == "looking for the board…"
    order = model.plugged("slot-1", "/dev/a", operator="terry")
    assert order == ProvisionOrder("slot-1", "/dev/a", "WO-1", "terry")
    assert model.plugged("slot-1", "/dev/a", operator="terry") is None  # busy with that board
    view = model.view("slot-1")
    assert view.result is SlotResult.RUNNING and not view.can_start
    assert (view.done, view.total, view.board) == (0, len(STEPS), "board on /dev/a")

    assert not model.apply(StepStarted("slot-1", Step.CONNECT))
    assert model.view("slot-1").step == "step: connect"
    assert not model.apply(StepPassed("slot-1", Step.CONNECT, "SN-1 (LAB)"))
    assert model.view("slot-1").done == 1
    assert model.apply(Passed("slot-1", "lab-sn-1", "SN-1", "WO-1"))
    view = model.view("slot-1")
    assert view.result is SlotResult.PASS and view.done == view.total
    assert view.board == "SN-1 — lab-sn-1" and view.step == "recorded in WO-1"
    assert not view.can_start and view.start_text == "Start"
    assert not model.start("slot-1")
    assert "swap in the next board" in model.message
    assert (model.passed, model.failed, model.batch_done) == (1, 0, 5)

    # hot-plug: the next board arrives in the same slot and starts
    assert model.plugged("slot-1", "/dev/b", operator="terry", arrived=True) is not None


def test_without_hot_plug_a_passed_tile_offers_the_next_board() -> None:
    model = _line(hotplug=False)
    model.plugged("slot-1", "/dev/a", operator="terry")
    model.apply(Passed("slot-1", "lab-sn-1", "SN-1", "WO-1"))
    view = model.view("slot-1")
    assert view.can_start and view.start_text == "Next board"


def test_a_board_arriving_while_nobody_is_logged_in_waits_for_the_next_login() -> None:
    model = _line(hotplug=True)
    model.arm_rework("WO-0", "wrong firmware", "SN-9")
    assert model.plugged("slot-1", "/dev/a", operator="", arrived=True) is None
    view = model.view("slot-1")
    assert view.result is SlotResult.WAITING and view.board == "board on /dev/a"
    assert view.step == "starts at the next login"
    assert "plugged in while the window was locked" in view.reason
    assert "operator who logs in" in view.remedy
    assert model.waiting == ("slot-1",)
    assert model.rework is not None  # armed still: nothing started
    model.prepared("slot-1", None)  # a slot getting ready does not hide the waiting board
    assert model.view("slot-1").result is SlotResult.WAITING
    assert model.logged_in("") == []

    (order,) = model.logged_in("ada")
    assert order == ProvisionOrder("slot-1", "/dev/a", "WO-0", "ada", "wrong firmware", "SN-9")
    assert model.view("slot-1").result is SlotResult.RUNNING and model.waiting == ()
    assert model.logged_in("ada") == []  # each waiting board starts once


def test_a_waiting_board_pulled_out_never_starts() -> None:
    model = _line()
    model.plugged("slot-2", "/dev/b", operator="", arrived=True)
    model.unplugged("slot-2")
    view = model.view("slot-2")
    assert view.result is SlotResult.IDLE and view.board == "no board" and not view.reason
    assert model.logged_in("terry") == []


def test_next_board_carries_the_passed_board_and_its_swap_is_no_failure() -> None:
    model = _line(hotplug=False)
    model.plugged("slot-1", "/dev/a", operator="terry")
    model.apply(Passed("slot-1", "lab-sn-1", "SN-1", "WO-1"))
    assert model.start("slot-1")
    order = model.plugged("slot-1", "/dev/a", operator="terry")
    assert order is not None and order.passed_serial == "SN-1"

    swap = Failed(
        "slot-1",
        Step.DUPLICATES,
        "Board SN-1 already passed (batch WO-1, registration ID lab-sn-1): it is still in the "
        "slot.",
        "Swap it for the next board, then press Next board.",
        "provision.already_passed",
        "detail",
        "SN-1",
        None,
        Disposition.SWAP,
    )
    assert not model.apply(swap)  # nothing to count
    view = model.view("slot-1")
    assert view.result is SlotResult.SWAP and view.done == view.total
    assert view.step == "already passed: swap in the next board"
    assert view.can_start and view.start_text == "Next board"
    assert "Swap it for the next board" in model.message
    assert (model.passed, model.failed) == (1, 0)
    # the next press still names the board that passed: the same board is told again
    order = model.plugged("slot-1", "/dev/a", operator="terry")
    assert order is not None and order.passed_serial == "SN-1"


def test_a_board_seen_arriving_or_failing_is_no_longer_the_passed_one() -> None:
    model = _line(hotplug=True)
    model.plugged("slot-1", "/dev/a", operator="terry")
    model.apply(Passed("slot-1", "lab-sn-1", "SN-1", "WO-1"))
    order = model.plugged("slot-1", "/dev/b", operator="terry", arrived=True)
    assert order is not None and order.passed_serial == ""
    model.apply(_failed("slot-1", Disposition.RETRY))
    assert model.plugged("slot-1", "/dev/b", operator="terry").passed_serial == ""


def test_pulling_a_passed_board_frees_its_start() -> None:
    model = _line()
    model.plugged("slot-1", "/dev/a", operator="terry")
    model.apply(Passed("slot-1", "lab-sn-1", "SN-1", "WO-1"))
    model.unplugged("slot-1")
    view = model.view("slot-1")
    assert view.can_start and view.board == "no board" and view.result is SlotResult.PASS


@pytest.mark.parametrize(
    ("disposition", "result", "can_start"),
    [
        (Disposition.RETRY, SlotResult.FAIL, True),
        (Disposition.OTHER_BOARD, SlotResult.FAIL, True),
        (Disposition.QA, SlotResult.QA, False),
    ],
)
def test_a_failure_shows_where_the_board_goes_by_its_disposition(
    disposition: Disposition, result: SlotResult, can_start: bool
) -> None:
    model = _line()
    model.plugged("slot-2", "/dev/a", operator="terry")
    # the code is not looked at: a QA-looking code with a RETRY disposition stays FAIL
    assert model.apply(_failed("slot-2", disposition, code="identity.duplicate"))
    view = model.view("slot-2")
    assert view.result is result and view.can_start is can_start
    assert (view.reason, view.remedy) == ("It broke.", "Fix it.")
    assert view.detail == "identity.duplicate at csr: detail" and view.board == "SN-1"
    assert view.step == "stopped at: csr"
    assert (model.passed, model.failed) == (0, 1)
    assert model.counters(30.0) == "Passed 0   Failed 1   Units/hour 0"


def test_serial_scans_go_to_the_first_slot_asking_and_a_bad_scan_is_refused() -> None:
    model = _line()
    model.plugged("slot-1", "/dev/a", operator="terry")
    model.plugged("slot-2", "/dev/b", operator="terry")
    one, two = _ask(model, "slot-1"), _ask(model, "slot-2")
    assert model.asking == ("slot-1", "slot-2")
    assert model.view("slot-1").result is SlotResult.ASKING
    assert model.view("slot-1").step == "the next serial scan goes here"
    assert model.view("slot-2").step == "serial scan: 1 ahead"
    assert "reports no serial number" in model.view("slot-1").reason
    assert not model.view("slot-1").can_start
    assert model.message.startswith("Scan the serial printed on the board in slot-1")
    assert (model.passed, model.failed) == (0, 0)  # asking is an action, not a failure

    # a scan that cannot be a serial is refused; nothing is answered
    assert not model.serial_scanned("not a serial")
    assert "is not a board serial number" in model.message
    assert one.answers == [] and model.asking == ("slot-1", "slot-2")

    # Start on slot-2 makes it take the next scan
    assert not model.start("slot-2")
    assert model.asking == ("slot-2", "slot-1")
    assert model.view("slot-2").step == "the next serial scan goes here"
    assert model.scanned(Scan(ScanKind.OTHER, "STK-B", refusal=ScanMismatchError("no"))) is None
    assert two.answers == ["STK-B"] and one.answers == []
    view = model.view("slot-2")
    assert view.result is SlotResult.RUNNING and view.board == "STK-B"
    assert model.message == "Serial STK-B scanned for slot-2: provisioning."

    # the tile's own field answers its slot, whatever the queue says
    assert model.serial_scanned("STK-A", "slot-1")
    assert one.answers == ["STK-A"] and model.asking == ()
    assert not model.serial_scanned("STK-C")
    assert model.message == "No slot is waiting for a serial number."


def test_a_board_pulled_while_its_slot_asks_ends_without_counting() -> None:
    model = _line()
    model.plugged("slot-1", "/dev/a", operator="terry")
    question = _ask(model, "slot-1")
    model.unplugged("slot-1")
    assert question.declined and model.asking == ()
    view = model.view("slot-1")
    assert view.result is SlotResult.IDLE and view.board == "no board"
    # the worker's run then ends at connect: not a failure of the line
    assert not model.apply(_failed("slot-1", Disposition.RETRY))
    assert model.view("slot-1").result is SlotResult.IDLE and model.failed == 0


def test_a_rework_goes_to_the_next_board_and_stays_armed_when_another_board_is_started() -> None:
    model = _line()
    model.arm_rework("WO-0", "wrong firmware", "SN-9")
    assert model.message == "Rework armed for board SN-9 (batch WO-0): start its slot."
    order = model.plugged("slot-2", "/dev/b", operator="terry")
    assert order == ProvisionOrder("slot-2", "/dev/b", "WO-0", "terry", "wrong firmware", "SN-9")
    assert model.rework is None
    # another board was in slot-2: it stops before anything is voided; the rework stays armed
    model.apply(_failed("slot-2", Disposition.OTHER_BOARD, "provision.serial_mismatch"))
    assert model.rework is not None and model.rework.serial == "SN-9"
    assert "rework stays armed" in model.message
    # a passed board's Start is on while a rework is armed (QA's board may sit there)
    model.plugged("slot-1", "/dev/a", operator="terry")
    model.rework = None
    model.apply(Passed("slot-1", "lab-sn-1", "SN-1", "WO-1"))
    assert not model.view("slot-1").can_start
    model.arm_rework("WO-0", "again", "SN-1")
    assert model.view("slot-1").can_start
    order = model.plugged("slot-1", "/dev/a", operator="terry")
    assert order is not None and order.rework_reason == "again"
    model.apply(Passed("slot-1", "lab-sn-1", "SN-1", "WO-0"))
    assert model.rework is None


def test_scans_select_a_batch_switch_the_operator_check_a_label_or_are_refused() -> None:
    model = _line()
    assert model.scanned(Scan(ScanKind.WORK_ORDER, "WO-2")) == SelectBatch("WO-2")
    ada = OperatorRecord(name="ada", role=Role.TECHNICIAN, enabled=True, created_at="2026-01-01")
    assert model.scanned(Scan(ScanKind.BADGE, "B", operator=ada)) == SwitchOperator(ada)
    assert model.message == "Operator switched to ada."
    model.scanned(Scan(ScanKind.LABEL, "x", registration_id="lab-sn-1"))
    assert model.message == "Label OK: lab-sn-1."
    refusal = ScanMismatchError("'zz' is not a label", remedy="Scan the label.")
    model.scanned(Scan(ScanKind.OTHER, "zz", refusal=refusal))
    assert model.message == "'zz' is not a label — Scan the label."
    model.expire_note()
    assert model.message == "Batch WO-1 (widget): plug boards in."


def test_a_slot_that_cannot_get_ready_says_why_until_it_is_ready() -> None:
    model = _line()
    model.prepared("slot-1", KeyPinError("the token PIN is wrong", remedy="Fix the PIN."))
    view = model.view("slot-1")
    assert view.result is SlotResult.FAIL and view.detail == "hsm.pin"
    assert view.reason == "the token PIN is wrong"
    model.prepared("slot-1", None)
    view = model.view("slot-1")
    assert view.result is SlotResult.IDLE and view.step == "ready" and view.reason == ""


def test_a_resumed_board_says_so() -> None:
    model = _line()
    model.plugged("slot-1", "/dev/a", operator="terry")
    model.apply(Resumed("slot-1", 3, "csr", "kept certificate 12"))
    view = model.view("slot-1")
    assert view.step == "resumed from csr" and view.detail == "kept certificate 12"
