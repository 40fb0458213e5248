"""A board that attacks the station over a real pty cannot burn it (issue #20, item 2)."""

from __future__ import annotations

import os
import pty
import select
import threading
import time
import tty
from collections.abc import Callable, Iterator

import cbor2
import pytest

from station.adapters.board.session import BoardSession, open_session
from station.domain.errors import BoardProtocolError, BoardTimeoutError
from station.protocol.framing import FrameDecoder, encode_frame
from station.protocol.messages import Response, encode_response

#: request seq -> the payloads the hostile board sends back
Script = Callable[[int], list[bytes]]


def _shared_ref_bomb(seq: int) -> bytes:
    """1.2 KB of CBOR whose shared references (tags 28/29) expand to 2**40 leaves."""
    bomb = b"\xd8\x1c\x81\x01" + b"".join(
        b"\xd8\x1c\x82\xd8\x1d" + bytes([0x18, i]) + b"\xd8\x1d" + bytes([0x18, i])
        for i in range(40)
    )
    head = cbor2.dumps("seq") + cbor2.dumps(seq) + cbor2.dumps("st") + b"\x00"
    return b"\xa3" + head + cbor2.dumps("res") + b"\xa1" + cbor2.dumps("x") + bomb


class HostileBoard:
    """The far end of a pty: answers every request frame with what ``script`` says."""

    def __init__(self, script: Script) -> None:
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self.script = script
        self.requests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        decoder = FrameDecoder()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for item in decoder.feed(data):
                if isinstance(item, bytes):
                    self.requests += 1
                    seq = cbor2.loads(item)["seq"]
                    for payload in self.script(seq):
                        os.write(self.master, encode_frame(payload))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        os.close(self.master)
        os.close(self._slave)


@pytest.fixture
def hostile() -> Iterator[Callable[[Script], BoardSession]]:
    boards: list[HostileBoard] = []
    sessions: list[BoardSession] = []

    def start(script: Script) -> BoardSession:
        board = HostileBoard(script)
        boards.append(board)
        session = open_session(board.path, timeout_s=1.0, retries=1)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()
    for board in boards:
        board.close()


def _hello(seq: int) -> bytes:
    result = {"proto": 1, "serial": "SN1", "model": "M", "fw": "1", "hw": "A", "caps": ["se"]}
    result |= {"locked": False, "max": 8192}
    return encode_response(Response(seq=seq, status=0, result=result))


def test_a_shared_reference_bomb_is_refused_without_expanding_it(hostile) -> None:
    session = hostile(lambda seq: [_shared_ref_bomb(seq)])
    started = time.process_time()
    with pytest.raises(BoardProtocolError) as caught:
        session.hello()
    assert "tag 28" in caught.value.message
    assert session.stats.bad_frames == 2  # both attempts answered with the bomb
    assert time.process_time() - started < 30  # the unprotected decoder ran for minutes


def test_a_stale_answer_is_dropped_by_its_seq_before_its_body_is_decoded(hostile) -> None:
    def script(seq: int) -> list[bytes]:
        # plain CBOR, but a body the decoder refuses (unknown field): never looked at
        stale = cbor2.dumps({"seq": (seq + 7) & 0xFFFFFFFF, "st": 0, "bogus": [1] * 60})
        return [stale, _hello(seq)]

    session = hostile(script)
    assert session.hello().serial == "SN1"
    assert session.stats.stale_responses == 1
    assert session.stats.bad_frames == 0 and session.stats.retries == 0


def test_a_board_that_only_sends_stale_answers_ends_within_the_exchange(hostile) -> None:
    session = hostile(lambda seq: [_hello((seq + 1) & 0xFFFFFFFF)] * 50)
    with pytest.raises(BoardTimeoutError):
        session.hello()
    assert session.stats.stale_responses >= 50


@pytest.mark.parametrize(
    "serial", ['=HYPERLINK("http://x")', "SN1\x1b[2K\rPASS", "SN 1", "-SN1", "+SN1"]
)
def test_a_board_serial_is_held_to_the_scanned_serial_rule(hostile, serial: str) -> None:
    def script(seq: int) -> list[bytes]:
        result = {"proto": 1, "serial": serial, "model": "M", "fw": "1", "hw": "A", "caps": []}
        result |= {"locked": False, "max": 8192}
        return [encode_response(Response(seq=seq, status=0, result=result))]

    session = hostile(script)
    with pytest.raises(BoardProtocolError, match="not a board serial number"):
        session.hello()


def test_board_text_cannot_rewrite_the_terminal(tmp_path, capsys) -> None:
    from station.cli.main import main

    def script(seq: int) -> list[bytes]:
        result = {"proto": 1, "serial": "SN1", "model": "M\x1b[2K\rPASS", "fw": "1\x07"}
        result |= {"hw": "A", "caps": ["se\x1b]0;x"], "locked": False, "max": 8192}
        return [encode_response(Response(seq=seq, status=0, result=result))]

    board = HostileBoard(script)
    try:
        config = tmp_path / "station.toml"
        config.write_text(f'[station]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
        assert main(["--config", str(config), "board", "probe", board.path]) == 1
    finally:
        board.close()
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    assert "reports control characters in its model" in text


def test_a_frame_over_its_cpu_budget_is_dropped(hostile, monkeypatch) -> None:
    """Whatever the pre-scan misses, one frame cannot hold the station's CPU for long."""
    from station.adapters.board import session as session_module

    real = session_module.decode_response

    def expensive(payload: bytes) -> Response:
        start = time.thread_time()
        while time.thread_time() - start <= session_module.FRAME_CPU_BUDGET_S:
            pass  # burns CPU time (not wall time) past the budget
        return real(payload)

    monkeypatch.setattr(session_module, "decode_response", expensive)
    session = hostile(lambda seq: [_hello(seq)])
    with pytest.raises(BoardProtocolError, match="more CPU than its budget"):
        session.hello()
    assert session.stats.bad_frames == 2
