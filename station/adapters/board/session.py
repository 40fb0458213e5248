"""The station side of the board protocol: one request at a time, with timeouts and retries.

A request is sent as ``0x00 || frame`` (the leading delimiter ends any partial frame the board
holds after line noise). The session then waits for the response with the same sequence number.
On a timeout, a corrupted frame or a negative acknowledgement (``seq`` 0) it discards its input
and sends the *same bytes* again, at most ``retries`` times. The board recognises a repeated
request by its sequence number and payload and replays its cached answer, so a retried ``write``
is applied once (docs/board-protocol.md §5).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from station.domain.boards import printed_serial
from station.domain.errors import (
    BoardProtocolError,
    BoardReportedError,
    BoardTimeoutError,
    ValidationError,
)
from station.protocol.framing import DELIMITER, BadFrame, FrameDecoder, encode_frame
from station.protocol.messages import (
    PROTOCOL_VERSION,
    SEQ_MAX,
    STATUS_NAMES,
    MessageError,
    Request,
    Response,
    Status,
    decode_response,
    encode_request,
    next_seq,
    response_seq,
)
from station.protocol.ops import (
    CURVE_P256,
    DEVICE_KEY,
    BoardInfo,
    ObjectState,
    Op,
    check_args,
    check_result,
)

log = logging.getLogger(__name__)

#: CPU seconds one answer frame may cost to check and decode (a plain 8 KB frame takes about a
#: millisecond); a frame over budget is dropped like a corrupted one.
FRAME_CPU_BUDGET_S = 0.25

#: Operations that may run a slow TPM or secure-element command on the board.
SLOW_OPS = frozenset({Op.TPM, Op.KEYGEN, Op.CSR, Op.SIGN})


_REMEDIES: Mapping[int, str] = {
    Status.LOCKED: "The board left manufacturing mode; it cannot be re-provisioned here.",
    Status.UNSUPPORTED: "This board model cannot do that; check the product recipe.",
    Status.TPM_FAILURE: "The board cannot reach its TPM; power-cycle it, then retry.",
    Status.NOT_FOUND: "Run the earlier provisioning step first (key generation, object write).",
}


class Transport(Protocol):
    """The byte pipe a session runs over (see :class:`~.transport.SerialTransport`)."""

    url: str
    bytes_in: int
    bytes_out: int

    def write(self, data: bytes) -> None:
        """Write all of ``data``."""
        ...

    def read(self, deadline: float) -> bytes:
        """Return available bytes, waiting until ``deadline`` for the first; b"" on timeout."""
        ...

    def discard_input(self) -> None:
        """Drop unread input."""
        ...

    def close(self) -> None:
        """Close the pipe."""
        ...


@dataclass
class LinkStats:
    """Counters of one session, for diagnostics and benchmarks."""

    requests: int = 0
    retries: int = 0
    bad_frames: int = 0
    stale_responses: int = 0
    naks: int = 0


class BoardSession:
    """A protocol session with one board (implements :class:`station.ports.BoardLink`).

    Args:
        transport: an open byte pipe; the session closes it in :meth:`close`.
        timeout_s: how long to wait for the answer to a quick request.
        slow_timeout_s: the same for TPM and secure-element operations.
        retries: how many times a request is re-sent after a timeout or a corrupted answer.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        timeout_s: float = 2.0,
        slow_timeout_s: float = 30.0,
        retries: int = 3,
    ) -> None:
        self.transport = transport
        self.timeout_s = timeout_s
        self.slow_timeout_s = slow_timeout_s
        self.retries = retries
        self.stats = LinkStats()
        self._decoder = FrameDecoder()
        # A random start makes a stale answer from an earlier session very unlikely to match.
        self._seq = 1 + secrets.randbelow(SEQ_MAX)
        self.info: BoardInfo | None = None

    @property
    def port(self) -> str:
        """The port (URL) this session talks over."""
        return self.transport.url

    # ------------------------------------------------------------------ operations
    def hello(self) -> BoardInfo:
        """Handshake: learn who the board is and check it speaks protocol version 1.

        Raises:
            BoardProtocolError: the board speaks another protocol version.
        """
        result = self.request(Op.HELLO, {"proto": PROTOCOL_VERSION})
        info = self._wrap(lambda: BoardInfo.from_result(result))
        if info.serial:
            # the same rule as a scanned serial: the serial lands in exports, CSV cells,
            # labels and terminals, so a board may not choose its characters
            try:
                valid = printed_serial(info.serial) == info.serial
            except ValidationError:
                valid = False
            if not valid:
                raise BoardProtocolError(
                    f"board on {self.port} reports serial {info.serial[:70]!r}, which is not a "
                    "board serial number (letters, digits and . _ : / -, at most 64)",
                    remedy="Quarantine the board: its firmware or identity data is corrupt.",
                    port=self.port,
                )
        texts = (info.model, info.hardware, info.firmware, *info.capabilities)
        if not all(text.isprintable() for text in texts):
            raise BoardProtocolError(
                f"board on {self.port} reports control characters in its model, hardware or "
                "firmware text",
                remedy="Quarantine the board: its firmware or identity data is corrupt.",
                port=self.port,
            )
        if info.protocol != PROTOCOL_VERSION:
            raise BoardProtocolError(
                f"board on {self.port} speaks protocol version {info.protocol}, "
                f"this station speaks {PROTOCOL_VERSION}",
                remedy="Update the board firmware or the station so both speak the same version.",
                port=self.port,
                board_protocol=info.protocol,
            )
        self.info = info
        return info

    def tpm(self, command: bytes) -> bytes:
        """Send raw TPM 2.0 command bytes; return the TPM's raw response bytes."""
        return bytes(self.request(Op.TPM, {"cmd": bytes(command)})["rsp"])

    def keygen(
        self, *, replace: bool = False, key: str = DEVICE_KEY, curve: str = CURVE_P256
    ) -> bytes:
        """Make the board generate a key in slot ``key`` on ``curve``; return its DER SPKI.

        The curve is sent only when it is not the default P-256, so boards that predate the
        ``curve`` argument keep working for the device key.
        """
        args: dict[str, Any] = {"key": key}
        if replace:
            args["replace"] = True
        if curve != CURVE_P256:
            args["curve"] = curve
        return bytes(self.request(Op.KEYGEN, args)["pub"])

    def csr(self, common_name: str, *, key: str = DEVICE_KEY) -> bytes:
        """Have the board build and sign a CSR for the key in slot ``key``; return it (DER)."""
        return bytes(self.request(Op.CSR, {"key": key, "cn": common_name})["csr"])

    def sign(self, nonce: bytes) -> bytes:
        """Have the board sign ``nonce`` with its device key (ECDSA-SHA256, DER signature)."""
        return bytes(self.request(Op.SIGN, {"key": DEVICE_KEY, "nonce": bytes(nonce)})["sig"])

    def write(self, name: str, data: bytes) -> int:
        """Write a named object; return its new generation (count of applied writes)."""
        return int(self.request(Op.WRITE, {"name": name, "data": bytes(data)})["gen"])

    def read(self, name: str) -> ObjectState:
        """Read a named object (secret objects answer their SHA-256 instead of the data)."""
        result = self.request(Op.READ, {"name": name})
        data = result.get("data")
        digest = result.get("sha256")
        return ObjectState(
            name=name,
            generation=int(result["gen"]),
            data=bytes(data) if data is not None else None,
            sha256=bytes(digest) if digest is not None else None,
        )

    def lock(self) -> None:
        """Leave manufacturing mode: the board refuses writes, keygen and factory reset after."""
        self.request(Op.LOCK, {})

    def reset(self, *, factory: bool = False) -> None:
        """Restart the board firmware; ``factory`` also erases objects and keys (unlocked only)."""
        self.request(Op.RESET, {"factory": True} if factory else {})

    def close(self) -> None:
        """Close the transport."""
        self.transport.close()

    # ------------------------------------------------------------------ request engine
    def request(self, op: str, args: Mapping[str, Any]) -> Mapping[str, Any]:
        """Send one request and return the board's checked result.

        Raises:
            BoardReportedError: the board refused (``details['status']`` names its code).
            BoardTimeoutError: no valid answer after every retry.
            BoardProtocolError: only invalid answers after every retry.
            BoardDisconnectedError: the port went away.
        """
        check_args(op, args)  # a bad request is a station bug: fail before touching the wire
        self._seq = next_seq(self._seq)
        seq = self._seq
        wire = DELIMITER + encode_frame(encode_request(Request(seq=seq, op=op, args=args)))
        timeout = self.slow_timeout_s if op in SLOW_OPS else self.timeout_s
        # One wall-clock deadline for the whole exchange: NAKs, stale frames and retries can
        # never stretch it beyond the attempts' timeouts, whatever a board sends.
        exchange_deadline = time.monotonic() + timeout * (self.retries + 1)
        self.stats.requests += 1
        problem = "no answer"
        for attempt in range(self.retries + 1):
            if time.monotonic() >= exchange_deadline:
                break
            if attempt:
                self.stats.retries += 1
                log.debug("retrying %s seq=%d on %s after: %s", op, seq, self.port, problem)
                self.transport.discard_input()
                self._decoder = FrameDecoder()
            self.transport.write(wire)
            outcome = self._await(seq, wire, min(time.monotonic() + timeout, exchange_deadline))
            if isinstance(outcome, str):
                problem = outcome
                continue
            if not outcome.ok:
                raise self._refused(op, outcome)
            try:
                check_result(op, outcome.result)
            except MessageError as exc:
                problem = f"invalid {op} result: {exc.reason}"
                continue
            return outcome.result
        details = {"port": self.port, "op": op, "attempts": self.retries + 1}
        if problem == "no answer":
            raise BoardTimeoutError(
                f"board on {self.port} did not answer '{op}' within {timeout:g} s "
                f"({self.retries + 1} attempts)",
                remedy="Check that the board is powered and its cable seated, then retry.",
                **details,
            )
        raise BoardProtocolError(
            f"board on {self.port} gave no valid answer to '{op}': {problem}",
            remedy="Re-plug the board; if it keeps happening, the cable or firmware is faulty.",
            problem=problem,
            **details,
        )

    def _await(self, seq: int, wire: bytes, deadline: float) -> Response | str:
        """Wait for the response to ``seq``; a string says why to retry."""
        resent = False
        while True:
            # Checked on every pass: a line that never stops sending (stale frames, a stream of
            # delimiters) must still end in a timeout.
            data = self.transport.read(deadline) if time.monotonic() < deadline else b""
            if not data:
                return "no answer"
            problem = ""
            for item in self._decoder.feed(data):
                if isinstance(item, BadFrame):
                    self.stats.bad_frames += 1
                    problem = problem or f"corrupted frame ({item.fault.value})"
                    continue
                cpu_start = time.thread_time()
                try:
                    # the sequence number first: a stale or foreign answer is dropped before
                    # its body is decoded
                    answered = response_seq(item)
                    if answered not in (0, seq):
                        self.stats.stale_responses += 1
                        continue
                    response = decode_response(item)
                except MessageError as exc:
                    self.stats.bad_frames += 1
                    problem = problem or f"invalid message ({exc.reason})"
                    continue
                if time.thread_time() - cpu_start > FRAME_CPU_BUDGET_S:
                    # the pre-scan bounds a frame's work; this catches what it did not foresee
                    self.stats.bad_frames += 1
                    problem = problem or "a frame cost more CPU than its budget"
                    continue
                if response.seq == 0:
                    # A NAK may be about our request or about older noise: re-send at once,
                    # but only once per attempt, and keep waiting for the matching answer.
                    if not resent:
                        resent = True
                        self.stats.naks += 1
                        self.transport.write(wire)
                    continue
                if response.seq != seq:
                    self.stats.stale_responses += 1
                    continue
                return response
            if problem:
                # Most likely our answer, damaged on the way: retry now rather than at timeout.
                return problem

    def _refused(self, op: str, response: Response) -> BoardReportedError:
        name = STATUS_NAMES.get(response.status, f"status {response.status}")
        remedy = _REMEDIES.get(response.status, "")
        return BoardReportedError(
            f"board on {self.port} refused '{op}': {name}"
            + (f" ({response.message})" if response.message else ""),
            remedy=remedy,
            port=self.port,
            op=op,
            status=response.status,
            status_name=name,
        )

    def _wrap(self, build: Any) -> BoardInfo:
        try:
            info: BoardInfo = build()
        except MessageError as exc:
            raise BoardProtocolError(
                f"board on {self.port} sent an invalid hello: {exc.reason}", port=self.port
            ) from exc
        return info


def open_session(
    url: str,
    *,
    baud: int = 115_200,
    timeout_s: float = 2.0,
    slow_timeout_s: float = 30.0,
    retries: int = 3,
) -> BoardSession:
    """Open ``url`` (device path or pyserial URL) and return a session over it (no handshake)."""
    from station.adapters.board.transport import SerialTransport

    return BoardSession(
        SerialTransport(url, baud),
        timeout_s=timeout_s,
        slow_timeout_s=slow_timeout_s,
        retries=retries,
    )
