"""The Cortex-M board's records survive a write cut short: the firmware's A/B sectors keep the
previous copy in force when the newest one is torn (agent/ports/cortex-m/store.c)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from station.adapters.board.session import open_session
from station_lab.boards.qemu_board import FLASH_FILE, FLASH_SECTOR
from station_lab.boards.runner import LabBoards

RECORD_MAGIC = 0x53524543
HEADER = struct.Struct("<IIQIIII")  # magic, seq, uid, flags, len, data CRC, header CRC
CERT_CHAIN_SECTORS = (1, 2)  # record slot 0 (AGENT_REC_CERT_CHAIN): sectors 1 and 2


def _newest_copy(flash: bytes) -> int:
    """Offset of the sector holding the newest cert_chain copy."""
    copies = []
    for sector in CERT_CHAIN_SECTORS:
        offset = sector * FLASH_SECTOR
        magic, seq, *_ = HEADER.unpack_from(flash, offset)
        if magic == RECORD_MAGIC:
            copies.append((seq, offset))
    assert len(copies) == 2, "both halves hold a copy after two writes"
    return max(copies)[1]


def _tear_data(flash: bytearray, offset: int) -> None:
    flash[offset + HEADER.size + 10] ^= 0x01  # a page the program never finished


def _tear_header(flash: bytearray, offset: int) -> None:
    flash[offset : offset + HEADER.size] = b"\xff" * HEADER.size  # cut before the header


@pytest.mark.parametrize("tear", [_tear_data, _tear_header], ids=["data", "header"])
def test_a_torn_write_leaves_the_previous_record(
    tmp_path: Path, tear: Callable[[bytearray, int], None]
) -> None:
    with LabBoards(tmp_path / "lab", baud=0, firmware="qemu") as lab:
        (board,) = lab.start(1, "se")
        session = open_session(board.port, timeout_s=5.0)
        try:
            assert session.write("cert_chain", b"A" * 100) == 1
            assert session.write("cert_chain", b"B" * 100) == 2
        finally:
            session.close()
        lab.unplug(1)

        flash_path = board.state_dir / FLASH_FILE
        flash = bytearray(flash_path.read_bytes())
        tear(flash, _newest_copy(bytes(flash)))
        flash_path.write_bytes(bytes(flash))

        board = lab.replug(1)
        session = open_session(board.port, timeout_s=5.0)
        try:
            state = session.read("cert_chain")
        finally:
            session.close()
    assert (state.generation, state.data) == (1, b"A" * 100)
