"""The CBOR pre-scan: hostile payloads are refused before a decoder expands them (issue #20)."""

from __future__ import annotations

import cbor2
import pytest

from station.protocol.cbor_scan import MAX_TOTAL_ITEMS, CborRejected, peek_seq, scan
from station.protocol.messages import (
    MessageError,
    Response,
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
