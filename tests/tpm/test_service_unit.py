"""The TPM identity service's policy, with fake ports (fast; the real ones are tested on lab boards)."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, datetime

import pytest

from station.domain.errors import EkCertificateRejectedError, TpmResidencyError, ValidationError
from station.domain.products import (
    DpsTargetSpec,
    EkCertificateResult,
    ProductAttestation,
    ProductRecipe,
)
from station.domain.registration import tpm_registration_id
from station.domain.tpm import EkCertificateCheck, vendor_name
from station.services.tpm_identity import TpmIdentityService
from tests.tpm.fakes import EK, FakeReader


class FakeVerifier:
    """Maps certificate bytes to a status (the bytes *are* the status name)."""

    def check(
        self,
        certificate: bytes | None,
        *,
        ek: bytes | None,
        now: datetime,
        nv_index: int | None = None,
    ) -> EkCertificateCheck:
        status = (
            EkCertificateResult(certificate.decode()) if certificate else EkCertificateResult.ABSENT
        )
        return EkCertificateCheck(status=status, nv_index=nv_index, vendor="Acme")


class Clock:
    def now(self) -> datetime:
        return datetime(2026, 11, 26, tzinfo=UTC)


def recipe(**overrides: object) -> ProductRecipe:
    values: dict[str, object] = {
        "name": "thermo",
        "attestation": ProductAttestation.TPM,
        "dps": DpsTargetSpec(id_scope="0ne00000001"),
    }
    values.update(overrides)
    return ProductRecipe(**values)  # type: ignore[arg-type]


def service() -> TpmIdentityService:
    return TpmIdentityService(FakeVerifier(), clock=Clock())


def test_identity_carries_the_ek_and_its_registration_id() -> None:
    reader = FakeReader(certificates=[(0x01C00002, b"valid")])
    result = service().read_identity(reader, recipe(create_ek_if_absent=True))
    assert result.ek == EK and result.registration_id == tpm_registration_id(EK)
    assert result.registration_id == "sizmf6sllrqe4op4wm576nl26la72rssxmf7i7oag2fbuy7uvbaq"
    assert result.srk == b"srk" and result.resident
    assert result.ek_certificate.status is EkCertificateResult.VALID
    assert reader.calls == ["ek:rsa2048:True", "srk", "certs:rsa2048", "proof"]


def test_failed_residency_blocks_even_with_a_valid_certificate() -> None:
    reader = FakeReader(certificates=[(0x01C00002, b"valid")], resident=False)
    with pytest.raises(TpmResidencyError) as caught:
        service().read_identity(reader, recipe(ek_certificate_blocks=frozenset()))
    assert caught.value.details["ek_certificate"] == "valid"


@pytest.mark.parametrize("status", list(EkCertificateResult))
def test_the_product_decides_which_results_block(status: EkCertificateResult) -> None:
    data = [] if status is EkCertificateResult.ABSENT else [(0x01C00002, status.value.encode())]
    blocked = frozenset({status})
    if status is EkCertificateResult.VALID:
        blocked = frozenset()
    with pytest.raises(EkCertificateRejectedError) if blocked else nullcontext():
        service().read_identity(
            FakeReader(certificates=data), recipe(ek_certificate_blocks=blocked)
        )
    # The same result passes a product that does not block it.
    result = service().read_identity(
        FakeReader(certificates=data), recipe(ek_certificate_blocks=frozenset())
    )
    assert result.ek_certificate.status is status


def test_best_of_several_nv_certificates_wins() -> None:
    reader = FakeReader(certificates=[(0x01C00002, b"mismatch"), (0x01C00012, b"valid")])
    result = service().identify(reader)
    assert result.ek_certificate.status is EkCertificateResult.VALID
    assert result.ek_certificate.nv_index == 0x01C00012


def test_an_evidence_ek_can_vouch_for_the_tpm_but_the_enrolled_ek_stays_the_identity() -> None:
    ecc = b"ecc-p384 public area"
    reader = FakeReader(
        certificates=[(0x01C00002, b"untrusted")],
        others={"ecc-p384": (ecc, [(0x01C00016, b"valid")], True)},
    )
    plain = service().identify(reader)
    assert plain.ek_certificate.status is EkCertificateResult.UNTRUSTED
    result = service().identify(reader, evidence=("ecc-p384", "rsa3072"))  # no rsa3072 EK
    assert result.ek_certificate.status is EkCertificateResult.VALID
    assert result.ek_certificate.nv_index == 0x01C00016
    assert result.ek_certificate.ek_template == "ecc-p384"
    assert result.ek == EK and result.registration_id == tpm_registration_id(EK)
    assert "ek:rsa3072:False" in reader.calls  # looked for, never created


def test_an_evidence_ek_the_tpm_does_not_hold_stops_the_board() -> None:
    reader = FakeReader(
        certificates=[(0x01C00002, b"untrusted")],
        others={"ecc-p384": (b"copied public area", [(0x01C00016, b"valid")], False)},
    )
    with pytest.raises(TpmResidencyError) as caught:
        service().identify(reader, evidence=("ecc-p384",))
    assert caught.value.details["evidence_ek"] == "ecc-p384"


def test_unknown_or_repeated_evidence_eks_are_refused_when_the_product_is_loaded() -> None:
    with pytest.raises(ValidationError, match="evidence_eks ecc-p999 unknown"):
        recipe(evidence_eks=("ecc-p999",))
    with pytest.raises(ValidationError, match="repeats the enrolled EK rsa2048"):
        recipe(evidence_eks=("rsa2048",))


def test_vendor_names() -> None:
    assert vendor_name("id:4E544300") == "Nuvoton"
    assert vendor_name("53544d20") == "STMicroelectronics"
    assert vendor_name("id:12345678") == "12345678"


def test_step_by_step_checks_apply_the_same_policy_as_read_identity() -> None:
    """Provisioning runs the checks one persisted step at a time; the verdicts must not drift."""
    ek = EK
    reader = FakeReader(
        certificates=[(0x01C00002, b"untrusted"), (0x01C0000A, b"valid")], resident=False
    )
    tpm = service()
    check = tpm.best_certificate(reader, "rsa2048", ek)
    assert check.status is EkCertificateResult.VALID  # the best of both NV ranges
    tpm.admit_certificate(check, recipe(), registration_id="rid-1")  # valid: admitted
    untrusted = tpm.best_certificate(FakeReader(certificates=[(0x01C00002, b"untrusted")]), "", ek)
    with pytest.raises(EkCertificateRejectedError) as rejected:
        tpm.admit_certificate(untrusted, recipe(), registration_id="rid-1")
    assert rejected.value.details["registration_id"] == "rid-1"
    with pytest.raises(TpmResidencyError) as caught:
        tpm.require_residency(reader, ek, registration_id="rid-1")
    assert caught.value.details["registration_id"] == "rid-1"
    assert reader.calls == ["certs:rsa2048", "proof"]
