"""The station's board session against real virtual boards on ptys (swtpm for tpm boards)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tpm2_pytss import ESAPI
from tpm2_pytss.utils import NVReadEK, create_ek_template

from station.adapters.board.session import BoardSession
from station.domain.errors import BoardReportedError
from station.protocol.messages import Status
from station_lab.boards.faults import Faults
from station_lab.boards.runner import LabBoards
from tests.support.board_tcti import BoardTcti

Connect = Callable[..., BoardSession]
#: The session against both reference firmwares: the Python board and the C agent.
pytestmark = pytest.mark.parametrize("lab", ["python", "c"], indirect=True)


def _status(exc: pytest.ExceptionInfo[BoardReportedError]) -> int:
    return int(exc.value.details["status"])


def test_hello_reports_identity_and_capabilities(lab: LabBoards, connect: Connect) -> None:
    tpm_board, se_board, nokey_board = lab.start(3, "mixed")
    infos = [connect(b.port).hello() for b in (tpm_board, se_board, nokey_board)]
    assert [i.serial for i in infos] == [tpm_board.serial, se_board.serial, nokey_board.serial]
    assert [i.capabilities for i in infos] == [
        ("tpm", "symkey"),
        ("se", "symkey"),
        ("privkey", "symkey"),
    ]
    assert all(i.protocol == 1 and not i.locked and i.max_payload == 8192 for i in infos)


def test_tpm_passthrough_runs_real_commands(lab: LabBoards, connect: Connect) -> None:
    lab.baud = 115_200  # a realistic UART for this one: the EK flow moves ~2.7 KB
    (board,) = lab.start(1, "tpm")
    session = connect(board.port)
    session.hello()
    ectx = ESAPI(BoardTcti(session))
    try:
        first, second = bytes(ectx.get_random(16)), bytes(ectx.get_random(16))
        assert len(first) == 16 and first != second
        # ReadPublic of the persisted EK must be the key the EK certificate (NV) certifies.
        handle = ectx.tr_from_tpmpublic(0x81010001)
        public, _, _ = ectx.read_public(handle)
        cert_der, _ = create_ek_template("EK-RSA2048", NVReadEK(ectx))
        cert = x509.load_der_x509_certificate(cert_der)
        assert public.to_der() == cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    finally:
        ectx.close()
    assert session.stats.retries == 0


def test_tpm_op_rejects_a_command_whose_header_lies(lab: LabBoards, connect: Connect) -> None:
    (board,) = lab.start(1, "tpm")
    session = connect(board.port)
    with pytest.raises(BoardReportedError) as caught:
        session.tpm(bytes.fromhex("8001000000ff0000017b0008"))  # says 255 bytes, has 12
    assert _status(caught) == Status.BAD_ARGS
    assert len(session.tpm(bytes.fromhex("80010000000c0000017b0008"))) == 20  # still serves


def test_secure_element_keygen_csr_and_sign_verify(lab: LabBoards, connect: Connect) -> None:
    (board,) = lab.start(1, "se")
    session = connect(board.port)
    public = serialization.load_der_public_key(session.keygen())
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    csr = x509.load_der_x509_csr(session.csr("device-0001"))
    assert csr.is_signature_valid
    assert csr.public_key() == public
    assert csr.subject.rfc4514_string() == "CN=device-0001"
    nonce = b"station nonce 1234567890abcdef"
    public.verify(session.sign(nonce), nonce, ec.ECDSA(hashes.SHA256()))
    # keygen again without replace keeps the key; with replace makes a different one
    with pytest.raises(BoardReportedError) as caught:
        session.keygen()
    assert _status(caught) == Status.EXISTS
    assert serialization.load_der_public_key(session.keygen(replace=True)) != public


def test_nokey_board_uses_the_injected_key_without_exposing_it(
    lab: LabBoards, connect: Connect
) -> None:
    (board,) = lab.start(1, "nokey")
    session = connect(board.port)
    with pytest.raises(BoardReportedError) as caught:
        session.keygen()
    assert _status(caught) == Status.UNSUPPORTED
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert session.write("privkey", der) == 1
    nonce = b"n" * 32
    key.public_key().verify(session.sign(nonce), nonce, ec.ECDSA(hashes.SHA256()))
    assert x509.load_der_x509_csr(session.csr("dev")).public_key() == key.public_key()
    state = session.read("privkey")
    assert state.data is None and state.sha256 is not None and len(state.sha256) == 32
    with pytest.raises(BoardReportedError) as caught:
        session.write("privkey", b"not a key")
    assert _status(caught) == Status.BAD_ARGS


def test_write_read_and_lock_semantics(lab: LabBoards, connect: Connect) -> None:
    (board,) = lab.start(1, "se")
    session = connect(board.port)
    chain = b"\x30\x82" + b"c" * 2000
    assert session.write("cert_chain", chain) == 1
    assert session.write("cert_chain", chain) == 2  # a *new* request is applied again
    state = session.read("cert_chain")
    assert (state.data, state.generation) == (chain, 2)
    session.write("symkey", b"k" * 32)
    assert session.read("symkey").data is None
    with pytest.raises(BoardReportedError) as caught:
        session.read("dps")
    assert _status(caught) == Status.NOT_FOUND
    with pytest.raises(BoardReportedError) as caught:
        session.write("dps", b"not cbor map")
    assert _status(caught) == Status.BAD_ARGS
    with pytest.raises(BoardReportedError) as caught:
        session.write("dps", b"x" * 2000)
    assert _status(caught) == Status.TOO_LARGE  # the dps object holds 1024 bytes at most
    with pytest.raises(ValueError, match="longer than 6144"):
        session.write("cert_chain", b"x" * 6145)  # a station bug: refused before the wire
    with pytest.raises(BoardReportedError) as caught:
        session.write("nonsense", b"x")
    assert _status(caught) == Status.BAD_ARGS
    session.keygen()
    session.lock()
    session.lock()  # idempotent
    assert session.hello().locked
    for attempt in (
        lambda: session.write("cert_chain", b"new"),
        lambda: session.keygen(replace=True),
        lambda: session.reset(factory=True),
    ):
        with pytest.raises(BoardReportedError) as caught:
            attempt()
        assert _status(caught) == Status.LOCKED
        assert "manufacturing" in caught.value.remedy
    assert session.read("cert_chain").data == chain  # reads and signing still work
    assert session.sign(b"nonce")
    session.reset()  # a soft reset is allowed


def test_factory_reset_erases_objects_and_key_when_unlocked(
    lab: LabBoards, connect: Connect
) -> None:
    (board,) = lab.start(1, "se")
    session = connect(board.port)
    session.keygen()
    session.write("cert_chain", b"abc")
    session.reset(factory=True)
    with pytest.raises(BoardReportedError):
        session.read("cert_chain")
    with pytest.raises(BoardReportedError) as caught:
        session.sign(b"x")
    assert _status(caught) == Status.NOT_FOUND


def test_a_retried_write_is_applied_once(lab: LabBoards, connect: Connect) -> None:
    (board,) = lab.start(1, "se", Faults(mute_once="write"))
    session = connect(board.port, timeout_s=0.5)
    assert session.write("cert_chain", b"chain") == 1
    assert session.stats.retries == 1  # the first answer was lost; the retry got the replay
    assert session.read("cert_chain").generation == 1


def test_wrong_capability_is_reported(lab: LabBoards, connect: Connect) -> None:
    (board,) = lab.start(1, "se")
    session = connect(board.port)
    with pytest.raises(BoardReportedError) as caught:
        session.tpm(bytes.fromhex("80010000000c0000017b0008"))
    assert _status(caught) == Status.UNSUPPORTED
    assert caught.value.code == "board.reported"
