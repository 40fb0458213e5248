"""Message layer of the board protocol: CBOR requests and responses, status codes.

A request is the CBOR map ``{"seq": uint32, "op": text, "args": map}``; a response is
``{"seq": uint32, "st": uint, "res": map}`` on success or ``{"seq": uint32, "st": uint,
"msg": text}`` on failure. Decoding is strict: anything else raises :class:`MessageError`, never
another exception, so both ends can treat a bad message as one kind of fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import cbor2

from station.protocol.cbor_scan import CborRejected, peek_seq, scan

PROTOCOL_VERSION = 1
#: Sequence numbers run 1..SEQ_MAX and wrap to 1; 0 means "unknown" (request undecodable).
SEQ_MAX = 0xFFFF_FFFF
_MAX_DEPTH = 6
_MAX_ITEMS = 64


class Status(IntEnum):
    """Status codes a board answers with (``st``). Docs: docs/board-protocol.md §7."""

    OK = 0
    MALFORMED = 1
    UNKNOWN_OP = 2
    BAD_ARGS = 3
    UNSUPPORTED = 4
    LOCKED = 5
    NOT_FOUND = 6
    EXISTS = 7
    TOO_LARGE = 8
    TPM_FAILURE = 9
    DENIED = 10
    INTERNAL = 11


STATUS_NAMES: Mapping[int, str] = {status.value: status.name.lower() for status in Status}


class MessageError(ValueError):
    """A payload is not a valid message; ``status`` says which code a board answers with."""

    def __init__(self, reason: str, status: Status = Status.MALFORMED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Request:
    """One request from the station."""

    seq: int
    op: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    """One answer from the board: ``status`` 0 with ``result``, or an error code and message."""

    seq: int
    status: int
    result: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when the board reports success."""
        return self.status == Status.OK


def next_seq(seq: int) -> int:
    """The sequence number after ``seq`` (wraps from SEQ_MAX to 1, never 0)."""
    return 1 if seq >= SEQ_MAX else seq + 1


def encode_request(request: Request) -> bytes:
    """CBOR-encode a request (canonical form, so a retry is byte-identical)."""
    return cbor2.dumps(
        {"seq": request.seq, "op": request.op, "args": dict(request.args)}, canonical=True
    )


def encode_response(response: Response) -> bytes:
    """CBOR-encode a response."""
    body: dict[str, Any] = {"seq": response.seq, "st": response.status}
    if response.status == Status.OK:
        body["res"] = dict(response.result)
    else:
        body["msg"] = response.message
    return cbor2.dumps(body, canonical=True)


def decode_request(payload: bytes) -> Request:
    """Decode a request payload.

    Raises:
        MessageError: not CBOR, not a map, missing or mistyped fields.
    """
    body = _decode_map(payload)
    _only_keys(body, {"seq", "op", "args"})
    seq = _seq(body)
    op = body.get("op")
    if not isinstance(op, str) or not op:
        raise MessageError("'op' must be non-empty text")
    args = body.get("args", {})
    if not isinstance(args, dict):  # its keys are text: _decode_map checked every map's keys
        raise MessageError("'args' must be a map with text keys")
    return Request(seq=seq, op=op, args=args)


def decode_response(payload: bytes) -> Response:
    """Decode a response payload.

    Raises:
        MessageError: not CBOR, not a map, missing or mistyped fields.
    """
    body = _decode_map(payload)
    _only_keys(body, {"seq", "st", "res", "msg"})
    seq = body.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= SEQ_MAX:
        raise MessageError("'seq' must be an unsigned 32-bit integer")
    status = body.get("st")
    if not isinstance(status, int) or isinstance(status, bool) or not 0 <= status <= 0xFFFF:
        raise MessageError("'st' must be an unsigned integer")
    if status == Status.OK:
        result = body.get("res", {})
        if not isinstance(result, dict):  # its keys are text: _decode_map checked them
            raise MessageError("'res' must be a map with text keys")
        return Response(seq=seq, status=status, result=result)
    message = body.get("msg", "")
    if not isinstance(message, str):
        raise MessageError("'msg' must be text")
    return Response(seq=seq, status=status, message=message[:200])


def response_seq(payload: bytes) -> int:
    """The ``seq`` of a response payload, read without decoding the rest of it.

    The payload's structure is checked first (:func:`~station.protocol.cbor_scan.scan`), so a
    hostile frame costs a linear walk over at most 8 KB, never a decoder's expansion.

    Raises:
        MessageError: not plain CBOR, not a map, or no unsigned 32-bit ``seq``.
    """
    try:
        seq = peek_seq(payload)
    except CborRejected as exc:
        raise MessageError(f"not plain CBOR: {exc}") from exc
    if seq is None or not 0 <= seq <= SEQ_MAX:
        raise MessageError("'seq' must be an unsigned 32-bit integer")
    return seq


def _decode_map(payload: bytes) -> dict[str, Any]:
    try:
        # before cbor2 sees a byte: no tags (shared refs), floats, huge lengths
        facts = scan(payload)
    except CborRejected as exc:
        raise MessageError(f"not plain CBOR: {exc}") from exc
    try:
        value = cbor2.loads(payload)
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, LookupError) as exc:
        raise MessageError(f"not CBOR: {type(exc).__name__}") from exc
    if not isinstance(value, dict):
        raise MessageError("message is not a CBOR map")
    if not facts.plain:
        # The scan refused everything else _check_plain refuses (tags, floats, other simple
        # values, wide containers); only a non-text key or a too-deep item can remain.
        _check_plain(value, 0)
    return value


def _check_plain(value: Any, depth: int) -> None:
    """Accept only plain CBOR data (no tags, no floats), bounded in depth and width.

    After :func:`~station.protocol.cbor_scan.scan` only its map-key and depth rules can fail;
    it runs on the values whose walk found a non-text key or an item that deep.
    """
    if depth > _MAX_DEPTH:
        raise MessageError("message nests too deeply")
    if isinstance(value, bool | int | str | bytes) or value is None:
        return
    if isinstance(value, list):
        if len(value) > _MAX_ITEMS:
            raise MessageError("array too long")
        for item in value:
            _check_plain(item, depth + 1)
        return
    if isinstance(value, dict):
        if len(value) > _MAX_ITEMS:
            raise MessageError("map too large")
        for key, item in value.items():
            if not isinstance(key, str):
                raise MessageError("map keys must be text")
            _check_plain(item, depth + 1)
        return
    raise MessageError(f"unsupported CBOR item ({type(value).__name__})")


def _only_keys(body: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise MessageError(f"unknown field(s): {', '.join(sorted(unknown))}")


def _seq(body: Mapping[str, Any]) -> int:
    seq = body.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= SEQ_MAX:
        raise MessageError("'seq' must be an integer 1..4294967295")
    return seq
