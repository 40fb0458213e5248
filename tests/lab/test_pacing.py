"""UART emulation of the virtual board, on a fake clock (no wall-clock assertions)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from station_lab.boards.faults import Faults
from station_lab.boards.firmware import Firmware
from station_lab.boards.process import BoardLoop, Unplugged
from station_lab.boards.state import BoardState, Identity


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    yield read_end, write_end
    os.close(read_end)
    os.close(write_end)


def _loop(tmp_path: Path, fd: int, clock: FakeClock, baud: int, faults: Faults) -> BoardLoop:
    state = BoardState(tmp_path / "board")
    state.create(Identity("SN", "M", "A", "1", "se"))
    return BoardLoop(fd, Firmware(state), baud=baud, faults=faults, clock=clock, sleep=clock.sleep)


def test_tx_takes_ten_bits_per_byte_in_small_chunks(tmp_path: Path, pipe: tuple[int, int]) -> None:
    clock = FakeClock()
    loop = _loop(tmp_path, pipe[1], clock, 115_200, Faults())
    loop._send(b"\x55" * 1000)
    assert os.read(pipe[0], 4096) == b"\x55" * 1000
    assert sum(clock.sleeps) == pytest.approx(1000 * 10 / 115_200)
    assert len(clock.sleeps) == 16  # ceil(1000 / 64) chunks, each sent when "on the wire"


def test_rx_is_delivered_at_line_speed_and_queues_back_to_back(
    tmp_path: Path, pipe: tuple[int, int]
) -> None:
    clock = FakeClock()
    loop = _loop(tmp_path, pipe[1], clock, 9600, Faults())
    loop._pace_rx(96)
    loop._pace_rx(96)
    assert clock.now == pytest.approx(100.0 + 2 * 96 * 10 / 9600)


def test_unpaced_link_never_sleeps(tmp_path: Path, pipe: tuple[int, int]) -> None:
    clock = FakeClock()
    loop = _loop(tmp_path, pipe[1], clock, 0, Faults())
    loop._pace_rx(5000)
    loop._send(b"x" * 5000)
    assert clock.sleeps == []


def test_unplug_after_n_bytes_cuts_the_stream_exactly(
    tmp_path: Path, pipe: tuple[int, int]
) -> None:
    loop = _loop(tmp_path, pipe[1], FakeClock(), 0, Faults(unplug_after=100))
    with pytest.raises(Unplugged):
        loop._send(b"y" * 150)
    assert os.read(pipe[0], 4096) == b"y" * 100


def test_noise_flips_and_drops_at_the_configured_rate(
    tmp_path: Path, pipe: tuple[int, int]
) -> None:
    loop = _loop(tmp_path, pipe[1], FakeClock(), 0, Faults(flip=0.01, drop=0.01, seed=2))
    data = bytes(200_000)
    noisy = loop._noise(data)
    dropped = len(data) - len(noisy)
    flipped = sum(1 for b in noisy if b)
    assert 1500 < dropped < 2500 and 1500 < flipped < 2500
    assert all(bin(b).count("1") <= 1 for b in noisy)  # one bit per damaged byte
