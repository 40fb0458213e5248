"""The Cortex-M board in QEMU answers the spec's limit cases over its UART: oversized and broken
frames, deep nesting, huge byte strings, wrong types, replayed and out-of-order sequence
numbers (the same cases seed the fuzzers, tests/fuzz/seeds.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.adapters.board.transport import SerialTransport
from station.protocol.framing import MAX_ENCODED_FRAME, FrameDecoder, encode_frame
from station.protocol.messages import Response, Status, decode_response
from station_lab.boards.runner import LabBoards
from tests.fuzz.seeds import LIMIT_CASES, LimitCase, request


class Wire:
    """Raw frames to and from the board, without the station's session (no retries)."""

    def __init__(self, port: str) -> None:
        self.transport = SerialTransport(port, 115_200)
        self.decoder = FrameDecoder()
        self.pending: list[Response] = []

    def send(self, wire: bytes) -> Response:
        """Write ``wire``, return the next answer (answers that came together are queued)."""
        self.transport.write(wire)
        deadline = time.monotonic() + 20.0
        while not self.pending:
            assert time.monotonic() < deadline, "the board did not answer"
            for item in self.decoder.feed(self.transport.read(deadline)):
                assert isinstance(item, bytes), item  # the board's frames are never broken
                self.pending.append(decode_response(item))
        return self.pending.pop(0)

    def ask(self, payload: bytes) -> Response:
        return self.send(b"\x00" + encode_frame(payload))


def _qemu_board(directory: Path) -> Iterator[Wire]:
    lab = LabBoards(directory, baud=0, firmware="qemu")
    try:
        (board,) = lab.start(1, "se")
        link = Wire(board.port)
        yield link
        link.transport.close()
    finally:
        lab.stop()


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[Wire]:
    """A factory-fresh QEMU board."""
    yield from _qemu_board(tmp_path / "lab")


@pytest.fixture(scope="module")
def shared_wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    """One QEMU board for the limit cases, which all leave it unchanged."""
    yield from _qemu_board(tmp_path_factory.mktemp("lab"))


@pytest.mark.parametrize("case", LIMIT_CASES, ids=lambda case: case.name)
def test_limit_case_gets_the_status_the_spec_names(shared_wire: Wire, case: LimitCase) -> None:
    answer = shared_wire.ask(case.payload)
    assert (answer.status, answer.seq) == (case.status, case.seq), answer.message
    assert shared_wire.ask(request(99, "hello")).ok  # and the board carries on


def test_broken_and_oversized_frames_are_naked_and_the_link_resynchronises(wire: Wire) -> None:
    hello = encode_frame(request(1, "hello", proto=1))
    bad_crc = bytearray(hello)
    bad_crc[4] ^= 0x01
    nak = wire.send(b"\x00" + bytes(bad_crc))
    assert (nak.seq, nak.status) == (0, Status.MALFORMED)
    nak = wire.send(b"\x00" + b"\x01" * (MAX_ENCODED_FRAME + 100) + b"\x00")
    assert (nak.seq, nak.status) == (0, Status.TOO_LARGE)
    # noise without a delimiter, then the station's leading 0x00 and a good frame
    nak = wire.send(bytes(range(1, 250)) + b"\x00" + hello)
    assert (nak.seq, nak.status) == (0, Status.MALFORMED)  # the noise, as a frame
    answer = wire.send(b"")  # the hello's answer, right behind the NAK
    assert answer.ok and answer.seq == 1 and answer.result["proto"] == 1
    # the largest legal frame goes through
    largest = request(2, "write", name="cert_chain", data=bytes(6144))
    assert wire.ask(largest).result == {"gen": 1}


def test_replayed_and_out_of_order_sequence_numbers(wire: Wire) -> None:
    first = request(500, "write", name="cert_chain", data=b"\x30\x01\x00")
    assert wire.ask(first).result == {"gen": 1}
    assert wire.ask(first).result == {"gen": 1}  # a retry: the answer again, not a second write
    older = request(499, "write", name="cert_chain", data=b"\x30\x01\x01")
    assert wire.ask(older).result == {"gen": 2}  # an older seq with a new payload is new
    assert wire.ask(first).result == {"gen": 3}  # no longer the last request: executed again
    read = wire.ask(request(4294967295, "read", name="cert_chain"))
    assert (read.seq, read.result["data"]) == (4294967295, b"\x30\x01\x00")
    assert wire.ask(request(1, "read", name="cert_chain")).result["gen"] == 3  # after the wrap
