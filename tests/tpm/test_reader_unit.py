"""Fast checks of the TPM reader's thread ownership and the TCTI's response framing check."""

from __future__ import annotations

import struct
import threading

import pytest

from station.adapters.tpm.identity import BoardTpmIdentityReader
from station.adapters.tpm.wire import check_response
from station.domain.errors import TpmMalformedResponseError
from tests.support.board_tcti import BoardTcti


class NeverCalled:
    def tpm(self, command: bytes) -> bytes:
        raise AssertionError("no TPM command may be sent")


def test_a_reader_belongs_to_the_thread_that_created_it() -> None:
    reader = BoardTpmIdentityReader(NeverCalled(), port="loop://")
    failures: list[BaseException] = []

    def use() -> None:
        try:
            reader.read_endorsement_key(template="rsa2048", create_if_absent=False)
        except BaseException as exc:
            failures.append(exc)

    worker = threading.Thread(target=use)
    worker.start()
    worker.join(timeout=30)
    assert len(failures) == 1 and isinstance(failures[0], RuntimeError)
    assert "thread" in str(failures[0])


@pytest.mark.parametrize(
    ("response", "problem"),
    [
        (struct.pack(">HII", 0x8001, 10, 0), ""),
        (struct.pack(">HII", 0x8002, 12, 0) + b"\x00\x00", ""),
        (b"\x80\x01\x00", "shorter than a response header"),
        (struct.pack(">HII", 0x8001, 20, 0), "header announces 20 bytes, 10 arrived"),
        (struct.pack(">HII", 0x1234, 10, 0), "unknown response tag"),
    ],
)
def test_response_framing(response: bytes, problem: str) -> None:
    found = check_response(response)
    assert (problem in found) if problem else found == ""


class Truncating:
    def tpm(self, command: bytes) -> bytes:
        return struct.pack(">HII", 0x8001, 398, 0)[:8]


def test_tcti_keeps_the_cause_of_a_malformed_response() -> None:
    tcti = BoardTcti(Truncating())
    with pytest.raises(TpmMalformedResponseError):
        tcti.do_transmit(struct.pack(">HIII", 0x8001, 14, 0x173, 0x81010001))
    assert isinstance(tcti.last_error, TpmMalformedResponseError)
    assert tcti.last_error.details["command_code"] == "0x173"
