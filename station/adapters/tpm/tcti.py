"""A tpm2-pytss TCTI that reaches a board's TPM through the board protocol's ``tpm`` operation.

``ESAPI(BoardTcti(session))`` drives the board's TPM with the full tpm2-pytss API; each TPM
command travels as one ``tpm`` request (retried and checked by the session) and its response
comes back whole.

ESAPI turns any exception raised in :meth:`BoardTcti.do_receive` into a generic
``TSS2_Exception`` without a cause, and the ESAPI context is unusable afterwards. So the TCTI
keeps the original error in :attr:`BoardTcti.last_error` (callers re-raise it) and a caller
recovers by building a new ESAPI over a new TCTI.

The TCTI also checks each response's header (tag and size against the bytes received): ESAPI
does not always notice a truncated response, and would then read past what the TPM sent.
"""

from __future__ import annotations

import logging
import struct
from typing import Protocol

from tpm2_pytss.TCTI import PyTCTI

from station.domain.errors import BoardError, StationError, TpmMalformedResponseError

log = logging.getLogger(__name__)

_HEADER = 10
_RESPONSE_TAGS = (0x8001, 0x8002, 0x00C4)  # no sessions, sessions, TPM 1.2 style error


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
        self.last_error: StationError | None = None

    def do_transmit(self, command: bytes) -> None:
        """Send the command now and keep the response for :meth:`do_receive`."""
        self._response = None
        try:
            response = self._link.tpm(bytes(command))
        except BoardError as exc:
            self.last_error = exc
            log.warning("TPM command over the board link failed: %s", exc.message)
            raise
        problem = check_response(response)
        if problem:
            code = int.from_bytes(command[6:10], "big") if len(command) >= _HEADER else 0
            error = TpmMalformedResponseError(
                f"malformed TPM response: {problem}", command_code=f"{code:#x}"
            )
            self.last_error = error
            log.warning("malformed TPM response to command %#x: %s", code, problem)
            raise error
        self._response = response

    def do_receive(self, timeout: int) -> bytes:
        """Return the response of the last command."""
        if self._response is None:
            raise RuntimeError("no TPM response pending (the command failed)")
        response, self._response = self._response, None
        return response


def check_response(response: bytes) -> str:
    """Return why ``response`` is not a well-framed TPM response ("" when it is)."""
    if len(response) < _HEADER:
        return f"{len(response)} bytes, shorter than a response header"
    tag, size = struct.unpack(">HI", response[:6])
    if tag not in _RESPONSE_TAGS:
        return f"unknown response tag {tag:#06x}"
    if size != len(response):
        return f"header announces {size} bytes, {len(response)} arrived"
    return ""
