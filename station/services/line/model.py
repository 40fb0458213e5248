"""The line without Qt: what every slot shows, the serial and rework queues, the counters.

The line view (``station.gui.line_view``) only renders this model and forwards what happens to
it: scans (classified off the GUI thread), Start presses, boards plugged and pulled, the slot
workers' events and questions. The model decides what each slot shows, which board a scanned
serial or an armed rework goes to, whether Start is allowed, and what the message bar says;
whether a failed board goes to QA comes with the event (``Failed.disposition``, decided by the
error's type in the provisioning service). It does no I/O and keeps no clock: the view passes
the shift's elapsed time when it asks for the counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from station.domain.boards import printed_serial, slot_phrase
from station.domain.errors import StationError, describe
from station.domain.prompts import OperatorQuestion
from station.domain.provision_events import (
    Disposition,
    Failed,
    Passed,
    ProvisionEvent,
    Resumed,
    StepFailed,
    StepPassed,
    StepStarted,
)
from station.domain.records import OperatorRecord
from station.services.line.scans import BatchChoice, Scan, ScanKind


class SlotResult(StrEnum):
    """The large word on a slot's tile."""

    IDLE = "idle"
    RUNNING = "running"
    ASKING = "SCAN SERIAL"  # the technician acts: scan the serial printed on the board
    WAITING = "WAITING"  # a board arrived while the window was locked: it starts at the login
    SWAP = "SWAP BOARD"  # the board that passed is still in the slot: swap in the next one
    PASS = "PASS"
    FAIL = "FAIL"
    QA = "needs QA"


class Question(Protocol):
    """A question a slot's worker waits on (:class:`~station.services.prompts.PendingQuestion`)."""

    question: OperatorQuestion

    def answer(self, text: str) -> bool:
        """Answer it; False when it was settled already."""
        ...

    def decline(self, why: str, *, remedy: str = "") -> bool:
        """Give no answer; False when it was settled already."""
        ...


@dataclass(frozen=True)
class SlotView:
    """Everything one slot's tile shows."""

    slot: str
    result: SlotResult
    board: str
    step: str
    done: int
    total: int
    reason: str
    remedy: str
    detail: str
    can_start: bool
    start_text: str


@dataclass(frozen=True)
class ProvisionOrder:
    """Provision the board on ``port`` in ``slot`` (what the view hands to the slot's worker).

    ``operator`` is the one at the window when the order was made: never empty.
    """

    slot: str
    port: str
    batch: str
    operator: str
    rework_reason: str = ""
    serial: str = ""  # the board QA armed a rework for: a board with another serial is refused
    passed_serial: str = ""  # the board that passed in this slot, if no swap was seen since


@dataclass(frozen=True)
class Rework:
    """QA armed a rework: board ``serial`` of ``batch`` is voided and provisioned anew."""

    batch: str
    reason: str
    serial: str


@dataclass(frozen=True)
class SelectBatch:
    """The scan was a work order: choose that batch (the view checks it off the GUI thread)."""

    name: str


@dataclass(frozen=True)
class SwitchOperator:
    """The scan was a badge: that operator takes over."""

    operator: OperatorRecord


ScanAction = SelectBatch | SwitchOperator | None


@dataclass
class _Slot:
    """One slot's state (mutable, owned by the model)."""

    name: str
    result: SlotResult = SlotResult.IDLE
    port: str = ""
    board: str = "no board"
    step: str = ""
    done: int = 0
    total: int = 1
    reason: str = ""
    remedy: str = ""
    detail: str = ""
    unready: bool = False  # the tile shows why the slot could not get ready
    spent: bool = False  # its board passed or went to QA and is still plugged in
    passed_serial: str = ""  # its last board passed and no swap was seen since (no hot-plug)
    waiting: bool = False  # a board arrived while nobody was logged in: it starts at the login
    question: Question | None = None
    withdrawn: bool = False  # its board was pulled out while the slot asked about it
    rework: Rework | None = None  # the rework this slot's run carries

    def clear_words(self) -> None:
        self.reason = self.remedy = self.detail = ""


@dataclass
class LineModel:
    """The line's state; every method runs on one thread (the GUI thread).

    Args:
        slots: the slot names, in tile order.
        hotplug: whether boards are started when they appear (then a passed board's Start is
            off until the board is swapped; without hot-plug Start reads "Next board").
    """

    slots: list[str]
    hotplug: bool = True
    batch: BatchChoice | None = None
    passed: int = 0
    failed: int = 0
    rework: Rework | None = None
    _state: dict[str, _Slot] = field(init=False)
    _asking: list[str] = field(init=False, default_factory=list)  # next serial scan: first
    _note: str = field(init=False, default="")
    _passed_before_batch: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._state = {slot: _Slot(slot) for slot in self.slots}

    # ------------------------------------------------------------------ what the view shows
    def view(self, slot: str) -> SlotView:
        """What ``slot``'s tile shows now."""
        s = self._state[slot]
        return SlotView(
            slot=slot,
            result=s.result,
            board=s.board,
            step=s.step,
            done=s.done,
            total=s.total,
            reason=s.reason,
            remedy=s.remedy,
            detail=s.detail,
            can_start=self._can_start(s),
            start_text="Next board" if s.spent and not self.hotplug else "Start",
        )

    @property
    def message(self) -> str:
        """The message bar: the latest note, or else what the line waits for now."""
        return self._note or self.standing_message

    @property
    def has_note(self) -> bool:
        """Whether the message bar shows a note (the view expires it after a while)."""
        return bool(self._note)

    def expire_note(self) -> None:
        """Let the message bar go back to what the line waits for."""
        self._note = ""

    @property
    def standing_message(self) -> str:
        """What the line waits for, derived from its state (never stale)."""
        if self.batch is None:
            return "Choose a batch: scan its work order, or pick it in the Batch list."
        if self._asking:
            return (
                f"Scan the serial printed on the board in {slot_phrase(self._asking[0])} "
                "(or type it in its tile)."
            )
        if self.rework is not None:
            return (
                f"Rework armed for board {self.rework.serial} (batch {self.rework.batch}): "
                "start its slot."
            )
        return f"Batch {self.batch.name} ({self.batch.product}): plug boards in."

    def counters(self, elapsed_s: float) -> str:
        """The shift's counters after ``elapsed_s`` seconds (a rate over at least a minute)."""
        hours = max(elapsed_s, 60.0) / 3600
        return f"Passed {self.passed}   Failed {self.failed}   Units/hour {self.passed / hours:.0f}"

    @property
    def batch_done(self) -> int:
        """Boards of the chosen batch provisioned so far (before this shift and in it)."""
        start = self.batch.provisioned if self.batch is not None else 0
        return start + self.passed - self._passed_before_batch

    @property
    def asking(self) -> tuple[str, ...]:
        """Slots waiting for a serial scan; the next scan goes to the first."""
        return tuple(self._asking)

    # ------------------------------------------------------------------ batches and scans
    def choose(self, choice: BatchChoice) -> None:
        """``choice`` is the line's batch from now on."""
        self.batch = choice
        self._passed_before_batch = self.passed
        for s in self._state.values():
            if s.result is SlotResult.IDLE:
                s.total = max(len(choice.steps), 1)
        self._note = ""

    def refused(self, error: StationError) -> None:
        """Something the operator asked for was refused: say why and what to do."""
        self._note = describe(error)

    def note(self, text: str) -> None:
        """Show ``text`` in the message bar until it expires."""
        self._note = text

    def scanned(self, scan: Scan) -> ScanAction:
        """Act on a classified scan; returns what the view must do, if anything."""
        if scan.kind is ScanKind.WORK_ORDER:
            return SelectBatch(scan.text)
        if scan.kind is ScanKind.BADGE and scan.operator is not None:
            self._note = f"Operator switched to {scan.operator.name}."
            return SwitchOperator(scan.operator)
        if scan.kind is ScanKind.LABEL:
            self._note = f"Label OK: {scan.registration_id}."
        elif self._asking:
            self.serial_scanned(scan.text)
        elif scan.refusal is not None:
            self.refused(scan.refusal)
        return None

    def serial_scanned(self, text: str, slot: str = "") -> bool:
        """A board serial was scanned, for ``slot`` or the first slot asking for one.

        A scan that cannot be a serial is refused and the slot keeps asking. Returns whether a
        slot took it.
        """
        if not slot:
            if not self._asking:
                self._note = "No slot is waiting for a serial number."
                return False
            slot = self._asking[0]
        s = self._state.get(slot)
        if s is None or s.question is None:
            self._note = f"The board in {slot_phrase(slot)} is not waiting for a serial number."
            return False
        try:
            serial = printed_serial(text)
        except StationError as exc:
            self._note = f"Not accepted for {slot_phrase(slot)}: {describe(exc)}"
            return False
        question, s.question = s.question, None
        self._asking.remove(slot)
        self._mark_asking()
        if not question.answer(serial):
            return False  # the run ended meanwhile (stopped): its Failed event says so
        s.result = SlotResult.RUNNING
        s.step = f"serial {serial} scanned"
        s.board = serial
        s.clear_words()
        self._note = f"Serial {serial} scanned for {slot_phrase(slot)}: provisioning."
        return True

    # ------------------------------------------------------------------ slots
    def start(self, slot: str) -> bool:
        """Start was pressed on ``slot``: True when the view should look for its board.

        A slot asking for a serial is not restarted: it takes the next serial scan instead.
        """
        s = self._state.get(slot)
        if s is None:
            self._note = f"Unknown slot {slot}."
            return False
        if self.batch is None:
            self._note = "Choose a batch first: scan its work order."
            return False
        if s.question is not None:
            self._asking.remove(slot)
            self._asking.insert(0, slot)
            self._mark_asking()
            self._note = f"Scan the serial printed on the board in {slot_phrase(slot)}."
            return False
        if not self._can_start(s):
            if s.result is SlotResult.RUNNING:
                self._note = f"The board in {slot_phrase(slot)} is still running."
            else:
                self._note = (
                    f"The board in {slot_phrase(slot)} is done: swap in the next board "
                    "(it starts by itself)."
                )
            return False
        s.step = "looking for the board…"
        return True

    def not_found(self, slot: str, error: StationError) -> None:
        """The board of ``slot`` could not be found, or the slot could not start."""
        s = self._state[slot]
        s.result = SlotResult.FAIL
        s.reason, s.remedy, s.detail = error.message, error.remedy, error.code
        s.step = ""

    def plugged(
        self, slot: str, port: str, *, operator: str, arrived: bool = False
    ) -> ProvisionOrder | None:
        """The board on ``port`` in ``slot`` is to be provisioned: the order, or None.

        ``operator``: who is logged in at the window ("" while it is locked): the board runs
        in their name. With nobody logged in the board waits on its tile until someone logs in
        (:meth:`logged_in`): no board is ever started without an operator.
        ``arrived``: hot-plug saw a new board there (a passed board's slot is free again).
        """
        s = self._state.get(slot)
        if s is None or self.batch is None:
            return None
        if arrived:
            s.spent = False
            s.passed_serial = ""
        if s.result is SlotResult.RUNNING or s.question is not None:
            return None  # the slot's worker is busy with the board already there
        if not operator:
            self._wait_for_login(s, port)
            return None
        batch, reason, serial = self.batch.name, "", ""
        if self.rework is not None:
            s.rework, self.rework = self.rework, None
            batch, reason, serial = s.rework.batch, s.rework.reason, s.rework.serial
            self._note = f"Reworking board {serial} in {slot_phrase(slot)}."
        s.unready = s.spent = s.withdrawn = s.waiting = False
        s.result = SlotResult.RUNNING
        s.port = port
        s.board = f"board on {port}"
        s.step = "starting…"
        s.done, s.total = 0, max(len(self.batch.steps), 1)
        s.clear_words()
        return ProvisionOrder(slot, port, batch, operator, reason, serial, s.passed_serial)

    def _wait_for_login(self, s: _Slot, port: str) -> None:
        """Hold the board on ``port`` on its tile until someone logs in."""
        s.waiting = True
        s.unready = s.spent = s.withdrawn = False
        s.result = SlotResult.WAITING
        s.port = port
        s.board = f"board on {port}"
        s.step = "starts at the next login"
        s.done = 0
        s.reason = "This board was plugged in while the window was locked."
        s.remedy = (
            "Log in (or unlock): it starts at once, provisioned in the name of the operator "
            "who logs in."
        )
        s.detail = ""

    def logged_in(self, operator: str) -> list[ProvisionOrder]:
        """``operator`` logged in: the boards that waited for a login start in their name."""
        if not operator:
            return []
        orders = []
        for s in self._state.values():
            if s.waiting:
                s.waiting = False
                s.result = SlotResult.IDLE
                order = self.plugged(s.name, s.port, operator=operator)
                if order is not None:
                    orders.append(order)
        return orders

    @property
    def waiting(self) -> tuple[str, ...]:
        """Slots whose board waits for someone to log in."""
        return tuple(s.name for s in self._state.values() if s.waiting)

    def unplugged(self, slot: str) -> None:
        """The board in ``slot`` was pulled out."""
        s = self._state.get(slot)
        if s is None:
            return
        s.spent = False
        s.passed_serial = ""
        if s.waiting:
            s.waiting = False
            s.result = SlotResult.IDLE
            s.clear_words()
            s.step = ""
        if s.question is not None:
            question, s.question = s.question, None
            self._asking.remove(slot)
            self._mark_asking()
            s.withdrawn = question.decline("the board was pulled out before its serial was scanned")
            s.result = SlotResult.IDLE
            s.clear_words()
            s.step = ""
        if s.result is not SlotResult.RUNNING:
            s.board = "no board"

    def prepared(self, slot: str, error: StationError | None) -> None:
        """``slot`` got ready for the batch's boards, or could not (``error``)."""
        s = self._state.get(slot)
        if s is None or s.result is SlotResult.RUNNING or s.question is not None or s.waiting:
            return
        if error is not None:
            s.unready = True
            s.result = SlotResult.FAIL
            s.reason, s.remedy, s.detail = error.message, error.remedy, error.code
            return
        if s.unready:
            s.unready = False
            s.result = SlotResult.IDLE
            s.clear_words()
        if s.result is SlotResult.IDLE:
            s.step = "ready"

    def arm_rework(self, batch: str, reason: str, serial: str) -> None:
        """QA: board ``serial`` is reworked when next started (identity voided, then redone).

        The next board started takes the rework; if it is not board ``serial`` it stops at
        connect (another board) before anything is written or voided, and the rework stays armed.
        """
        self.rework = Rework(batch, reason, serial)
        self._note = ""

    def asked(self, question: Question) -> None:
        """A slot's worker waits for an answer to ``question``."""
        slot = question.question.slot
        s = self._state.get(slot)
        if s is None:
            question.decline(f"there is no tile for {slot_phrase(slot)}")
            return
        s.question = question
        if slot not in self._asking:
            self._asking.append(slot)
        s.result = SlotResult.ASKING
        s.reason = question.question.text
        problem = question.question.problem
        s.remedy = f"Not accepted: {problem}. Scan it again." if problem else ""
        self._mark_asking()
        self._note = ""

    def _mark_asking(self) -> None:
        """Tell each asking slot whether the next serial scan goes to it."""
        for number, slot in enumerate(self._asking):
            self._state[slot].step = (
                "the next serial scan goes here" if number == 0 else f"serial scan: {number} ahead"
            )

    def apply(self, event: ProvisionEvent) -> bool:
        """Update the slot from one of its worker's events.

        Returns whether a board's run ended and counts (a Passed or a Failed event; not the
        end of a run whose board was pulled out while the slot asked for its serial, nor a
        passed board started again without a swap).
        """
        s = self._state.get(event.slot)
        if s is None:
            return False
        if isinstance(event, StepStarted):
            s.step = f"step: {event.step}"
            s.result = SlotResult.RUNNING
        elif isinstance(event, StepPassed):
            s.done = min(s.done + 1, s.total)
            if event.detail:
                s.detail = f"{event.step}: {event.detail}"
        elif isinstance(event, Resumed):
            s.step = f"resumed from {event.from_step}"
            s.detail = event.detail
        elif isinstance(event, StepFailed):
            s.detail = f"{event.code}: {event.detail}"
        elif isinstance(event, Passed):
            s.rework = None
            s.done = s.total
            s.board = f"{event.serial} — {event.registration_id}"
            s.step = f"recorded in {event.batch}"
            s.result = SlotResult.PASS
            s.spent = True
            s.passed_serial = event.serial
            self.passed += 1
            return True
        elif isinstance(event, Failed):
            return self._failed(s, event)
        return False

    def _failed(self, s: _Slot, event: Failed) -> bool:
        rework, s.rework = s.rework, None
        if s.withdrawn:
            s.withdrawn = False
            s.result = SlotResult.IDLE
            s.board, s.step = "no board", ""
            s.clear_words()
            return False
        if rework is not None and event.disposition is Disposition.OTHER_BOARD:
            self.rework = rework  # another board was started: keep the rework for its own
            self._note = f"That was not board {rework.serial}: the rework stays armed for it."
        if event.serial:
            s.board = event.serial
        s.reason, s.remedy = event.reason, event.remedy
        s.detail = f"{event.code} at {event.step}: {event.detail}"
        if event.disposition is Disposition.SWAP:  # not a failure: the passed board is still in
            s.result = SlotResult.SWAP
            s.done = s.total
            s.step = "already passed: swap in the next board"
            s.spent = True
            self._note = f"{slot_phrase(s.name)}: {event.reason} Swap it for the next board."
            return False  # no board was provisioned or failed: nothing to count
        s.passed_serial = ""
        s.step = f"stopped at: {event.step}"
        to_qa = event.disposition is Disposition.QA
        s.result = SlotResult.QA if to_qa else SlotResult.FAIL
        s.spent = to_qa
        self.failed += 1
        return True

    def _can_start(self, s: _Slot) -> bool:
        if self.batch is None or s.question is not None:
            return False
        if s.result is SlotResult.RUNNING:
            return False
        return not s.spent or self.rework is not None or not self.hotplug
