"""The CLI's operator prompt: questions from slot workers, answered at the terminal.

Slot workers post their questions (:class:`~station.services.prompts.PendingQuestion`); the
command's main thread asks them one at a time with ``click.prompt``, so Ctrl-C lands where the
operator is typing and two slots never ask at once. A line on standard input is an answer too (a
barcode scanner, a pipe); when standard input is closed nobody can answer, and the question is
declined with what to do instead.
"""

from __future__ import annotations

import queue
import sys

import click

from station.cli.common import term
from station.domain.prompts import Ask, OperatorQuestion
from station.services.prompts import PendingQuestion

#: what to do when nobody can answer, per kind of question
_INSTEAD = {
    Ask.BOARD_SERIAL: "Scan the serial number printed on the board when asked (run station "
    "provision at a terminal or give it a scanner on standard input), or pass it with "
    "--port PORT --serial SERIAL.",
}


class TerminalPrompt:
    """Collects the line's questions (any thread) and asks them at the terminal (main thread)."""

    def __init__(self) -> None:
        self._questions: queue.Queue[PendingQuestion] = queue.Queue()

    def post(self, pending: PendingQuestion) -> None:
        """Hand over a worker's question (called on the worker's thread)."""
        self._questions.put(pending)

    def answer_waiting(self, timeout: float) -> None:
        """Ask the next posted question, waiting up to ``timeout`` seconds for one.

        Raises:
            KeyboardInterrupt: the operator pressed Ctrl-C at the prompt (the question is
                declined first, so its worker does not wait for an answer that never comes).
        """
        try:
            pending = self._questions.get(timeout=timeout)
        except queue.Empty:
            return
        question = pending.question
        try:
            answer = click.prompt(_prompt_text(question), err=True)
        except click.Abort:
            interactive = sys.stdin.isatty()
            why = "the operator stopped" if interactive else "standard input is closed"
            pending.decline(f"nobody answered ({why})", remedy=_INSTEAD[question.ask])
            if interactive:
                raise KeyboardInterrupt from None
            return
        pending.answer(str(answer))


def _prompt_text(question: OperatorQuestion) -> str:
    text = f"[{question.slot}] {question.text}"
    if question.problem:
        text = f"[{question.slot}] Not accepted: {question.problem}.\n{text}"
    return term(text)
