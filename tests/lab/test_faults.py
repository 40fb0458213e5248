"""Fault injection: noisy cables, unplugs mid-frame, garbage in both directions, stuck boards."""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable

import pytest

from station.adapters.board.session import BoardSession
from station.domain.errors import BoardDisconnectedError, BoardProtocolError, BoardTimeoutError
from station_lab.boards.faults import Faults
from station_lab.boards.runner import LabBoards

Connect = Callable[..., BoardSession]
#: Every lab fault here makes sense for a firmware written from the spec: run them on both.
pytestmark = pytest.mark.parametrize("lab", ["python", "c"], indirect=True)


def test_bad_cable_sessions_complete_through_retries(lab: LabBoards, connect: Connect) -> None:
    # 3e-4 per byte each way, flips and drops: ~6 % of 100-byte exchanges get damaged.
    (board,) = lab.start(1, "se", Faults(flip=3e-4, drop=3e-4, seed=11))
    session = connect(board.port, timeout_s=0.5, retries=6)
    rng = random.Random(5)
    for round_ in range(150):
        data = rng.randbytes(rng.randrange(50, 400))
        generation = session.write("cert_chain", data)
        assert generation == round_ + 1  # each write applied exactly once despite retries
        assert session.read("cert_chain").data == data
    assert session.stats.retries > 0
    assert session.stats.bad_frames > 0


def test_unplug_mid_frame_gives_disconnected_and_state_survives(
    lab: LabBoards, connect: Connect
) -> None:
    (board,) = lab.start(1, "se", Faults(unplug_at="read"))
    session = connect(board.port)
    public = session.keygen()
    session.write("cert_chain", b"chain-v1")
    with pytest.raises(BoardDisconnectedError) as caught:
        session.read("cert_chain")
    assert caught.value.code == "board.disconnected"
    assert caught.value.details["port"] == board.port
    lab.replug(board.index)
    again = connect(board.port)
    assert again.hello().serial == board.serial
    state = again.read("cert_chain")
    assert (state.data, state.generation) == (b"chain-v1", 1)
    csr_public = again.csr("x")
    assert public[-65:] in csr_public  # same device key after replug


def test_unplug_after_n_bytes_mid_frame(lab: LabBoards, connect: Connect) -> None:
    (board,) = lab.start(1, "se", Faults(unplug_after=300))
    session = connect(board.port)
    session.hello()  # about 120 bytes from the board
    session.write("cert_chain", b"x" * 400)  # a short answer
    with pytest.raises(BoardDisconnectedError):
        session.read("cert_chain")  # a 400+ byte answer: the board vanishes inside it
    assert board.process is not None and board.process.wait(10) == 3  # exit code of an unplug


def test_garbage_answers_never_crash_the_station(lab: LabBoards, connect: Connect) -> None:
    (board,) = lab.start(1, "se", Faults(garbage=1.0, seed=3))
    session = connect(board.port, timeout_s=0.3, retries=2)
    for _ in range(3):
        with pytest.raises((BoardProtocolError, BoardTimeoutError)):
            session.hello()
    assert session.stats.retries == 6


def test_sometimes_garbage_still_completes(lab: LabBoards, connect: Connect) -> None:
    (board,) = lab.start(1, "se", Faults(garbage=0.2, seed=4))
    session = connect(board.port, timeout_s=0.3, retries=8)
    for _ in range(20):
        assert session.hello().serial == board.serial
    assert session.stats.retries > 0


def test_garbage_from_the_station_never_crashes_the_board(lab: LabBoards, connect: Connect) -> None:
    (board,) = lab.start(1, "se")
    session = connect(board.port)
    rng = random.Random(1)
    noise = rng.randbytes(20_000) + b"\x01" * 12_000 + b"\x00"  # random, then an oversized frame
    session.transport.write(noise)
    session.transport.discard_input()
    assert session.hello().serial == board.serial
    assert board.plugged


def test_a_stuck_board_times_out_cleanly(lab: LabBoards, connect: Connect) -> None:
    (board,) = lab.start(1, "se")
    session = connect(board.port, timeout_s=0.3, retries=1)
    session.hello()
    assert board.process is not None
    os.kill(board.process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(BoardTimeoutError) as caught:
            session.hello()
        assert caught.value.details["attempts"] == 2
    finally:
        os.kill(board.process.pid, signal.SIGCONT)
    assert session.hello().serial == board.serial  # stale answers are skipped by seq
