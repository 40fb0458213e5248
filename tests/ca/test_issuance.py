"""Issuing device certificates with a real SoftHSM2 key: chain, content, policy, log, quota."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from hsm.softhsm import delete_token
from station.domain.certificates import SERIAL_BYTES, SubjectContext
from station.domain.errors import (
    CsrRejectedError,
    InvalidRegistrationIdError,
    KeyPinError,
    KeyTokenRemovedError,
    PermissionDeniedError,
    QuotaExceededError,
    StoreError,
)
from station.domain.records import BatchRecord
from tests.support.ca import CaRig, device_csr, openssl_verify


def _root_pem(ca_rig: CaRig) -> bytes:
    return ca_rig.admin.root_file.read_bytes()


def test_issued_certificate_chains_to_the_root_with_openssl(ready: CaRig, tmp_path: Path) -> None:
    issued = ready.service.issue(device_csr("Dev-0001"), "Dev-0001", operator="root")
    out = openssl_verify(
        tmp_path,
        _root_pem(ready),
        issued.chain_pem,
        issued.certificate.pem,
        "-purpose",
        "sslclient",
    )
    assert out.strip().endswith(": OK")
    assert issued.registration_id == "dev-0001"
    record = ready.store.certificates.get(issued.certificate.serial_hex)
    assert record is not None and record.certificate_pem == issued.certificate.pem
    assert record.status == "issued" and record.profile == "device-identity"
    assert [e.kind for e in list(ready.store.audit.events())][-1] == "ca.certificate_issued"


def test_certificate_follows_rfc5280_and_the_profile(ready: CaRig) -> None:
    device_key = ec.generate_private_key(ec.SECP384R1())
    issued = ready.service.issue(
        device_csr("dev-0002", key=device_key),
        "dev-0002",
        context=SubjectContext(organization="ACME", product="thermo", batch="WO-1"),
        operator="root",
    )
    cert = x509.load_pem_x509_certificate(issued.certificate.pem.encode())
    ica = x509.load_pem_x509_certificate(ready.admin.chain_file.read_bytes())
    assert cert.version is x509.Version.v3
    assert 1 << 64 <= cert.serial_number < 1 << 159  # positive, >= 64 bits, fits 20 octets
    assert cert.subject.rfc4514_string() == "OU=thermo,O=ACME,CN=dev-0002"
    assert cert.issuer == ica.subject
    assert cert.public_key() == device_key.public_key()
    cert.verify_directly_issued_by(ica)
    exts = {e.oid: e for e in cert.extensions}
    assert set(exts) == {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    }
    bc = exts[ExtensionOID.BASIC_CONSTRAINTS]
    assert bc.critical and bc.value.ca is False and bc.value.path_length is None
    ku = exts[ExtensionOID.KEY_USAGE]
    assert ku.critical and ku.value.digital_signature
    assert not (ku.value.key_cert_sign or ku.value.crl_sign or ku.value.key_encipherment)
    eku = exts[ExtensionOID.EXTENDED_KEY_USAGE]
    assert not eku.critical and list(eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ski = exts[ExtensionOID.SUBJECT_KEY_IDENTIFIER]
    assert not ski.critical
    assert ski.value == x509.SubjectKeyIdentifier.from_public_key(device_key.public_key())
    aki = exts[ExtensionOID.AUTHORITY_KEY_IDENTIFIER]
    ica_ski = ica.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert not aki.critical and aki.value.key_identifier == ica_ski.digest
    assert aki.value.authority_cert_issuer is None
    assert (
        issued.certificate.thumbprint_sha256
        == hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    )
    assert cert.not_valid_before_utc < ready.clock.current
    assert cert.not_valid_after_utc <= ica.not_valid_after_utc  # never outlives the CA


def test_what_the_csr_asks_for_besides_its_key_is_ignored(ready: CaRig) -> None:
    csr = device_csr(
        "dev-0003",
        extensions=[
            (
                x509.SubjectAlternativeName([x509.DNSName("evil.example"), x509.DNSName("a.b")]),
                False,
            ),
            (
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CODE_SIGNING]
                ),
                False,
            ),
            (x509.BasicConstraints(ca=False, path_length=None), True),
        ],
        extra_subject=[
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Evil Corp"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
        ],
    )
    cert = x509.load_pem_x509_certificate(
        ready.service.issue(csr, "dev-0003", operator="root").certificate.pem.encode()
    )
    assert cert.subject.rfc4514_string() == "CN=dev-0003"
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def _tampered_signature() -> bytes:
    der = bytearray(
        x509.load_pem_x509_csr(device_csr("dev-0001")).public_bytes(serialization.Encoding.DER)
    )
    der[-5] ^= 0x01  # inside the signature value
    return bytes(der)


def _many_extensions() -> bytes:
    exts = [
        (
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier(f"1.3.6.1.4.1.55555.{i}"), b"\x05\x00"
            ),
            False,
        )
        for i in range(40)
    ]
    return device_csr("dev-0001", extensions=exts)


HOSTILE = {
    "bad_signature": (_tampered_signature, "dev-0001", "bad_signature"),
    "ca_true": (
        lambda: device_csr(
            "dev-0001", extensions=[(x509.BasicConstraints(ca=True, path_length=None), True)]
        ),
        "dev-0001",
        "requests_ca",
    ),
    "key_cert_sign": (
        lambda: device_csr(
            "dev-0001",
            extensions=[
                (
                    x509.KeyUsage(True, False, False, False, False, True, False, False, False),
                    True,
                )
            ],
        ),
        "dev-0001",
        "requests_key_cert_sign",
    ),
    "rsa_1024": (
        lambda: device_csr("dev-0001", key=rsa.generate_private_key(65537, 1024)),
        "dev-0001",
        "weak_key",
    ),
    "p521": (
        lambda: device_csr("dev-0001", key=ec.generate_private_key(ec.SECP521R1())),
        "dev-0001",
        "key_type",
    ),
    "ed25519": (
        lambda: device_csr("dev-0001", key=ed25519.Ed25519PrivateKey.generate()),
        "dev-0001",
        "key_type",
    ),
    "cn_not_a_registration_id": (lambda: device_csr("dev 0001!"), "dev-0001", "invalid_cn"),
    "cn_too_long": (lambda: device_csr("d" * 64 + "x"), "dev-0001", "invalid_cn"),
    "cn_of_another_device": (lambda: device_csr("dev-9999"), "dev-0001", "cn_mismatch"),
    "two_cns": (
        lambda: device_csr(
            "dev-0001", extra_subject=[x509.NameAttribute(NameOID.COMMON_NAME, "dev-0001")]
        ),
        "dev-0001",
        "invalid_cn",
    ),
    "absurd_size": (
        lambda: b"-----BEGIN CERTIFICATE REQUEST-----\n" + b"A" * 20_000,
        "dev-0001",
        "too_large",
    ),
    "too_many_extensions": (_many_extensions, "dev-0001", "too_many_extensions"),
    "garbage": (lambda: b"\x30\x82\x01\x00not a csr", "dev-0001", "malformed"),
    "empty": (lambda: b"", "dev-0001", "empty"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_csrs_are_refused_with_a_precise_reason(ready: CaRig, case: str) -> None:
    make, registration_id, reason = HOSTILE[case]
    events_before = len(list(ready.store.audit.events()))
    with pytest.raises(CsrRejectedError) as info:
        ready.service.issue(make(), registration_id, operator="root")
    assert info.value.details["reason"] == reason
    assert info.value.message.startswith("CSR refused")
    assert ready.store.certificates.count() == 0
    assert len(list(ready.store.audit.events())) == events_before


def test_rsa_2048_device_keys_are_accepted(ready: CaRig, tmp_path: Path) -> None:
    issued = ready.service.issue(
        device_csr("dev-rsa", key=rsa.generate_private_key(65537, 2048)), "dev-rsa", operator="root"
    )
    openssl_verify(tmp_path, _root_pem(ready), issued.chain_pem, issued.certificate.pem)


def test_registration_id_rules_apply_without_a_cn(ready: CaRig) -> None:
    with pytest.raises(InvalidRegistrationIdError) as info:
        ready.service.issue(device_csr(None), "x" * 65, operator="root")
    assert info.value.details["rule"] == "length"
    issued = ready.service.issue(device_csr(None), "dev-no-cn", operator="root")
    assert issued.certificate.subject == "CN=dev-no-cn"


def test_nothing_is_returned_unless_the_log_entry_committed(ready: CaRig) -> None:
    ready.store.fail_commit = True
    with pytest.raises(StoreError):
        ready.service.issue(device_csr("dev-0001"), "dev-0001", operator="root")
    assert ready.store.certificates.count() == 0
    ready.store.fail_commit = False
    issued = ready.service.issue(device_csr("dev-0001"), "dev-0001", operator="root")
    assert ready.store.certificates.get(issued.certificate.serial_hex) is not None


def test_batch_quota_is_batch_size_plus_spare(ready: CaRig) -> None:
    ready.store.batches.save(
        BatchRecord(name="WO-7", product="thermo", size=2, status="open", created_at="2026")
    )
    service = ready.make(quota_spare=1)
    for n in range(3):
        service.issue(device_csr(f"dev-{n}"), f"dev-{n}", batch="WO-7", operator="root")
    with pytest.raises(QuotaExceededError) as info:
        service.issue(device_csr("dev-3"), "dev-3", batch="WO-7", operator="root")
    assert info.value.details == {"batch": "WO-7", "issued": 3, "limit": 3}
    assert ready.store.certificates.count(batch="WO-7") == 3


def test_serials_come_from_injected_randomness_and_never_repeat(ready: CaRig) -> None:
    first = bytes([0x00, 0x01] + [0x11] * (SERIAL_BYTES - 2))
    second = bytes([0x7F] + [0x22] * (SERIAL_BYTES - 1))
    too_small = bytes(SERIAL_BYTES)
    draws = iter([first, first, too_small, second])
    service = ready.make(random_bytes=lambda n: next(draws))
    a = service.issue(device_csr("dev-a"), "dev-a", operator="root")
    b = service.issue(
        device_csr("dev-b"), "dev-b", operator="root"
    )  # draws `first` again: refused, then retried
    assert a.certificate.serial_hex == first.hex().upper()[2:]
    assert b.certificate.serial_hex == second.hex().upper()
    assert ready.store.certificates.get(a.certificate.serial_hex).registration_id == "dev-a"


def test_ca_issue_is_for_admins_only(ready: CaRig) -> None:
    with pytest.raises(PermissionDeniedError):
        ready.service.issue_as_admin(device_csr("dev-1"), "dev-1", operator="tina")
    with pytest.raises(PermissionDeniedError):
        ready.service.issue_as_admin(device_csr("dev-1"), "dev-1", operator="")
    issued = ready.service.issue_as_admin(device_csr("dev-1"), "dev-1", operator="root")
    assert list(ready.store.audit.events())[-1].operator == "root"
    assert issued.registration_id == "dev-1"


def test_verification_certificate_for_dps_proof_of_possession(ready: CaRig, tmp_path: Path) -> None:
    code = "6D8A3F1B2C4E5D7F9A0B1C2D3E4F5A6B7C8D9E0F1A2B3C4D"
    issued = ready.service.verify_code(code, operator="root")
    cert = x509.load_pem_x509_certificate(issued.certificate.pem.encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == code
    openssl_verify(tmp_path, _root_pem(ready), issued.chain_pem, issued.certificate.pem)
    record = ready.store.certificates.get(issued.certificate.serial_hex)
    assert record is not None and record.profile == "dps-verification"
    from station.domain.errors import ValidationError

    with pytest.raises(ValidationError):
        ready.service.verify_code("not a code; rm -rf", operator="root")
    with pytest.raises(PermissionDeniedError):
        ready.service.verify_code(code, operator="tina")


def test_token_removed_mid_run_fails_cleanly_and_logs_nothing(ready: CaRig) -> None:
    service = ready.service
    service.issue(device_csr("dev-1"), "dev-1", operator="root")
    delete_token(ready.token)
    with pytest.raises(KeyTokenRemovedError) as info:
        service.issue(device_csr("dev-2"), "dev-2", operator="root")
    assert info.value.remedy
    assert ready.store.certificates.count() == 1
    # the dead session was dropped: the next attempt tries to open the token again
    from station.domain.errors import KeyTokenMissingError

    with pytest.raises(KeyTokenMissingError):
        service.issue(device_csr("dev-3"), "dev-3", operator="root")


def test_wrong_pin_when_the_ca_opens(ready: CaRig) -> None:
    from hsm import PinSource
    from station.adapters.ca.admin import FileCaAdministration

    admin = FileCaAdministration(
        ready.ca_dir, configured_uri="", pin_source=PinSource(env={"STATION_PKCS11_PIN": "9999"})
    )
    service = ready.make(admin=admin, authority=admin.open_authority)
    with pytest.raises(KeyPinError) as info:
        service.issue(device_csr("dev-1"), "dev-1", operator="root")
    assert "PIN" in info.value.message
    status = service.status()
    assert status.key is None and "PIN" in status.key_error


def test_issue_through_the_real_sqlite_store(softhsm, tmp_path: Path) -> None:
    from station.adapters.store.unit_of_work import SqliteUnitOfWork
    from station.domain.records import OperatorRecord, Role
    from tests.support.ca import build_rig
    from tests.support.clocks import SteadyClock

    db = tmp_path / "station.db"
    store = SqliteUnitOfWork.open(
        db, busy_timeout_ms=5000, backup_dir=tmp_path / "bk", clock=SteadyClock()
    )
    reader = None
    try:
        store.operators.save(
            OperatorRecord(name="root", role=Role.ADMIN, enabled=True, created_at="2026")
        )
        store.batches.save(
            BatchRecord(name="WO-1", product="thermo", size=1, status="open", created_at="2026")
        )
        ca_rig = build_rig(softhsm, store, tmp_path / "ca")
        service = ca_rig.make(quota_spare=0)
        service.init(ca_rig.key_uri(), common_name="Station CA", operator="root")
        service.lab_root(operator="root")
        issued = service.issue_as_admin(device_csr("dev-1"), "dev-1", batch="WO-1", operator="root")
        # another connection sees the entry: it was committed before issue() returned
        reader = SqliteUnitOfWork.open(
            db, busy_timeout_ms=5000, backup_dir=tmp_path / "bk", clock=SteadyClock()
        )
        record = reader.certificates.get(issued.certificate.serial_hex.lower())
        assert record is not None and record.batch == "WO-1"
        kinds = [e.kind for e in reader.audit.events()]
        assert kinds.count("ca.certificate_issued") == 1 and "ca.chain_imported" in kinds
        with pytest.raises(QuotaExceededError):
            service.issue(device_csr("dev-2"), "dev-2", batch="WO-1", operator="root")
        assert reader.certificates.count(batch="WO-1") == 1
        service.close()
    finally:
        store.close()
        if reader is not None:
            reader.close()


def _pkilint(tool: str, *pems: str, tmp_path: Path) -> None:
    """Run pkilint's RFC 5280 linter; any finding at NOTICE level or above fails the test."""
    import subprocess
    import sys

    files = []
    for n, pem in enumerate(pems):
        path = tmp_path / f"lint-{n}.pem"
        path.write_text(pem)
        files.append(str(path))
    exe = Path(sys.executable).parent / tool
    result = subprocess.run(
        [str(exe), "lint", "-s", "NOTICE", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_rfc5280_linter_finds_nothing_in_device_verification_and_ca_certificates(
    ready: CaRig, tmp_path: Path
) -> None:
    device = ready.service.issue(
        device_csr("dev-lint", key=rsa.generate_private_key(65537, 2048)),
        "dev-lint",
        context=SubjectContext(organization="ACME", product="thermo"),
        operator="root",
    )
    verification = ready.service.verify_code("0123456789ABCDEF", operator="root")
    ica = ready.admin.chain_file.read_text()
    root = ready.admin.root_file.read_text()
    for pem in (device.certificate.pem, verification.certificate.pem, ica, root):
        _pkilint("lint_pkix_cert", pem, tmp_path=tmp_path)
    _pkilint("lint_pkix_signer_signee_cert_chain", ica, device.certificate.pem, tmp_path=tmp_path)
    _pkilint("lint_pkix_signer_signee_cert_chain", root, ica, tmp_path=tmp_path)


def test_station_ca_wires_the_real_store_and_closes_the_key(
    station, softhsm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from station.domain.records import OperatorRecord, Role

    monkeypatch.setenv("STATION_PKCS11_PIN", softhsm.pin)
    station.store().operators.save(
        OperatorRecord(name="tester", role=Role.ADMIN, enabled=True, created_at="2026")
    )
    ca = station.ca()
    assert station.ca() is ca  # one CA (one HSM session) per station
    ca.init(softhsm.uri("station-ca"), common_name="Station CA", operator="tester")
    ca.lab_root(operator="tester")
    issued = ca.issue_as_admin(device_csr("dev-1"), "dev-1", operator="tester")
    root = (station.config.data_dir / "ca" / "root.pem").read_bytes()
    openssl_verify(tmp_path, root, issued.chain_pem, issued.certificate.pem)
    assert station.store().certificates.count() == 1
    assert ca.is_open
    station.close()
    assert not ca.is_open  # the HSM session is closed with the station
    assert station.ca() is not ca  # and the next use opens a new one
    station.close()
