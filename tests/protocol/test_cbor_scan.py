"""The CBOR pre-scan: hostile payloads are refused before a decoder expands them (issue #20)."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.protocol.cbor_scan import MAX_TOTAL_ITEMS, CborRejected, peek_seq, scan
from station.protocol.messages import (
    MessageError,
    Response,
    _check_plain,
    _decode_map,
    decode_request,
    decode_response,
    encode_response,
    response_seq,
)


def _answer(res: bytes) -> bytes:
    """A response map whose ``res`` value is the raw CBOR ``res``."""
    return (
        bytes([0xA3])
        + cbor2.dumps("res")
        + res
        + cbor2.dumps("seq")
        + b"\x07"
        + (cbor2.dumps("st") + b"\x00")
    )


def test_plain_messages_pass_and_keep_their_seq() -> None:
    payload = encode_response(Response(seq=99, status=0, result={"a": [1, b"x", None, True]}))
    scan(payload)
    assert peek_seq(payload) == 99 and response_seq(payload) == 99
    # indefinite lengths are allowed to boards (SHOULD use definite)
    indefinite = bytes([0xBF]) + cbor2.dumps("seq") + b"\x05" + cbor2.dumps("st") + b"\x01"
    scan(indefinite + b"\xff")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\xd8\x1c\x01", "tag 28"),  # shareable(1)
        (b"\xd8\x1d\x00", "tag 29"),  # sharedref(0)
        (b"\xc1\x01", "tag 1"),
        (b"\xf9\x3c\x00", "float"),
        (b"\xfb" + b"\x00" * 8, "float"),
        (b"\xf7", "simple value 23"),  # undefined
        (b"\x5a\xff\xff\xff\xff", "claims 4294967295 bytes"),
        (b"\x9b" + b"\xff" * 8, "holds"),
        (b"\x81" * 8 + b"\x01", "nests too deeply"),
        (b"\xff", "unexpected break"),
        (b"\x1c", "reserved"),
    ],
)
def test_hostile_items_are_refused_before_decoding(raw: bytes, why: str) -> None:
    with pytest.raises(CborRejected, match=why):
        scan(_answer(raw))
    with pytest.raises(MessageError, match="not plain CBOR"):
        decode_response(_answer(raw))


def test_a_shared_reference_bomb_is_refused_at_its_first_tag() -> None:
    # each level refers twice to the one before: 2**40 leaves once expanded
    bomb = b"\xd8\x1c\x81\x01" + b"".join(
        b"\xd8\x1c\x82\xd8\x1d" + bytes([0x18, i]) + b"\xd8\x1d" + bytes([0x18, i])
        for i in range(40)
    )
    with pytest.raises(MessageError, match="tag 28 at byte"):
        decode_response(_answer(bomb))
    with pytest.raises(MessageError, match="tag 28"):
        decode_request(
            b"\xa3"
            + cbor2.dumps("op")
            + cbor2.dumps("x")
            + cbor2.dumps("seq")
            + b"\x01"
            + cbor2.dumps("args")
            + b"\xd8\x1c\xa0"
        )


def test_the_item_budget_bounds_one_frame() -> None:
    wide = cbor2.dumps([[0] * 64] * 64)  # 4161 items in 4.2 KB: plain, but too much work
    assert len(wide) < 8192
    with pytest.raises(MessageError, match=f"more than {MAX_TOTAL_ITEMS} CBOR items"):
        decode_response(_answer(wide))


def test_trailing_bytes_and_truncation_are_refused() -> None:
    payload = encode_response(Response(seq=3, status=0))
    with pytest.raises(CborRejected, match="after the CBOR message"):
        scan(payload + b"\x00")
    with pytest.raises(CborRejected, match="ends early"):
        scan(payload[:-1])
    with pytest.raises(MessageError, match="'seq'"):
        response_seq(cbor2.dumps({"st": 0}))


# ---------------------------------------------------------------- one walk, the value checked once
_leaf = st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.text(max_size=6)
_key = st.text(max_size=4) | st.integers(-3, 3) | st.binary(max_size=3) | st.tuples(st.integers())
_values = st.recursive(
    _leaf | st.binary(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_key, inner, max_size=3)
        # a chain of single-item arrays: reaches and passes the depth limits of both checks
        | st.tuples(st.integers(1, 9), inner).map(lambda deep: _nest(*deep))
    ),
    max_leaves=10,
)


def _nest(levels: int, value: object) -> object:
    for _ in range(levels):
        value = [value]
    return value


def _reference_decode(payload: bytes) -> object:
    """What decoding did before the walk noted its facts: scan, decode, check the whole value."""
    try:
        scan(payload)
    except CborRejected as exc:
        return ("rejected", str(exc))
    try:
        value = cbor2.loads(payload)
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, LookupError) as exc:
        return ("not cbor", type(exc).__name__)
    if not isinstance(value, dict):
        return ("not a map",)
    try:
        _check_plain(value, 0)
    except MessageError as exc:
        return ("not plain", exc.reason)
    return ("ok", value)


def _fast_decode(payload: bytes) -> object:
    try:
        return ("ok", _decode_map(payload))
    except MessageError as exc:
        if exc.reason.startswith("not plain CBOR: "):
            return ("rejected", exc.reason.removeprefix("not plain CBOR: "))
        if exc.reason.startswith("not CBOR: "):
            return ("not cbor", exc.reason.removeprefix("not CBOR: "))
        if exc.reason == "message is not a CBOR map":
            return ("not a map",)
        return ("not plain", exc.reason)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_key, _values, max_size=4), st.data())
def test_the_value_check_is_skipped_only_where_it_cannot_fail(
    message: dict[object, object], data: st.DataObject
) -> None:
    # Non-text keys and items deeper than the message layer allows are the two things the
    # scan lets through; the decoded value is checked exactly when the walk saw one of them.
    payload = cbor2.dumps(message)
    if data.draw(st.booleans()) and payload:
        cut = data.draw(st.integers(0, len(payload) - 1))
        payload = payload[:cut] + bytes([data.draw(st.integers(0, 255))]) + payload[cut + 1 :]
    assert _fast_decode(payload) == _reference_decode(payload)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"seq": 1, "res": {1: "x"}}, "map keys must be text"),
        ({"seq": 1, "res": _nest(6, 0)}, "message nests too deeply"),  # a scalar at depth 7
        ({"seq": 1, (1,): 2}, "map keys must be text"),
    ],
)
def test_what_the_scan_lets_through_is_still_refused(value: object, reason: str) -> None:
    payload = cbor2.dumps(value)
    assert scan(payload).plain is False
    with pytest.raises(MessageError, match=reason):
        decode_response(payload)


def test_a_plain_message_is_noted_plain_and_its_first_seq_wins() -> None:
    assert scan(encode_response(Response(seq=5, status=0, result={"a": [[1]]}))).plain
    first_wins = b"\xa2" + cbor2.dumps("seq") + b"\x05" + cbor2.dumps("seq") + b"\x06"
    assert peek_seq(first_wins) == 5
    assert peek_seq(cbor2.dumps({"seq": "5"})) is None
    assert peek_seq(cbor2.dumps({"res": {"seq": 5}})) is None  # only the top level counts
    with pytest.raises(CborRejected, match="not a definite-length CBOR map"):
        peek_seq(bytes([0xBF]) + cbor2.dumps("seq") + b"\x05\xff")
