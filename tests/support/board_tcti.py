"""A tpm2-pytss TCTI that reaches a board's TPM through the board protocol's ``tpm`` operation.

Tests and benchmarks use ``ESAPI(BoardTcti(session))`` to drive a lab board's TPM with the full
tpm2-pytss API, independently of the station's own TPM commands
(:mod:`station.adapters.tpm.commands`); each TPM command travels as one ``tpm`` request
(retried and checked by the session) and its response comes back whole.

ESAPI turns any exception raised in :meth:`BoardTcti.do_receive` into a generic
``TSS2_Exception`` without a cause, and the ESAPI context is unusable afterwards. So the TCTI
keeps the original error in :attr:`BoardTcti.last_error` (callers re-raise it) and a caller
recovers by building a new ESAPI over a new TCTI.

The TCTI also checks each response's header (tag and size against the bytes received): ESAPI
does not always notice a truncated response, and would then read past what the TPM sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tpm2_pytss.TCTI import PyTCTI

from station.adapters.tpm.identity import TpmPassthrough
from station.adapters.tpm.wire import check_response
from station.domain.errors import (
    BoardError,
    StationError,
    TpmMalformedResponseError,
    TpmNonsenseError,
)

log = logging.getLogger(__name__)

_HEADER = 10


class BoardTcti(PyTCTI):  # type: ignore[misc]
    """PyTCTI over a board session (one outstanding command at a time).

    Args:
        link: the board session.
        max_size: the largest command or response.
        deadline: returns the monotonic time after which no further command may start (the
            reader's deadline for its current operation) and what that operation is.
    """

    def __init__(
        self,
        link: TpmPassthrough,
        max_size: int = 4096,
        deadline: Callable[[], tuple[float, str]] | None = None,
    ) -> None:
        super().__init__(max_size=max_size, magic=b"BOARDLNK")
        self._link = link
        self._deadline = deadline
        self._response: bytes | None = None
        self.last_error: StationError | None = None
        self.interrupted = False  # Ctrl-C arrived while a command was on the link

    def do_transmit(self, command: bytes) -> None:
        """Send the command now and keep the response for :meth:`do_receive`."""
        try:
            self._transmit(bytes(command))
        except KeyboardInterrupt:
            # An exception that is not an Exception would cross ESAPI's C callback as a
            # printed traceback; the reader raises KeyboardInterrupt again once ESAPI returns.
            self.interrupted = True
            raise RuntimeError("interrupted") from None

    def _transmit(self, command: bytes) -> None:
        self._response = None
        self.last_error = None
        if self._deadline is not None:
            until, what = self._deadline()
            if time.monotonic() > until:
                self.last_error = TpmNonsenseError(
                    f"TPM answered nonsense: it was still busy when the time allowed to {what} "
                    "ran out",
                    remedy="Retry once; a TPM that is this slow again is faulty: reject the board.",
                )
                raise self.last_error
        code = int.from_bytes(command[6:10], "big") if len(command) >= _HEADER else 0
        log.debug("TPM command %#x over the board link", code)
        try:
            response = self._link.tpm(command)
        except BoardError as exc:
            self.last_error = exc
            log.warning("TPM command over the board link failed: %s", exc.message)
            raise
        problem = check_response(response)
        if problem:
            error = TpmMalformedResponseError(
                f"malformed TPM response: {problem}", command_code=f"{code:#x}"
            )
            self.last_error = error
            log.warning("malformed TPM response to command %#x: %s", code, problem)
            raise error
        self._response = response

    def do_receive(self, timeout: int) -> bytes:
        """Return the response of the last command."""
        try:
            if self._response is None:
                raise RuntimeError("no TPM response pending (the command failed)")
            response, self._response = self._response, None
            return response
        except KeyboardInterrupt:
            self.interrupted = True
            raise RuntimeError("interrupted") from None
