"""docs/board-protocol.cddl against real frames: what the station sends in a real session, and
what the Python and the C board answer to the same request bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from station.adapters.board.conformance import Probe
from station.adapters.board.session import BoardSession
from station.adapters.board.transport import SerialTransport
from station.protocol.framing import BadFrame, FrameDecoder, encode_frame
from station.protocol.messages import Request, encode_request
from station_lab.boards.runner import LabBoards
from tests.protocol.cddl import conforms, validate
from tests.support.board_script import GET_RANDOM_8, comparable_fields, request_script


def test_the_cddl_refuses_what_the_spec_refuses() -> None:
    good = {"seq": 7, "op": "write", "args": {"name": "dps", "data": b"x"}}
    assert conforms(cbor2.dumps(good), "request")
    assert not conforms(cbor2.dumps({**good, "seq": 0}), "request")
    assert not conforms(cbor2.dumps({**good, "extra": 1}), "request")
    assert not conforms(cbor2.dumps({**good, "args": {"name": "dps"}}), "request")
    assert not conforms(cbor2.dumps({**good, "args": {**good["args"], "x": 1}}), "request")
    assert not conforms(
        cbor2.dumps({"seq": 1, "op": "tpm", "args": {"cmd": bytes(4097)}}), "request"
    )
    assert conforms(cbor2.dumps({"seq": 0, "st": 1, "msg": "bad_crc"}), "response")
    assert not conforms(cbor2.dumps({"seq": 0, "st": 0, "msg": "x"}), "response")
    assert not conforms(cbor2.dumps({"seq": 3, "st": 0, "res": {"gen": 1.5}}), "write-response")
    assert not conforms(cbor2.dumps({"seq": 3, "st": 0, "res": {"locked": False}}), "lock-response")
    dps = {"endpoint": "global.azure-devices-provisioning.net", "scope": "0ne0", "rid": "r"}
    assert conforms(cbor2.dumps(dps), "dps-object")
    assert not conforms(cbor2.dumps({"endpoint": "e", "scope": "s"}), "dps-object")


@dataclass
class Recorder:
    """A transport that keeps every byte in both directions (a session over it is real)."""

    inner: SerialTransport
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)

    @property
    def url(self) -> str:
        return self.inner.url

    @property
    def bytes_in(self) -> int:
        return self.inner.bytes_in

    @property
    def bytes_out(self) -> int:
        return self.inner.bytes_out

    def write(self, data: bytes) -> None:
        self.sent += data
        self.inner.write(data)

    def read(self, deadline: float) -> bytes:
        data = self.inner.read(deadline)
        self.received += data
        return data

    def discard_input(self) -> None:
        self.inner.discard_input()

    def close(self) -> None:
        self.inner.close()


def _payloads(stream: bytes) -> list[bytes]:
    items = FrameDecoder().feed(stream)
    assert not [i for i in items if isinstance(i, BadFrame)]
    return [i for i in items if isinstance(i, bytes)]


@pytest.mark.parametrize("lab", ["python", "c"], indirect=True)
def test_a_real_session_is_valid_cddl_both_ways(lab: LabBoards) -> None:
    se, nokey, tpm = lab.start(1, "se") + lab.start(1, "nokey") + lab.start(1, "tpm")
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    dps = cbor2.dumps({"endpoint": "global.example", "scope": "0ne0", "rid": "dev-1"})
    for board, work in (
        (
            se,
            lambda s: (
                s.keygen(),
                s.csr("dev-1"),
                s.sign(b"nonce"),
                s.keygen(key="operational", curve="p384"),
                s.csr("dev-1", key="operational"),
            ),
        ),
        (nokey, lambda s: (s.write("privkey", key), s.csr("dev-2"), s.sign(b"nonce"))),
        (tpm, lambda s: s.tpm(GET_RANDOM_8)),
    ):
        recorder = Recorder(SerialTransport(board.port, 115_200))
        session = BoardSession(recorder, timeout_s=5.0, slow_timeout_s=30.0)
        try:
            session.hello()
            work(session)
            session.write("cert_chain", b"\x30\x00")
            session.write("dps", dps)
            session.write("symkey", bytes(32))
            session.read("cert_chain")
            session.read("symkey")
            session.lock()
            session.request("reset", {})
        finally:
            session.close()
        requests = _payloads(bytes(recorder.sent))
        answers = _payloads(bytes(recorder.received))
        assert len(requests) == len(answers) >= 9
        for request, answer in zip(requests, answers, strict=True):
            op = cbor2.loads(request)["op"]
            validate(request, "request")
            validate(answer, f"{op}-response")
            assert cbor2.loads(answer)["st"] == 0


# -------------------------------------------------------------------- the same bytes to both


@pytest.fixture
def boards(tmp_path: Path) -> Iterator[dict[str, LabBoards]]:
    labs = {fw: LabBoards(tmp_path / fw, baud=0, firmware=fw) for fw in ("python", "c")}
    try:
        yield labs
    finally:
        for runner in labs.values():
            runner.stop()


@pytest.mark.parametrize("kind", ["se", "nokey", "tpm"])
def test_python_and_c_boards_answer_the_same_bytes_alike(
    boards: dict[str, LabBoards], kind: str
) -> None:
    probes = {}
    for firmware, runner in boards.items():
        (board,) = runner.start(1, kind)
        probes[firmware] = Probe(
            SerialTransport(board.port, 115_200), timeout_s=5.0, slow_timeout_s=30.0
        )
    try:
        frames: list[bytes] = [
            encode_request(Request(100 + n, op, args))
            for n, (op, args) in enumerate(request_script(kind))
        ]
        frames.append(b"\x01")  # not a map: malformed, seq 0
        for payload in frames:
            answers = {}
            for firmware, probe in probes.items():
                probe.exchange_payload(payload, slow=True)
                raw = probe.last_payload
                op = cbor2.loads(payload)["op"] if payload != b"\x01" else "hello"
                rule = f"{op}-response" if op != "format" else "response"
                validate(raw, rule)
                answers[firmware] = cbor2.loads(raw)
            assert comparable_fields(answers["python"]) == comparable_fields(answers["c"]), (
                cbor2.loads(payload)
            )
        # a frame with a wrong CRC: the same NAK from both
        naks = {}
        for firmware, probe in probes.items():
            probe.discard()
            bad = bytearray(encode_frame(frames[0]))
            bad[-2] ^= 0x01
            probe.send_wire(b"\x00" + bytes(bad))
            probe.expect_answer()
            validate(probe.last_payload, "response")
            naks[firmware] = probe.last_payload
        assert naks["python"] == naks["c"]
    finally:
        for probe in probes.values():
            probe.transport.close()


def test_c_answers_are_canonical_cbor(boards: dict[str, LabBoards]) -> None:
    (board,) = boards["c"].start(1, "se")
    probe = Probe(SerialTransport(board.port, 115_200), timeout_s=5.0, slow_timeout_s=30.0)
    try:
        for n, (op, args) in enumerate(request_script("se")):
            probe.exchange_payload(encode_request(Request(10 + n, op, args)), slow=True)
            raw = probe.last_payload
            assert raw == cbor2.dumps(cbor2.loads(raw), canonical=True), op
        assert hashlib.sha256(raw).digest()  # the last answer was read
    finally:
        probe.transport.close()
