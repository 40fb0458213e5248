"""Questions the station asks the operator in the middle of a run (OpenHTF's prompts).

A run that needs something only a person can give (the serial printed on a board that reports
none) asks its :class:`~station.ports.OperatorPrompt` one :class:`OperatorQuestion` and waits for
the answer. The CLI answers at the terminal, the GUI on the slot's tile; a run with nobody to ask
stops with a clear error instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from station.domain.boards import slot_phrase


class Ask(StrEnum):
    """What a question asks for (how the answer is checked and where it is typed or scanned)."""

    BOARD_SERIAL = "board-serial"


@dataclass(frozen=True)
class OperatorQuestion:
    """One question to the operator at one slot.

    Args:
        slot: the slot whose run waits for the answer.
        ask: what kind of answer is wanted.
        text: the question, in a technician's words.
        problem: why the previous answer was refused (empty on the first asking).
    """

    slot: str
    ask: Ask
    text: str
    problem: str = ""


def serial_question(slot: str, model: str, *, problem: str = "") -> OperatorQuestion:
    """The question for a board that reports no serial number of its own."""
    return OperatorQuestion(
        slot=slot,
        ask=Ask.BOARD_SERIAL,
        text=f"The board ({model}) in {slot_phrase(slot)} reports no serial number: "
        "scan the serial printed on it.",
        problem=problem,
    )
