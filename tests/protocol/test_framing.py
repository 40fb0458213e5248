"""Frame layer: COBS, CRC-32 and the incremental, bounded decoder."""

from __future__ import annotations

import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from station.protocol.framing import (
    MAX_ENCODED_FRAME,
    MAX_PAYLOAD,
    BadFrame,
    FrameDecoder,
    FrameFault,
    cobs_decode,
    cobs_encode,
    crc32,
    encode_frame,
)

payloads = st.binary(max_size=MAX_PAYLOAD)


def test_crc32_is_the_ieee_check_value() -> None:
    assert crc32(b"123456789") == 0xCBF43926


def test_known_cobs_vectors() -> None:
    assert cobs_encode(b"") == b"\x01"
    assert cobs_encode(b"\x00") == b"\x01\x01"
    assert cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert cobs_encode(bytes(range(1, 255))) == b"\xff" + bytes(range(1, 255)) + b"\x01"


def test_frame_layout_is_cobs_of_payload_and_crc_le() -> None:
    frame = encode_frame(b"hi")
    assert frame.endswith(b"\x00") and b"\x00" not in frame[:-1]
    body = cobs_decode(frame[:-1])
    assert body == b"hi" + zlib.crc32(b"hi").to_bytes(4, "little")


@given(payloads)
def test_cobs_round_trip(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert cobs_decode(encoded) == data


@given(st.lists(payloads, max_size=5), st.integers(min_value=1, max_value=97))
def test_frames_round_trip_in_any_chunking(frames: list[bytes], chunk: int) -> None:
    wire = b"".join(encode_frame(f) for f in frames)
    decoder = FrameDecoder()
    out: list[bytes | BadFrame] = []
    for i in range(0, len(wire), chunk):
        out += decoder.feed(wire[i : i + chunk])
    assert out == frames
    assert decoder.pending == 0


@settings(max_examples=300)
@given(st.binary(max_size=4000))
def test_garbage_never_raises_and_never_grows_unbounded(noise: bytes) -> None:
    decoder = FrameDecoder()
    for item in decoder.feed(noise):
        assert isinstance(item, BadFrame | bytes)
    assert decoder.pending <= MAX_ENCODED_FRAME
    # and the decoder resynchronises: the next frame after a delimiter comes through intact
    assert decoder.feed(b"\x00" + encode_frame(b"after noise"))[-1] == b"after noise"


@settings(max_examples=300)
@given(payloads.filter(bool), st.data())
def test_a_bit_flip_is_detected_or_resynced(payload: bytes, data: st.DataObject) -> None:
    wire = bytearray(encode_frame(payload))
    position = data.draw(st.integers(0, len(wire) - 1))
    wire[position] ^= 1 << data.draw(st.integers(0, 7))
    decoder = FrameDecoder()
    # The station sends a delimiter before each frame, so even a flipped delimiter resyncs.
    results = decoder.feed(bytes(wire)) + decoder.feed(b"\x00" + encode_frame(b"next"))
    # A single flip never yields a payload: CRC-32 catches every 1-bit error.
    assert [r for r in results if isinstance(r, bytes)] == [b"next"]
    assert any(isinstance(r, BadFrame) for r in results)


@given(payloads.filter(bool), st.data())
def test_truncated_frame_is_reported_not_delivered(payload: bytes, data: st.DataObject) -> None:
    wire = encode_frame(payload)
    cut = data.draw(st.integers(1, len(wire) - 2))  # keep at least one byte off the end
    decoder = FrameDecoder()
    assert decoder.feed(wire[:cut]) == []
    results = decoder.feed(b"\x00")
    assert len(results) == 1 and isinstance(results[0], BadFrame)


def test_oversized_input_is_dropped_to_the_next_delimiter_once() -> None:
    decoder = FrameDecoder()
    results = []
    for _ in range(10):  # 10 x 4 KiB without a delimiter
        results += decoder.feed(b"\x07" * 4096)
        assert decoder.pending <= MAX_ENCODED_FRAME
    results += decoder.feed(b"\x00" + encode_frame(b"ok"))
    assert results[0] == BadFrame(FrameFault.OVERSIZED, 40960)
    assert results[1:] == [b"ok"]


def test_encode_refuses_payloads_beyond_the_maximum() -> None:
    try:
        encode_frame(b"x" * (MAX_PAYLOAD + 1))
    except ValueError as exc:
        assert str(MAX_PAYLOAD) in str(exc)
    else:
        raise AssertionError("oversized payload was encoded")


def test_largest_payload_fits_the_decoder_bound() -> None:
    payload = bytes(range(256)) * (MAX_PAYLOAD // 256)
    assert FrameDecoder().feed(encode_frame(payload)) == [payload]
