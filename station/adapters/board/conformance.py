"""Board conformance: any firmware against every operation, error and limit of the spec.

``station board conformance PORT`` drives the board through docs/board-protocol.md and gives a
verdict per clause.

The suite talks raw frames over the board's port (no retries, no repair), because it must see
exactly what the board sends: a NAK where one is due, the right status, the right shape. It
starts with a factory reset, so run it on a sample board in manufacturing mode; the lock clauses
run only when asked, because locking is for good (section 10). The clauses themselves are in
:mod:`station.adapters.board.conformance_clauses`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

from station.adapters.board.session import Transport
from station.protocol.framing import BadFrame, FrameDecoder, encode_frame
from station.protocol.messages import (
    SEQ_MAX,
    STATUS_NAMES,
    MessageError,
    Request,
    Response,
    Status,
    decode_response,
    encode_request,
    next_seq,
)
from station.protocol.ops import BoardInfo, Capability, check_result


class Verdict(StrEnum):
    """The outcome of one clause."""

    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class ClauseResult:
    """One clause's verdict: ``clause`` is the spec section (e.g. ``5.2``)."""

    clause: str
    title: str
    verdict: Verdict
    detail: str


@dataclass(frozen=True)
class ConformanceReport:
    """Every clause's verdict, in the order they ran, and what the board said it is."""

    port: str
    board: BoardInfo | None
    results: tuple[ClauseResult, ...]

    @property
    def passed(self) -> bool:
        """True when no clause failed (skipped clauses do not fail a board)."""
        return all(r.verdict is not Verdict.FAIL for r in self.results)

    def count(self, verdict: Verdict) -> int:
        """How many clauses ended with ``verdict``."""
        return sum(1 for r in self.results if r.verdict is verdict)


class ClauseFailed(Exception):
    """A clause's expectation was not met (the message says what the board did)."""


class ClauseSkipped(Exception):
    """A clause does not apply to this board (the message says why)."""


Answer = Response | BadFrame | None


class Probe:
    """Raw request/answer exchange with one board, and the board's capabilities.

    Args:
        transport: the open port.
        timeout_s: how long to wait for a quick answer.
        slow_timeout_s: the same for TPM and key operations.
        allow_lock: whether the lock clauses may lock the board (for good).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        timeout_s: float,
        slow_timeout_s: float,
        allow_lock: bool = False,
    ) -> None:
        self.transport = transport
        self.allow_lock = allow_lock
        #: the board's device key as learned by keygen or injected by the privkey clause
        self.device_public: ec.EllipticCurvePublicKey | None = None
        self.timeout_s = timeout_s
        self.slow_timeout_s = slow_timeout_s
        self.seq = 1 + secrets.randbelow(SEQ_MAX // 2)
        self.info: BoardInfo | None = None
        self._decoder = FrameDecoder()
        self._backlog: list[bytes | BadFrame] = []
        self.frames = 0  # answers received (for the report)
        self.last_payload = b""  # the payload of the last good frame (for CDDL checks in tests)

    # ------------------------------------------------------------------ capabilities
    def has(self, capability: Capability) -> bool:
        """Whether the board announced ``capability`` (False before hello)."""
        return self.info is not None and self.info.has(capability)

    def need(self, *capabilities: Capability) -> None:
        """Skip the clause unless the board has one of ``capabilities``."""
        if not any(self.has(c) for c in capabilities):
            names = " or ".join(c.value for c in capabilities)
            raise ClauseSkipped(f"the board has no {names} capability")

    def need_unlocked(self) -> None:
        """Skip the clause on a locked board."""
        if self.info is None or self.info.locked:
            raise ClauseSkipped("the board is locked (needs a board in manufacturing mode)")

    # ------------------------------------------------------------------ exchanges
    def next_seq(self) -> int:
        """A new sequence number."""
        self.seq = next_seq(self.seq)
        return self.seq

    def send_wire(self, wire: bytes) -> None:
        """Write raw bytes to the board."""
        self.transport.write(wire)

    def next_answer(self, timeout_s: float) -> Answer:
        """The next frame from the board, decoded; ``None`` if nothing came in time.

        Raises:
            ClauseFailed: the frame passed its CRC but is not a valid response message.
        """
        deadline = time.monotonic() + timeout_s
        while not self._backlog:
            data = self.transport.read(deadline)
            if not data:
                return None
            self._backlog = self._decoder.feed(data)
        item, self._backlog = self._backlog[0], self._backlog[1:]
        if isinstance(item, BadFrame):
            return item
        self.frames += 1
        self.last_payload = item
        try:
            return decode_response(item)
        except MessageError as exc:
            raise ClauseFailed(f"the board sent an invalid response: {exc.reason}") from exc

    def exchange_payload(self, payload: bytes, *, slow: bool = False) -> Response:
        """Send one payload in a frame (with the leading 0x00) and return the board's answer.

        Raises:
            ClauseFailed: no answer in time, or a corrupted frame on a clean link.
        """
        self.discard()
        self.send_wire(b"\x00" + encode_frame(payload))
        return self.expect_answer(slow=slow)

    def expect_answer(self, *, slow: bool = False) -> Response:
        """Wait for one good answer frame."""
        timeout = self.slow_timeout_s if slow else self.timeout_s
        answer = self.next_answer(timeout)
        if answer is None:
            raise ClauseFailed(f"no answer within {timeout:g} s")
        if isinstance(answer, BadFrame):
            raise ClauseFailed(f"the board sent a corrupted frame ({answer.fault.value})")
        return answer

    def expect_silence(self, seconds: float) -> None:
        """Nothing may arrive for ``seconds``."""
        answer = self.next_answer(seconds)
        if answer is not None:
            raise ClauseFailed(f"the board answered when it must stay silent: {describe(answer)}")

    def discard(self) -> None:
        """Forget unread input (between clauses)."""
        self.transport.discard_input()
        self._decoder = FrameDecoder()
        self._backlog = []

    def raw(self, body: Mapping[str, Any], *, slow: bool = False) -> Response:
        """Send any CBOR map as a request payload (canonical encoding)."""
        return self.exchange_payload(cbor2.dumps(dict(body), canonical=True), slow=slow)

    def call(self, op: str, *, slow: bool = False, **args: Any) -> Response:
        """Send a well-formed request and check the answer's seq and result shape.

        Raises:
            ClauseFailed: wrong seq, or a success result of the wrong shape.
        """
        seq = self.next_seq()
        response = self.exchange_payload(encode_request(Request(seq, op, args)), slow=slow)
        if response.seq != seq:
            raise ClauseFailed(f"answer to {op} carries seq {response.seq}, not {seq}")
        if response.ok:
            try:
                check_result(op, response.result)
            except MessageError as exc:
                raise ClauseFailed(f"{op} result: {exc.reason}") from exc
        return response

    def ok(self, op: str, *, slow: bool = False, **args: Any) -> Mapping[str, Any]:
        """:meth:`call` that must succeed; returns the result."""
        response = self.call(op, slow=slow, **args)
        if not response.ok:
            raise ClauseFailed(f"{op} answered {describe(response)}, expected ok")
        return response.result

    def refused(self, status: Status, op: str, *, slow: bool = False, **args: Any) -> None:
        """:meth:`call` that must be refused with ``status`` (and the request's seq)."""
        expect_status(self.call(op, slow=slow, **args), status, op)

    def hello(self) -> BoardInfo:
        """Say hello and remember who the board is."""
        result = self.ok("hello", proto=1)
        try:
            self.info = BoardInfo.from_result(result)
        except MessageError as exc:
            raise ClauseFailed(f"hello result: {exc.reason}") from exc
        return self.info


def describe(answer: Answer) -> str:
    """A short human text for an answer."""
    if answer is None:
        return "nothing"
    if isinstance(answer, BadFrame):
        return f"a bad frame ({answer.fault.value})"
    if answer.ok:
        return f"ok (seq {answer.seq})"
    known = answer.status in STATUS_NAMES
    name = STATUS_NAMES[answer.status] if known else str(answer.status)
    return f"{name} (st {answer.status}, seq {answer.seq}: {answer.message!r})"


def expect_status(response: Response, status: Status, what: str, *, seq: int | None = None) -> None:
    """The answer must carry ``status`` (and ``seq`` when given).

    Raises:
        ClauseFailed: it does not.
    """
    if response.status != status or (seq is not None and response.seq != seq):
        wanted = f"{status.name.lower()} (st {int(status)}" + (
            f", seq {seq})" if seq is not None else ")"
        )
        raise ClauseFailed(f"{what}: answered {describe(response)}, expected {wanted}")


Clause = tuple[str, str, Callable[[Probe], str]]


def run_clauses(probe: Probe, clauses: tuple[Clause, ...], port: str) -> ConformanceReport:
    """Run ``clauses`` in order; each gets a clean input buffer. Never raises for a clause."""
    results = []
    for clause, title, check in clauses:
        probe.discard()
        try:
            detail = check(probe)
            results.append(ClauseResult(clause, title, Verdict.PASS, detail))
        except ClauseSkipped as exc:
            results.append(ClauseResult(clause, title, Verdict.SKIP, str(exc)))
        except ClauseFailed as exc:
            results.append(ClauseResult(clause, title, Verdict.FAIL, str(exc)))
    return ConformanceReport(port=port, board=probe.info, results=tuple(results))
