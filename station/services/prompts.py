"""Operator prompts answered on another thread: the worker asks and waits, a front end answers.

A slot's run happens on its worker thread, but the operator is reached from elsewhere: the GUI
thread (the slot's tile) or the CLI's main thread (the terminal, where Ctrl-C lands). A
:class:`RelayedPrompt` hands each question, as a :class:`PendingQuestion`, to a ``post``
callable (a Qt signal's ``emit``, a queue's ``put``) and waits until the front end answers or
declines it, or the run is stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from station.domain.boards import slot_phrase
from station.domain.errors import PromptDeclinedError, ProvisionCancelledError
from station.domain.prompts import OperatorQuestion
from station.services.provision.model import Cancellation

_POLL_S = 0.2  # how often a waiting worker looks at its stop flag


class PendingQuestion:
    """One question waiting for its answer; answered or declined exactly once, from any thread."""

    def __init__(self, question: OperatorQuestion) -> None:
        self.question = question
        self._done = threading.Event()
        self._answer = ""
        self._declined: PromptDeclinedError | None = None
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        """Whether nobody has answered or declined it yet."""
        return not self._done.is_set()

    def answer(self, text: str) -> bool:
        """Answer with ``text``; False when the question was already settled."""
        with self._lock:
            if self._done.is_set():
                return False
            self._answer = text
            self._done.set()
            return True

    def decline(self, why: str, *, remedy: str = "") -> bool:
        """Give no answer, saying ``why``; False when the question was already settled."""
        with self._lock:
            if self._done.is_set():
                return False
            self._declined = PromptDeclinedError(why, remedy=remedy, slot=self.question.slot)
            self._done.set()
            return True

    def wait(self, cancel: Cancellation | None = None) -> str:
        """Block until settled; return the answer.

        Raises:
            PromptDeclinedError: the front end declined.
            ProvisionCancelledError: ``cancel`` was set first.
        """
        while not self._done.wait(_POLL_S):
            # a stop settles the question, unless an answer came in at the same moment
            if cancel is not None and cancel.is_set() and self.decline("the slot was stopped"):
                raise ProvisionCancelledError(
                    f"{slot_phrase(self.question.slot)} was stopped while it waited for the "
                    "operator"
                )
        if self._declined is not None:
            raise self._declined
        return self._answer


class RelayedPrompt:
    """An :class:`~station.ports.OperatorPrompt` whose questions are answered on another thread.

    Args:
        post: receives each :class:`PendingQuestion` (called on the asking thread; it must
            only hand the question over, e.g. emit a queued signal or put it on a queue).
        cancel: the run's stop flag; a stop ends the wait.
    """

    def __init__(
        self, post: Callable[[PendingQuestion], None], cancel: Cancellation | None = None
    ) -> None:
        self._post = post
        self._cancel = cancel

    def ask(self, question: OperatorQuestion) -> str:
        """Post ``question`` and wait for the answer (:class:`~station.ports.OperatorPrompt`)."""
        pending = PendingQuestion(question)
        self._post(pending)
        return pending.wait(self._cancel)
