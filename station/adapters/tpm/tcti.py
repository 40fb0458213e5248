"""A tpm2-pytss TCTI that reaches a board's TPM through the board protocol's ``tpm`` operation.

``ESAPI(BoardTcti(session))`` drives the board's TPM with the full tpm2-pytss API; each TPM
command travels as one ``tpm`` request (retried and checked by the session) and its response
comes back whole.

ESAPI turns any exception raised in :meth:`BoardTcti.do_receive` into a generic
``TSS2_Exception`` without a cause, and the ESAPI context is unusable afterwards. So the TCTI
keeps the original :class:`~station.domain.errors.BoardError` in :attr:`BoardTcti.last_error`
(callers re-raise it) and a caller recovers by building a new ESAPI over a new TCTI.
"""

from __future__ import annotations

import logging
from typing import Protocol

from tpm2_pytss.TCTI import PyTCTI

from station.domain.errors import BoardError

log = logging.getLogger(__name__)


class TpmPassthrough(Protocol):
    """What the TCTI needs: a board link with the ``tpm`` operation."""

    def tpm(self, command: bytes) -> bytes:
        """Run one raw TPM command on the board; return the raw response."""
        ...


class BoardTcti(PyTCTI):  # type: ignore[misc]
    """PyTCTI over a board session (one outstanding command at a time)."""

    def __init__(self, link: TpmPassthrough, max_size: int = 4096) -> None:
        super().__init__(max_size=max_size, magic=b"BOARDLNK")
        self._link = link
        self._response: bytes | None = None
        self.last_error: BoardError | None = None

    def do_transmit(self, command: bytes) -> None:
        """Send the command now and keep the response for :meth:`do_receive`."""
        self._response = None
        try:
            self._response = self._link.tpm(bytes(command))
        except BoardError as exc:
            self.last_error = exc
            log.warning("TPM command over the board link failed: %s", exc.message)
            raise

    def do_receive(self, timeout: int) -> bytes:
        """Return the response of the last command."""
        if self._response is None:
            raise RuntimeError("no TPM response pending (the command failed)")
        response, self._response = self._response, None
        return response
