"""Frame layer of the board protocol: COBS byte stuffing, 0x00 delimiters and CRC-32.

A frame on the wire is ``COBS(payload || CRC32-LE(payload)) || 0x00``. COBS guarantees that the
encoded bytes contain no 0x00, so a receiver that lost sync (line noise, a board reset mid-frame)
finds the next frame boundary at the next 0x00. The decoder is incremental and bounded: it never
holds more than :data:`MAX_ENCODED_FRAME` bytes, whatever it is fed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import Enum

#: Largest payload (the CBOR message) a frame may carry, in bytes.
MAX_PAYLOAD = 8192
CRC_SIZE = 4
#: Largest COBS-encoded frame, without its delimiter: one overhead byte per 254 data bytes, + 1.
MAX_ENCODED_FRAME = MAX_PAYLOAD + CRC_SIZE + (MAX_PAYLOAD + CRC_SIZE) // 254 + 1
DELIMITER = b"\x00"


def crc32(data: bytes) -> int:
    """CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320, init and xorout 0xFFFFFFFF)."""
    return zlib.crc32(data) & 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    """Encode ``data`` with Consistent Overhead Byte Stuffing (the result holds no 0x00)."""
    out = bytearray()
    # Each run between zeros becomes a code byte (run length + 1) and the run; a run of 254 or
    # more is cut into full 0xFF blocks first (they imply no zero after them).
    for run in bytes(data).split(b"\x00"):
        while len(run) >= 0xFE:
            out.append(0xFF)
            out += run[:0xFE]
            run = run[0xFE:]
        out.append(len(run) + 1)
        out += run
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    """Decode one COBS block (without delimiter); ``None`` if it is not valid COBS."""
    out = bytearray()
    index = 0
    length = len(data)
    while index < length:
        code = data[index]
        if code == 0 or index + code > length:
            return None
        block = data[index + 1 : index + code]
        if 0 in block:
            return None
        out += block
        index += code
        if code != 0xFF and index < length:
            out.append(0)
    return bytes(out)


def encode_frame(payload: bytes) -> bytes:
    """Return the wire bytes of one frame carrying ``payload`` (delimiter included).

    Raises:
        ValueError: ``payload`` is longer than :data:`MAX_PAYLOAD`.
    """
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = payload + crc32(payload).to_bytes(CRC_SIZE, "little")
    return cobs_encode(body) + DELIMITER


class FrameFault(Enum):
    """Why bytes between two delimiters were not a frame."""

    BAD_COBS = "bad_cobs"
    TOO_SHORT = "too_short"
    BAD_CRC = "bad_crc"
    OVERSIZED = "oversized"


@dataclass(frozen=True)
class BadFrame:
    """A discarded frame: the fault and how many bytes were thrown away."""

    fault: FrameFault
    size: int


class FrameDecoder:
    """Incremental frame decoder: feed bytes, get payloads and discarded-frame reports.

    Memory is bounded by :data:`MAX_ENCODED_FRAME`: once a frame grows beyond it, its bytes are
    dropped up to the next delimiter and reported once as :attr:`FrameFault.OVERSIZED`.
    """

    def __init__(self, max_encoded: int = MAX_ENCODED_FRAME) -> None:
        self._max = max_encoded
        self._buffer = bytearray()
        self._overflow = 0  # bytes dropped from the current oversized frame

    def feed(self, data: bytes) -> list[bytes | BadFrame]:
        """Consume ``data``; return the complete frames in it, in order.

        Each item is either a payload (CRC checked and stripped) or a :class:`BadFrame`.
        Empty frames (two delimiters in a row) are ignored silently.
        """
        results: list[bytes | BadFrame] = []
        start = 0
        while True:
            end = data.find(0, start)
            chunk = data[start:] if end < 0 else data[start:end]
            self._append(chunk)
            if end < 0:
                return results
            result = self._finish()
            if result is not None:
                results.append(result)
            start = end + 1

    def _append(self, chunk: bytes) -> None:
        if self._overflow:
            self._overflow += len(chunk)
            return
        if len(self._buffer) + len(chunk) > self._max:
            self._overflow = len(self._buffer) + len(chunk)
            self._buffer.clear()
            return
        self._buffer += chunk

    def _finish(self) -> bytes | BadFrame | None:
        if self._overflow:
            size, self._overflow = self._overflow, 0
            return BadFrame(FrameFault.OVERSIZED, size)
        raw = bytes(self._buffer)
        self._buffer.clear()
        if not raw:
            return None
        decoded = cobs_decode(raw)
        if decoded is None:
            return BadFrame(FrameFault.BAD_COBS, len(raw))
        if len(decoded) < CRC_SIZE:
            return BadFrame(FrameFault.TOO_SHORT, len(raw))
        payload, trailer = decoded[:-CRC_SIZE], decoded[-CRC_SIZE:]
        if crc32(payload) != int.from_bytes(trailer, "little"):
            return BadFrame(FrameFault.BAD_CRC, len(raw))
        return payload

    @property
    def pending(self) -> int:
        """Bytes held for an unfinished frame (for tests and diagnostics)."""
        return len(self._buffer)
