"""Message layer: CBOR requests/responses and the per-operation argument tables."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.protocol.messages import (
    SEQ_MAX,
    MessageError,
    Request,
    Response,
    Status,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    next_seq,
)
from station.protocol.ops import ARGS, RESULTS, BoardInfo, Op, check_args, check_result

seqs = st.integers(1, SEQ_MAX)
plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(seqs, st.sampled_from(list(Op)), st.dictionaries(st.text(max_size=8), plain, max_size=4))
def test_request_round_trip(seq: int, op: Op, args: dict[str, object]) -> None:
    request = Request(seq=seq, op=op.value, args=args)
    assert decode_request(encode_request(request)) == request


@given(seqs, st.dictionaries(st.text(max_size=8), plain, max_size=4))
def test_ok_response_round_trip(seq: int, result: dict[str, object]) -> None:
    response = Response(seq=seq, status=Status.OK, result=result)
    assert decode_response(encode_response(response)) == response


@given(st.integers(0, SEQ_MAX), st.sampled_from([s for s in Status if s]), st.text(max_size=50))
def test_error_response_round_trip(seq: int, status: Status, message: str) -> None:
    decoded = decode_response(encode_response(Response(seq=seq, status=status, message=message)))
    assert (decoded.seq, decoded.status, decoded.message, decoded.ok) == (
        seq,
        status,
        message,
        False,
    )


def test_retry_is_byte_identical() -> None:
    request = Request(seq=7, op="write", args={"name": "dps", "data": b"\x00\x01"})
    assert encode_request(request) == encode_request(Request(7, "write", dict(request.args)))


@settings(max_examples=500)
@given(st.binary(max_size=2000))
def test_garbage_payload_gives_message_error_only(payload: bytes) -> None:
    for decode in (decode_request, decode_response):
        try:
            decode(payload)
        except MessageError as exc:
            assert isinstance(exc.status, Status)


@settings(max_examples=300)
@given(plain)
def test_any_cbor_value_gives_a_message_or_message_error(value: object) -> None:
    payload = cbor2.dumps(value)
    for decode, kind in ((decode_request, Request), (decode_response, Response)):
        try:
            assert isinstance(decode(payload), kind)
        except MessageError as exc:
            assert exc.reason


@pytest.mark.parametrize(
    "payload",
    [
        b"\x81" * 5000,  # deep nesting
        b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",  # array claiming 2^64 items
        b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",  # byte string claiming 2^64 bytes
        cbor2.dumps({"seq": 1, "op": "hello", "args": {"x": cbor2.CBORTag(1, 10**30)}}),
        b"\xd8\x1c\x81\xd8\x1d\x00",  # a shared reference pointing at itself
        cbor2.dumps({"seq": 1.5, "op": "hello"}),
        cbor2.dumps({"seq": 0, "op": "hello"}),
        cbor2.dumps({"seq": 1, "op": "", "args": {}}),
        cbor2.dumps({"seq": 1, "op": "hello", "extra": 1}),
        cbor2.dumps([1, "hello", {}]),
    ],
)
def test_hostile_requests_are_rejected_cleanly(payload: bytes) -> None:
    with pytest.raises(MessageError):
        decode_request(payload)


def test_sequence_numbers_wrap_to_one_never_zero() -> None:
    assert next_seq(SEQ_MAX) == 1
    assert next_seq(41) == 42


@pytest.mark.parametrize(
    ("op", "args", "status"),
    [
        ("nope", {}, Status.UNKNOWN_OP),
        ("tpm", {}, Status.BAD_ARGS),
        ("tpm", {"cmd": "text"}, Status.BAD_ARGS),
        ("tpm", {"cmd": b"x" * 5000}, Status.BAD_ARGS),
        ("write", {"name": "dps", "data": b"", "extra": 1}, Status.BAD_ARGS),
        ("reset", {"factory": 1}, Status.BAD_ARGS),
    ],
)
def test_check_args_rejects_bad_arguments(op: str, args: dict[str, object], status: Status) -> None:
    with pytest.raises(MessageError) as caught:
        check_args(op, args)
    assert caught.value.status == status


def test_every_op_has_argument_and_result_tables() -> None:
    assert set(ARGS) == set(RESULTS) == {op.value for op in Op}


def test_hello_result_builds_board_info() -> None:
    result = {
        "serial": "SN1",
        "model": "M",
        "hw": "A",
        "fw": "1.0",
        "proto": 1,
        "caps": ["tpm", "symkey"],
        "locked": False,
        "max": 8192,
    }
    check_result("hello", result)
    info = BoardInfo.from_result(result)
    assert info.serial == "SN1" and info.capabilities == ("tpm", "symkey")
    with pytest.raises(MessageError):
        check_result("hello", {**result, "locked": "no"})
    with pytest.raises(MessageError):
        BoardInfo.from_result({**result, "caps": [1]})
