"""The transport's direct descriptor path against a real pty: what a tty board can do to it."""

from __future__ import annotations

import os
import pty
import threading
import time
import tty
from collections.abc import Iterator

import pytest

from station.adapters.board import transport as transport_module
from station.adapters.board.session import BoardSession
from station.adapters.board.transport import SerialTransport
from station.domain.errors import BoardDisconnectedError
from station.protocol.framing import FrameDecoder, encode_frame
from station.protocol.messages import Response, decode_request, encode_response


class Pty:
    """A pty pair: the test holds the board's end (``master``), the station opens ``path``."""

    def __init__(self) -> None:
        self.master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)

    def hang_up(self) -> None:
        """What an unplugged USB board looks like to the station: its end goes away."""
        for fd in (self.master, self._slave):
            if fd >= 0:
                os.close(fd)
        self.master = self._slave = -1


@pytest.fixture
def line() -> Iterator[Pty]:
    pair = Pty()
    yield pair
    pair.hang_up()


def _read_until(transport: SerialTransport, size: int) -> bytes:
    data = b""
    deadline = time.monotonic() + 5
    while len(data) < size and time.monotonic() < deadline:
        data += transport.read(deadline)
    return data


def test_a_tty_goes_through_its_descriptor(line: Pty) -> None:
    transport = SerialTransport(line.path, baud=0)
    try:
        assert transport._fd is not None  # the path this file is about
        frame = encode_frame(b"\x01" * 3000)
        os.write(line.master, frame)
        assert _read_until(transport, len(frame)) == frame
        transport.write(b"\x00request\x00")
        assert os.read(line.master, 100) == b"\x00request\x00"
        assert (transport.bytes_in, transport.bytes_out) == (len(frame), 9)
    finally:
        transport.close()


def test_a_silent_board_times_out_with_nothing(line: Pty) -> None:
    transport = SerialTransport(line.path, baud=0)
    try:
        assert transport.read(time.monotonic() + 0.05) == b""
        assert transport.read(time.monotonic() - 1) == b""  # a deadline already past
        os.write(line.master, b"late")
        # bytes that are there are returned even when the deadline has passed
        assert _read_until(transport, 4) == b"late"
    finally:
        transport.close()


def test_a_frame_split_across_writes_is_one_answer(line: Pty) -> None:
    """The board writes half its answer, pauses, then the rest: the session joins them."""
    session = BoardSession(SerialTransport(line.path, baud=0), timeout_s=5.0, retries=0)

    def board() -> None:
        decoder = FrameDecoder()
        while True:
            (request,) = [item for item in decoder.feed(os.read(line.master, 4096)) if item]
            assert isinstance(request, bytes)
            seq = decode_request(request).seq
            wire = encode_frame(encode_response(Response(seq=seq, status=0, result={"gen": 4})))
            os.write(line.master, wire[:5])
            time.sleep(0.05)  # the station must be waiting on the first half when it arrives
            os.write(line.master, wire[5:])
            return

    thread = threading.Thread(target=board)
    thread.start()
    try:
        assert session.write("dps", b"x") == 4
        assert session.stats.retries == 0 and session.stats.bad_frames == 0
    finally:
        thread.join(timeout=10)
        session.close()


def test_a_board_unplugged_mid_frame_is_disconnected(line: Pty) -> None:
    transport = SerialTransport(line.path, baud=0)
    try:
        frame = encode_frame(b"\x02" * 100)
        os.write(line.master, frame[:40])
        assert _read_until(transport, 40) == frame[:40]
        line.hang_up()
        with pytest.raises(BoardDisconnectedError) as caught:
            transport.read(time.monotonic() + 5)
        assert caught.value.details["port"] == line.path and caught.value.remedy
        with pytest.raises(BoardDisconnectedError):
            transport.write(b"\x00more\x00")
    finally:
        transport.close()


def test_a_write_waits_for_a_slow_reader_and_all_bytes_arrive(line: Pty) -> None:
    transport = SerialTransport(line.path, baud=0)
    blob = os.urandom(200_000)  # far more than a pty buffers: the write must wait for room
    received = bytearray()

    def slow_reader() -> None:
        while len(received) < len(blob):
            time.sleep(0.001)
            received.extend(os.read(line.master, 4096))

    thread = threading.Thread(target=slow_reader)
    thread.start()
    try:
        transport.write(blob)
    finally:
        thread.join(timeout=30)
        transport.close()
    assert bytes(received) == blob and transport.bytes_out == len(blob)


def test_a_board_that_never_drains_its_input_ends_the_write(
    line: Pty, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport_module, "_WRITE_TIMEOUT_S", 0.2)
    transport = SerialTransport(line.path, baud=0)
    try:
        with pytest.raises(BoardDisconnectedError, match="Write timeout"):
            transport.write(b"\x01" * 1_000_000)
    finally:
        transport.close()


def test_a_closed_transport_does_not_touch_the_descriptor_again(line: Pty) -> None:
    transport = SerialTransport(line.path, baud=0)
    transport.close()
    reused = os.open(os.devnull, os.O_RDONLY)  # may get the closed descriptor's number
    try:
        with pytest.raises(BoardDisconnectedError):
            transport.read(time.monotonic() + 0.05)
    finally:
        os.close(reused)
