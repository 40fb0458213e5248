"""TPM identity read from lab TPM boards over real ptys, checked against swtpm with tpm2-tools."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from tpm2_pytss import ESAPI
from tpm2_pytss.constants import ESYS_TR

from station.adapters.board.session import BoardSession
from station.adapters.tpm.ek_certs import ek_spki
from station.adapters.tpm.identity import BoardTpmIdentityReader
from station.domain.errors import (
    EkCertificateRejectedError,
    TpmEkAbsentError,
    TpmResidencyError,
)
from station.domain.products import (
    DpsTargetSpec,
    EkCertificateResult,
    ProductAttestation,
    ProductRecipe,
)
from station.domain.tpm import EK_HANDLE, SRK_HANDLE, EkOrigin
from station_lab.boards.faults import Faults
from station_lab.boards.runner import LabBoards
from station_lab.boards.tpm import install_ek_certificate
from station_lab.boards.tpm_faults import LIE_EK_FILE
from tests.support.board_tcti import BoardTcti
from tests.support.deviant_certs import ek_leaf, make_ca, resign
from tests.support.tpm import direct_swtpm, lab_ca_files, service_trusting, tpm2_readpublic

Connect = Callable[..., BoardSession]
Readers = Callable[[BoardSession], BoardTpmIdentityReader]


def product(**overrides: object) -> ProductRecipe:
    values: dict[str, object] = {
        "name": "lab-tpm",
        "attestation": ProductAttestation.TPM,
        "dps": DpsTargetSpec(id_scope="0ne00000001"),
    }
    values.update(overrides)
    return ProductRecipe(**values)  # type: ignore[arg-type]


def independent_registration_id(ek: bytes) -> str:
    # The Azure SDKs' rule, written out again: base32(SHA-256(TPM2B_PUBLIC)), lower, no padding.
    return base64.b32encode(hashlib.sha256(ek).digest()).decode().lower().replace("=", "")


def test_recorded_ek_is_what_tpm2_tools_reads_from_the_same_tpm(
    lab: LabBoards, connect: Connect, readers: Readers, tmp_path: Path
) -> None:
    (board,) = lab.start(1, "tpm")
    reader = readers(connect(board.port))
    result = service_trusting(lab_ca_files(lab)).read_identity(reader, product())

    assert result.origin is EkOrigin.FOUND and result.template == "rsa2048"
    assert result.resident
    assert result.ek_certificate.status is EkCertificateResult.VALID
    assert result.ek_certificate.nv_index == 0x01C00002
    assert result.ek_certificate.vendor == "IBM (software TPM)"
    assert base64.b64decode(result.ek_b64) == result.ek
    assert result.registration_id == independent_registration_id(result.ek)
    assert len(result.registration_id) == 52

    reader.close()
    lab.stop()  # the board saves its TPM state on the way out
    with direct_swtpm(board.state_dir / "tpm") as tcti:
        ek = tpm2_readpublic(tcti, EK_HANDLE, tmp_path / "ek.pub")
        srk = tpm2_readpublic(tcti, SRK_HANDLE, tmp_path / "srk.pub")
    assert ek == result.ek  # byte for byte: what DPS gets is what the device will present
    assert srk == result.srk  # the SRK the station created is persisted


def test_untrusted_ek_certificate_is_blocked_by_the_product(
    lab: LabBoards, connect: Connect, readers: Readers, tmp_path: Path
) -> None:
    (board,) = lab.start(1, "tpm")
    reader = readers(connect(board.port))
    empty = tmp_path / "no-anchors"
    empty.mkdir()
    service = service_trusting([empty])
    with pytest.raises(EkCertificateRejectedError) as caught:
        service.read_identity(reader, product())
    assert caught.value.details["status"] == "untrusted"
    assert "swtpm-localca" in caught.value.message and caught.value.remedy
    # A product that accepts untrusted certificates lets the same board through.
    lenient = product(ek_certificate_blocks=frozenset({EkCertificateResult.MISMATCH}))
    result = service.read_identity(reader, lenient)
    assert result.ek_certificate.status is EkCertificateResult.UNTRUSTED and result.resident


def _evict_ek(session: BoardSession) -> bytes:
    ectx = ESAPI(BoardTcti(session))
    try:
        handle = ectx.tr_from_tpmpublic(EK_HANDLE)
        public, _, _ = ectx.read_public(handle)
        ectx.evict_control(ESYS_TR.OWNER, handle, EK_HANDLE)
        return bytes(public.marshal())
    finally:
        ectx.close()


def test_missing_ek_is_created_and_persisted_only_when_the_product_allows(
    lab: LabBoards, connect: Connect, readers: Readers, tmp_path: Path
) -> None:
    (board,) = lab.start(1, "tpm")
    session = connect(board.port)
    original = _evict_ek(session)
    reader = readers(session)
    service = service_trusting(lab_ca_files(lab))

    with pytest.raises(TpmEkAbsentError) as caught:
        service.read_identity(reader, product())
    assert "0x81010001" in caught.value.message and caught.value.remedy
    with pytest.raises(TpmEkAbsentError):  # still absent: nothing was created
        reader.read_endorsement_key(template="rsa2048", create_if_absent=False)

    created = service.read_identity(reader, product(create_ek_if_absent=True))
    assert created.origin is EkOrigin.CREATED
    # The TCG default template derives the same key from the endorsement seed.
    assert created.ek == original
    assert created.ek_certificate.status is EkCertificateResult.VALID and created.resident
    again = service.read_identity(reader, product(create_ek_if_absent=True))
    assert again.origin is EkOrigin.FOUND and again.ek == created.ek

    reader.close()
    lab.stop()
    with direct_swtpm(board.state_dir / "tpm") as tcti:
        assert tpm2_readpublic(tcti, EK_HANDLE, tmp_path / "ek.pub") == created.ek


def test_ecc_p256_ek_lives_at_0x81010002_with_its_certificate_at_0x01c0000a(
    lab: LabBoards, connect: Connect, readers: Readers, tmp_path: Path
) -> None:
    (board,) = lab.start(1, "tpm")
    session = connect(board.port)
    reader = readers(session)
    rsa = reader.read_endorsement_key(template="rsa2048", create_if_absent=False)
    service = service_trusting(lab_ca_files(lab))
    recipe = product(
        ek_template="ecc-p256",
        create_ek_if_absent=True,
        ek_certificate_blocks=frozenset({EkCertificateResult.MISMATCH}),
    )
    result = service.read_identity(reader, recipe)
    assert result.template == "ecc-p256" and result.origin is EkOrigin.CREATED
    assert result.resident and result.ek != rsa.public
    # The registration ID DPS enrolls is the product's EK's, not the RSA EK's.
    assert result.registration_id == independent_registration_id(result.ek)
    # swtpm_setup certifies RSA 2048 and ECC P-384 EKs only: no certificate for a P-256 EK yet.
    assert result.ek_certificate.status is EkCertificateResult.ABSENT

    # A vendor certificate for it at 0x01c0000a (the TCG low-range ECC index).
    ca = make_ca(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test ECC EK CA")]))
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    public = serialization.load_der_public_key(ek_spki(result.ek))
    leaf = ek_leaf(ca, public, manufacturer="id:49465800")
    reader.close()
    lab.stop()  # the board saves its TPM state and swtpm exits
    install_ek_certificate(board.state_dir / "tpm", 0x01C0000A, resign(leaf, ca))
    board = lab.replug(1)
    again = service_trusting([tmp_path / "ca.pem"]).read_identity(
        readers(connect(board.port)), product(ek_template="ecc-p256")
    )
    assert again.origin is EkOrigin.FOUND and again.ek == result.ek and again.resident
    check = again.ek_certificate
    assert check.status is EkCertificateResult.VALID and check.nv_index == 0x01C0000A
    assert check.vendor == "Infineon" and check.anchor == "CN=Test ECC EK CA"
    lab.stop()
    with direct_swtpm(board.state_dir / "tpm") as tcti:
        assert tpm2_readpublic(tcti, 0x81010002, tmp_path / "ecc.pub") == result.ek
        assert tpm2_readpublic(tcti, EK_HANDLE, tmp_path / "rsa.pub") == rsa.public


def test_high_range_ecc_p384_ek_and_its_certificate(
    lab: LabBoards, connect: Connect, readers: Readers
) -> None:
    (board,) = lab.start(1, "tpm")
    service = service_trusting(lab_ca_files(lab))
    result = service.read_identity(readers(connect(board.port)), product(ek_template="ecc-p384"))
    assert result.template == "ecc-p384" and result.origin is EkOrigin.FOUND
    assert result.resident  # high-range EKs allow credential activation with their user auth
    check = result.ek_certificate
    assert check.status is EkCertificateResult.VALID and check.nv_index == 0x01C00016
    assert result.registration_id == independent_registration_id(result.ek)
    # A product asking for an EK the TPM does not have gets a clear refusal.
    with pytest.raises(TpmEkAbsentError) as caught:
        service.read_identity(readers(connect(board.port)), product(ek_template="rsa3072"))
    assert "no rsa3072 endorsement key at 0x8101001c" in caught.value.message


def test_the_ecc_ek_certificate_vouches_while_dps_enrolls_the_rsa_ek(
    lab: LabBoards, connect: Connect, readers: Readers, tmp_path: Path
) -> None:
    # The RSA EK's certificate comes from a CA the station does not trust; the ECC P-384 EK's
    # certificate (0x01c00016) from one it does. DPS takes RSA EKs only: the RSA EK is enrolled.
    (board,) = lab.start(1, "tpm")
    reader = readers(connect(board.port))
    rsa_ek = reader.read_endorsement_key(template="rsa2048", create_if_absent=False).public
    reader.close()
    unknown = make_ca(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Unknown EK CA")]))
    leaf = ek_leaf(unknown, serialization.load_der_public_key(ek_spki(rsa_ek)))
    lab.stop()  # the board saves its TPM state and swtpm exits
    install_ek_certificate(board.state_dir / "tpm", 0x01C00002, resign(leaf, unknown))
    board = lab.replug(1)
    service = service_trusting(lab_ca_files(lab))

    with pytest.raises(EkCertificateRejectedError):
        service.read_identity(readers(connect(board.port)), product())
    recipe = product(evidence_eks=("ecc-p384",))
    result = service.read_identity(readers(connect(board.port)), recipe)
    assert result.ek == rsa_ek and result.template == "rsa2048" and result.resident
    assert result.registration_id == independent_registration_id(rsa_ek)
    check = result.ek_certificate
    assert check.status is EkCertificateResult.VALID
    assert check.nv_index == 0x01C00016 and check.ek_template == "ecc-p384"


def test_board_lying_about_its_ek_fails_the_residency_proof(
    lab: LabBoards, connect: Connect, readers: Readers
) -> None:
    (honest,) = lab.start(1, "tpm")
    service = service_trusting(lab_ca_files(lab))
    genuine = service.read_identity(readers(connect(honest.port)), product())
    # The next board replays the honest board's EK when asked for 0x81010001.
    liar_dir = lab.lab_dir / "boards" / "board-2"
    liar_dir.mkdir(parents=True)
    (liar_dir / LIE_EK_FILE).write_bytes(genuine.ek)
    (liar,) = lab.start(1, "tpm", Faults(lie_ek=True))
    reader = readers(connect(liar.port))

    claimed = service.identify(reader)
    assert claimed.ek == genuine.ek  # the lie is convincing at the EK level...
    assert claimed.ek_certificate.status is EkCertificateResult.MISMATCH  # ...its cert is its own
    assert not claimed.resident
    blocks_nothing = product(ek_certificate_blocks=frozenset())
    with pytest.raises(TpmResidencyError) as caught:
        service.admit(claimed, blocks_nothing)
    assert caught.value.details["registration_id"] == genuine.registration_id
    assert "suspect" in caught.value.remedy
    # The reader is still usable: the honest answer for its own EK handle proves nothing new.
    assert not reader.prove_residency(genuine.ek)


def test_residency_is_proved_with_or_without_the_srk_to_bind_the_credential_to(
    lab: LabBoards, connect: Connect
) -> None:
    (board,) = lab.start(1, "tpm")
    session = connect(board.port)
    reader = BoardTpmIdentityReader(session, port=board.port)
    try:
        ek = reader.read_endorsement_key(template="rsa2048", create_if_absent=False).public
        sent = session.stats.requests
        assert reader.prove_residency(ek)  # no SRK yet: a throw-away object, flushed after
        without_srk = session.stats.requests - sent
        reader.ensure_storage_root_key()
        sent = session.stats.requests
        assert reader.prove_residency(ek)  # bound to the SRK: no object to make and flush
        assert session.stats.requests - sent == without_srk - 2
    finally:
        reader.close()
