"""Fast session tests over an in-process transport wired to the reference firmware."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from station.adapters.board.session import BoardSession
from station.cli.main import main
from station.domain.errors import BoardProtocolError
from station.protocol.framing import FrameDecoder, encode_frame
from station_lab.boards.firmware import Firmware
from station_lab.boards.state import BoardState, Identity


class FirmwareTransport:
    """Frames written by the session go straight into a firmware; answers come back."""

    url = "mem://board"

    def __init__(self, firmware: Firmware) -> None:
        self.firmware = firmware
        self.decoder = FrameDecoder()
        self.pending = b""
        self.bytes_in = self.bytes_out = 0

    def write(self, data: bytes) -> None:
        self.bytes_out += len(data)
        for item in self.decoder.feed(data):
            assert isinstance(item, bytes)
            self.pending += encode_frame(self.firmware.handle(item))

    def read(self, deadline: float) -> bytes:
        data, self.pending = self.pending, b""
        if not data:
            time.sleep(max(0.0, min(0.01, deadline - time.monotonic())))
        self.bytes_in += len(data)
        return data

    def discard_input(self) -> None:
        self.pending = b""

    def close(self) -> None:
        pass


class FutureFirmware(Firmware):
    def _op_hello(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return {**super()._op_hello(args), "proto": 2}


def _session(tmp_path: Path, cls: type[Firmware] = Firmware) -> BoardSession:
    state = BoardState(tmp_path / "board")
    state.create(Identity("SN9", "M", "A", "1.0", "se"))
    return BoardSession(FirmwareTransport(cls(state)), timeout_s=0.2)


def test_hello_and_reset_in_process(tmp_path: Path) -> None:
    session = _session(tmp_path)
    assert session.hello().serial == "SN9"
    assert session.info is not None and session.port == "mem://board"
    session.reset()
    assert session.write("symkey", b"s" * 16) == 1
    assert session.stats.requests == 3 and session.stats.retries == 0


def test_protocol_version_mismatch_is_refused(tmp_path: Path) -> None:
    session = _session(tmp_path, FutureFirmware)
    with pytest.raises(BoardProtocolError) as caught:
        session.hello()
    assert "protocol version 2" in caught.value.message
    assert caught.value.details["board_protocol"] == 2


def test_lab_boards_cli_rejects_bad_faults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "boards", "--count", "1", "--faults", "wobble=1"]) == 1
    assert "unknown fault 'wobble'" in capsys.readouterr().err
