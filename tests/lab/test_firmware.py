"""The board firmware's request handler, driven in-process (fast unit tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from station.protocol.messages import (
    Request,
    Status,
    decode_response,
    encode_request,
)
from station_lab.boards.faults import Faults, FaultSpecError
from station_lab.boards.firmware import SLOW_TPM_PROFILE, Firmware
from station_lab.boards.state import BoardState, Identity


class EchoTpm:
    def __init__(self) -> None:
        self.commands: list[bytes] = []

    def transmit(self, command: bytes) -> bytes:
        self.commands.append(command)
        return bytes.fromhex("80010000000a00000000")


def _firmware(root: Path, kind: str = "tpm", **options: object) -> Firmware:
    state = BoardState(root)
    state.create(Identity("SN1", "M", "A", "1.0", kind))
    return Firmware(state, EchoTpm(), **options)  # type: ignore[arg-type]


def _ask(firmware: Firmware, seq: int, op: str, **args: object) -> tuple[int, int, dict]:
    response = decode_response(firmware.handle(encode_request(Request(seq, op, args))))
    return response.seq, response.status, dict(response.result)


def test_slow_tpm_profile_delays_by_command_code(tmp_path: Path) -> None:
    waits: list[float] = []
    firmware = _firmware(tmp_path, tpm_slowdown=0.5, sleep=waits.append)
    create_primary = bytes.fromhex("80020000000c00000131") + b"\x00\x00"
    assert _ask(firmware, 1, "tpm", cmd=create_primary)[1] == Status.OK
    assert waits == [SLOW_TPM_PROFILE[0x131] * 0.5]


def test_replayed_request_is_not_applied_twice(tmp_path: Path) -> None:
    firmware = _firmware(tmp_path)
    payload = encode_request(Request(5, "write", {"name": "cert_chain", "data": b"abc"}))
    first = firmware.handle(payload)
    assert firmware.handle(payload) == first
    assert _ask(firmware, 6, "read", name="cert_chain")[2]["gen"] == 1
    # the same seq with different content is a new request, not a retry
    second = encode_request(Request(5, "write", {"name": "cert_chain", "data": b"abd"}))
    assert decode_response(firmware.handle(second)).result["gen"] == 2


def test_undecodable_request_is_answered_with_seq_zero(tmp_path: Path) -> None:
    response = decode_response(_firmware(tmp_path).handle(b"\xff\x00garbage"))
    assert (response.seq, response.status) == (0, Status.MALFORMED)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_any_payload_gets_an_answer(tmp_path: Path, payload: bytes) -> None:
    firmware = _firmware(tmp_path / "fw")
    response = decode_response(firmware.handle(payload))
    assert response.status in {s.value for s in Status}


# Generating nested argument maps is slow on a loaded 2-core machine; that is not under test.
@settings(
    max_examples=200,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.sampled_from(["hello", "tpm", "keygen", "csr", "sign", "write", "read", "lock", "reset"]),
    st.dictionaries(
        st.sampled_from(["cmd", "key", "cn", "nonce", "name", "data", "replace", "factory"]),
        st.none() | st.booleans() | st.integers() | st.text(max_size=70) | st.binary(max_size=70),
        max_size=3,
    ),
)
def test_any_arguments_get_an_answer_never_internal(tmp_path: Path, op: str, args: dict) -> None:
    firmware = _firmware(tmp_path / "fw", kind="se")
    _, status, _ = _ask(firmware, 9, op, **args)
    assert status != Status.INTERNAL


def test_fault_text_round_trips_and_rejects_nonsense() -> None:
    faults = Faults.parse("flip=1e-4, drop=0.001,unplug_at=write,slow_tpm=2,clone,seed=3")
    assert faults == Faults(
        flip=1e-4, drop=0.001, unplug_at="write", slow_tpm=2.0, clone=True, seed=3
    )
    assert Faults.parse(faults.render()) == faults
    for bad in ("wobble=1", "flip=2", "flip=x", "unplug_at=fly", "unplug_after=-1"):
        with pytest.raises(FaultSpecError):
            Faults.parse(bad)
