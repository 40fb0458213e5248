"""The pure issuance policy: CSR facts, profiles, plans, serials, quota, intermediate checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from station.domain.certificates import (
    MAX_CSR_BYTES,
    SERIAL_BYTES,
    CertificateFacts,
    CertificateProfile,
    ChainFacts,
    CsrFacts,
    SubjectContext,
    check_csr,
    check_intermediate,
    check_quota,
    plan_issuance,
    plan_verification,
    serial_from_random,
    serial_hex,
)
from station.domain.errors import (
    ChainRejectedError,
    CsrRejectedError,
    InvalidRegistrationIdError,
    QuotaExceededError,
    ValidationError,
)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
GOOD = CsrFacts(
    size=300,
    signature_valid=True,
    key_type="ec",
    curve="secp256r1",
    key_bits=256,
    common_names=("Dev-1",),
    subject_attributes=1,
    extension_oids=(),
    requests_ca=False,
    requests_key_cert_sign=False,
    public_key_der=b"k",
)
PROFILE = CertificateProfile(
    name="p",
    validity_days=365,
    organization="{organization}",
    organizational_unit="{product}/{batch}",
)


def _reason(facts: CsrFacts, reg_id: str = "dev-1") -> str:
    with pytest.raises(CsrRejectedError) as info:
        check_csr(facts, reg_id)
    return str(info.value.details["reason"])


def test_good_csr_returns_the_normalised_registration_id() -> None:
    assert check_csr(GOOD, "DEV-1") == "dev-1"
    assert check_csr(
        replace(GOOD, key_type="rsa", curve="", key_bits=3072, rsa_exponent=65537), "dev-1"
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"size": MAX_CSR_BYTES + 1}, "too_large"),
        ({"signature_valid": False}, "bad_signature"),
        ({"curve": "secp256k1"}, "key_type"),
        ({"key_type": "dsa", "curve": ""}, "key_type"),
        ({"key_type": "rsa", "curve": "", "key_bits": 2047, "rsa_exponent": 65537}, "weak_key"),
        ({"key_type": "rsa", "curve": "", "key_bits": 16384, "rsa_exponent": 65537}, "too_large"),
        ({"key_type": "rsa", "curve": "", "key_bits": 2048, "rsa_exponent": 3}, "weak_key"),
        ({"requests_ca": True}, "requests_ca"),
        ({"requests_key_cert_sign": True}, "requests_key_cert_sign"),
        ({"extension_oids": ("1.2.3",) * 33}, "too_many_extensions"),
        ({"subject_attributes": 17}, "too_many_attributes"),
        ({"common_names": ("a", "b")}, "invalid_cn"),
        ({"common_names": ("-dev",)}, "invalid_cn"),
        ({"common_names": ("dev-2",)}, "cn_mismatch"),
    ],
)
def test_each_policy_rule_has_its_reason(change: dict[str, object], reason: str) -> None:
    assert _reason(replace(GOOD, **change)) == reason  # type: ignore[arg-type]


def test_the_registration_id_itself_must_fit_a_cn() -> None:
    with pytest.raises(InvalidRegistrationIdError):
        check_csr(replace(GOOD, common_names=()), "a" * 65)


def test_serials_are_positive_bounded_and_need_enough_bits() -> None:
    top = serial_from_random(b"\xff" * SERIAL_BYTES)
    assert top == (1 << 127) - 1  # top bit cleared: positive, at most 16 octets of DER content
    assert serial_hex(0xABC) == "0ABC"
    with pytest.raises(ValueError):
        serial_from_random(b"\x00" * SERIAL_BYTES)
    with pytest.raises(ValueError):
        serial_from_random(b"\x01" * 8)


def test_plan_uses_profile_context_backdating_and_ca_expiry() -> None:
    plan = plan_issuance(
        PROFILE,
        "Dev-1",
        serial=1 << 70,
        now=T0,
        ca_not_after=T0 + timedelta(days=30),
        context=SubjectContext(organization="ACME", product="thermo", batch="WO-1"),
    )
    assert plan.subject == (("CN", "dev-1"), ("O", "ACME"), ("OU", "thermo/WO-1"))
    assert plan.not_before == T0 - timedelta(minutes=5)
    assert plan.not_after == T0 + timedelta(days=30)
    bare = plan_issuance(
        PROFILE, "dev-1", serial=1 << 70, now=T0, ca_not_after=T0 + timedelta(days=9999)
    )
    assert bare.subject == (("CN", "dev-1"), ("OU", "/"))
    with pytest.raises(ChainRejectedError):
        plan_issuance(PROFILE, "dev-1", serial=1, now=T0, ca_not_after=T0)


def test_verification_plan_takes_the_code_as_cn_only() -> None:
    plan = plan_verification("ABC123", serial=1 << 70, now=T0, ca_not_after=T0 + timedelta(days=9))
    assert plan.subject == (("CN", "ABC123"),) and plan.not_after == T0 + timedelta(days=9)
    for bad in ("", "a b", "x" * 65, "ÄÖ"):
        with pytest.raises(ValidationError):
            plan_verification(bad, serial=1, now=T0, ca_not_after=T0 + timedelta(days=9))


def test_quota() -> None:
    check_quota(batch="b", issued=11, batch_size=10, spare=2)
    with pytest.raises(QuotaExceededError):
        check_quota(batch="b", issued=12, batch_size=10, spare=2)


def _facts(**change: object) -> CertificateFacts:
    base = CertificateFacts(
        subject="CN=ica",
        issuer="CN=root",
        serial_hex="01",
        not_before=T0 - timedelta(days=1),
        not_after=T0 + timedelta(days=365),
        is_ca=True,
        path_length=0,
        key_cert_sign=True,
        public_key_sha256="00",
        self_issued=False,
        thumbprint_sha256="AA",
    )
    return replace(base, **change)  # type: ignore[arg-type]


def test_intermediate_checks_and_expiry_warning() -> None:
    chain = ChainFacts(_facts(), _facts(subject="CN=root", path_length=None), (), True, True)
    assert check_intermediate(chain, now=T0, warn_days=30).warnings == ()
    soon = replace(chain, root=_facts(subject="CN=root", not_after=T0 + timedelta(days=10)))
    (warning,) = check_intermediate(soon, now=T0, warn_days=30).warnings
    assert "CN=root expires in 10 days" in warning
    bad = replace(chain, chain_verified=False, problem="signature mismatch")
    with pytest.raises(ChainRejectedError) as info:
        check_intermediate(bad, now=T0, warn_days=30)
    assert info.value.details["reason"] == "untrusted"
