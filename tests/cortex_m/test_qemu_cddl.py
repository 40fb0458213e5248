"""The Cortex-M board in QEMU and the Python reference board answer the same request bytes alike,
and every answer of the Cortex-M board validates against docs/board-protocol.cddl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cbor2
import pytest

from station.adapters.board.conformance import Probe
from station.adapters.board.transport import SerialTransport
from station.protocol.messages import Request, encode_request
from station_lab.boards.runner import LabBoards
from tests.protocol.cddl import validate
from tests.support.board_script import comparable_fields, request_script


def _comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """The fields two conforming boards share (the emulated board has its own model and hw)."""
    fields = comparable_fields(answer)
    fields["res"] = {k: v for k, v in fields["res"].items() if k not in ("model", "hw")}
    return fields


@pytest.mark.parametrize("kind", ["se", "nokey"])
def test_qemu_and_python_boards_answer_the_same_bytes_alike(kind: str, tmp_path: Path) -> None:
    runners = {fw: LabBoards(tmp_path / fw, baud=0, firmware=fw) for fw in ("python", "qemu")}
    probes = {}
    try:
        for firmware, runner in runners.items():
            (board,) = runner.start(1, kind)
            probes[firmware] = Probe(
                SerialTransport(board.port, 115_200), timeout_s=5.0, slow_timeout_s=30.0
            )
        for n, (op, args) in enumerate(request_script(kind)):
            payload = encode_request(Request(100 + n, op, args))
            answers = {}
            for firmware, probe in probes.items():
                probe.exchange_payload(payload, slow=True)
                answers[firmware] = cbor2.loads(probe.last_payload)
            validate(
                probes["qemu"].last_payload, "response" if op == "format" else f"{op}-response"
            )
            assert _comparable(answers["qemu"]) == _comparable(answers["python"]), (op, args)
    finally:
        for probe in probes.values():
            probe.transport.close()
        for runner in runners.values():
            runner.stop()
