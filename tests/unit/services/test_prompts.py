"""A relayed operator prompt: the worker waits, another thread answers, declines or stops it."""

from __future__ import annotations

import threading

import pytest

from station.domain.errors import PromptDeclinedError, ProvisionCancelledError
from station.domain.prompts import Ask, serial_question
from station.services.prompts import PendingQuestion, RelayedPrompt

QUESTION = serial_question("slot-2", "LAB-SE")


def _ask_on_a_worker(prompt: RelayedPrompt) -> tuple[threading.Thread, dict[str, object]]:
    result: dict[str, object] = {}

    def work() -> None:
        try:
            result["answer"] = prompt.ask(QUESTION)
        except (PromptDeclinedError, ProvisionCancelledError) as exc:
            result["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    return thread, result


class Desk:
    """The front end's side: collects posted questions."""

    def __init__(self) -> None:
        self.posted: list[PendingQuestion] = []
        self.arrived = threading.Event()

    def post(self, pending: PendingQuestion) -> None:
        self.posted.append(pending)
        self.arrived.set()


def test_the_worker_gets_the_answer_given_on_another_thread() -> None:
    desk = Desk()
    thread, result = _ask_on_a_worker(RelayedPrompt(desk.post))
    assert desk.arrived.wait(10)
    (pending,) = desk.posted
    assert pending.question == QUESTION and pending.open
    assert pending.answer("STK-1")
    thread.join(10)
    assert result == {"answer": "STK-1"}
    assert not pending.open
    assert not pending.answer("STK-2") and not pending.decline("late")  # settled once


def test_a_declined_question_raises_in_the_worker_with_why_and_what_to_do() -> None:
    desk = Desk()
    thread, result = _ask_on_a_worker(RelayedPrompt(desk.post))
    assert desk.arrived.wait(10)
    desk.posted[0].decline("the board was pulled out", remedy="Plug it back in.")
    thread.join(10)
    error = result["error"]
    assert isinstance(error, PromptDeclinedError)
    assert error.message == "the board was pulled out" and error.remedy == "Plug it back in."
    assert error.details["slot"] == "slot-2"


def test_stopping_the_slot_ends_the_wait() -> None:
    stop = threading.Event()
    desk = Desk()
    thread, result = _ask_on_a_worker(RelayedPrompt(desk.post, stop))
    assert desk.arrived.wait(10)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    error = result["error"]
    assert isinstance(error, ProvisionCancelledError)
    assert "slot-2 was stopped while it waited" in error.message
    assert not desk.posted[0].open and not desk.posted[0].answer("too late")


def test_the_serial_question_names_the_slot_once_and_says_what_to_do() -> None:
    assert QUESTION.ask is Ask.BOARD_SERIAL
    assert QUESTION.text == (
        "The board (LAB-SE) in slot-2 reports no serial number: scan the serial printed on it."
    )
    assert "in slot A1 reports" in serial_question("A1", "X").text


@pytest.mark.parametrize("answer", ["", "STK-9"])
def test_an_answer_settles_a_question_before_anyone_waits(answer: str) -> None:
    pending = PendingQuestion(QUESTION)
    pending.answer(answer)
    assert pending.wait() == answer
