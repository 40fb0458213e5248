"""CA set-up: key generation in the token, CSR, and the checks on ``ca import``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from station.domain.errors import (
    CaNotReadyError,
    ChainRejectedError,
    KeyExistsError,
    KeyTokenMissingError,
)
from tests.support.ca import NOW, CaRig, device_csr, openssl_verify

PEM = serialization.Encoding.PEM


class OfflineRoot:
    """An offline root with an in-memory key: what the company's root ceremony would produce."""

    def __init__(self, name: str = "Test Offline Root") -> None:
        self.key = ec.generate_private_key(ec.SECP384R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
            )
            .add_extension(ski, critical=False)
            .sign(self.key, hashes.SHA384())
        )

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(PEM)

    def sign_intermediate(
        self,
        csr_pem: str,
        *,
        ca: bool = True,
        path_length: int | None = 0,
        cert_sign: bool = True,
        not_before_days: int = -1,
        days: int = 1825,
        public_key: object = None,
    ) -> bytes:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        key = public_key or csr.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.cert.subject)
            .public_key(key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW + timedelta(days=not_before_days))
            .not_valid_after(NOW + timedelta(days=days))
            .add_extension(
                x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), True
            )
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, cert_sign, cert_sign, False, False),
                True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), False)  # type: ignore[arg-type]
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        return builder.sign(self.key, hashes.SHA384()).public_bytes(PEM)


@pytest.fixture
def initialised(ca_rig: CaRig) -> CaRig:
    result = ca_rig.service.init(
        ca_rig.key_uri(),
        algorithm="ec-p384",
        common_name="Line 3 CA",
        organization="ACME",
        operator="root",
    )
    assert result.key.backend == "pkcs11" and not result.key.extractable and result.key.sensitive
    csr = x509.load_pem_x509_csr(result.csr_pem.encode())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "O=ACME,CN=Line 3 CA"
    assert ca_rig.admin.pending_csr() == result.csr_pem
    return ca_rig


def test_import_accepts_a_proper_intermediate_and_issues(
    initialised: CaRig, tmp_path: Path
) -> None:
    root = OfflineRoot()
    service = initialised.service
    result = service.import_chain(
        root.sign_intermediate(initialised.admin.pending_csr()), root.pem, operator="root"
    )
    assert result.certificate.subject == "O=ACME,CN=Line 3 CA"
    assert result.warnings == ()
    status = service.status()
    assert status.certificate is not None and status.certificate.path_length == 0
    assert status.key is not None and status.key.algorithm == "ec-p384"
    assert status.issued == 0
    issued = service.issue(device_csr("dev-1"), "dev-1", operator="root")
    openssl_verify(tmp_path, root.pem, issued.chain_pem, issued.certificate.pem)
    assert service.status().issued == 1


def _pending(ca_rig: CaRig) -> str:
    return ca_rig.admin.pending_csr()


CASES = {
    "not_ca": ({"ca": False}, "not_ca"),
    "path_length_1": ({"path_length": 1}, "path_length"),
    "path_length_unlimited": ({"path_length": None}, "path_length"),
    "no_key_cert_sign": ({"cert_sign": False}, "no_key_cert_sign"),
    "expired": ({"not_before_days": -30, "days": -1}, "expired"),
    "not_yet_valid": ({"not_before_days": 2}, "not_yet_valid"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_import_refuses_an_unfit_intermediate(initialised: CaRig, case: str) -> None:
    options, reason = CASES[case]
    root = OfflineRoot()
    chain = root.sign_intermediate(_pending(initialised), **options)  # type: ignore[arg-type]
    with pytest.raises(ChainRejectedError) as info:
        initialised.service.import_chain(chain, root.pem, operator="root")
    assert info.value.details["reason"] == reason
    assert not initialised.admin.chain_file.exists()  # nothing installed


def test_import_refuses_a_certificate_for_another_key(initialised: CaRig) -> None:
    root = OfflineRoot()
    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    chain = root.sign_intermediate(_pending(initialised), public_key=other)
    with pytest.raises(ChainRejectedError) as info:
        initialised.service.import_chain(chain, root.pem, operator="root")
    assert info.value.details["reason"] == "key_mismatch"


def test_import_refuses_a_chain_to_another_root(initialised: CaRig) -> None:
    signed_by = OfflineRoot("Root A")
    claimed = OfflineRoot("Root B")
    with pytest.raises(ChainRejectedError) as info:
        initialised.service.import_chain(
            signed_by.sign_intermediate(_pending(initialised)), claimed.pem, operator="root"
        )
    assert info.value.details["reason"] == "untrusted"


def test_import_warns_when_expiry_is_near(initialised: CaRig) -> None:
    root = OfflineRoot()
    result = initialised.make(expiry_warning_days=30).import_chain(
        root.sign_intermediate(_pending(initialised), days=10), root.pem, operator="root"
    )
    assert len(result.warnings) == 1 and "expires in" in result.warnings[0]


def test_import_refuses_garbage_and_works_with_root_in_the_chain_file(initialised: CaRig) -> None:
    root = OfflineRoot()
    with pytest.raises(ChainRejectedError) as info:
        initialised.service.import_chain(b"not a certificate", root.pem, operator="root")
    assert info.value.details["reason"] == "malformed"
    bundle = root.sign_intermediate(_pending(initialised)) + root.pem
    initialised.service.import_chain(bundle, root.pem, operator="root")
    assert initialised.admin.chain_file.read_bytes().count(b"BEGIN CERTIFICATE") == 1


def test_lifecycle_order_is_enforced(ca_rig: CaRig) -> None:
    service = ca_rig.service
    status = service.status()
    assert (status.key_uri, status.key, status.certificate, status.pending_csr) == (
        "",
        None,
        None,
        False,
    )
    with pytest.raises(CaNotReadyError):
        service.import_chain(b"", OfflineRoot().pem, operator="root")
    with pytest.raises(CaNotReadyError):
        service.lab_root(operator="root")
    with pytest.raises(CaNotReadyError):
        service.issue(device_csr("dev-1"), "dev-1", operator="root")
    service.init(ca_rig.key_uri(), common_name="CA", operator="root")
    with pytest.raises(CaNotReadyError) as info:
        service.issue(device_csr("dev-1"), "dev-1", operator="root")
    assert "ca import" in info.value.remedy
    with pytest.raises(KeyExistsError):
        service.init(ca_rig.key_uri(), common_name="CA", operator="root")


def test_status_reports_a_missing_token_instead_of_crashing(ca_rig: CaRig) -> None:
    service = ca_rig.make()
    service.init(ca_rig.key_uri(), common_name="CA", operator="root")
    from station.adapters.ca.admin import FileCaAdministration

    admin = FileCaAdministration(
        ca_rig.ca_dir,
        configured_uri="pkcs11:token=unplugged;object=station-ca",
        pin_source=ca_rig.pins,
    )
    status = ca_rig.make(admin=admin, authority=admin.open_authority).status()
    assert status.key is None and "unplugged" in status.key_error
    with pytest.raises(KeyTokenMissingError):
        admin.describe_key(admin.key_uri())


def test_tpm_held_ca_key_issues_verifiable_certificates(
    ca_rig: CaRig, swtpm: str, tmp_path: Path
) -> None:
    service = ca_rig.service
    init = service.init(
        f"tpm:0x81000020?tcti={swtpm}", common_name="TPM Station CA", operator="root"
    )
    assert init.key.backend == "tpm" and not init.key.extractable
    root = OfflineRoot()
    service.import_chain(
        root.sign_intermediate(ca_rig.admin.pending_csr()), root.pem, operator="root"
    )
    issued = service.issue(device_csr("dev-tpm"), "dev-tpm", operator="root")
    openssl_verify(tmp_path, root.pem, issued.chain_pem, issued.certificate.pem)
    service.close()


def test_the_documented_openssl_ceremony_produces_an_importable_intermediate(
    initialised: CaRig, tmp_path: Path
) -> None:
    import subprocess

    ext = Path(__file__).resolve().parents[2] / "hsm" / "ceremony" / "intermediate.ext"
    (tmp_path / "ica.csr").write_text(initialised.admin.pending_csr())

    def run(*argv: str) -> None:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr

    run(
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384",
        "-nodes", "-keyout", "root.key", "-out", "root.pem", "-subj", "/CN=Ceremony Root",
        "-days", "3650", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    run(
        "openssl", "x509", "-req", "-in", "ica.csr", "-CA", "root.pem", "-CAkey", "root.key",
        "-days", "1825", "-sha256", "-set_serial", "0x1f2e3d4c5b6a79881f2e3d4c5b6a7988",
        "-extfile", str(ext), "-extensions", "station_ica", "-out", "ica.pem",
    )  # fmt: skip
    root_pem = (tmp_path / "root.pem").read_bytes()
    service = initialised.service
    service.import_chain((tmp_path / "ica.pem").read_bytes(), root_pem, operator="root")
    issued = service.issue(device_csr("dev-ceremony"), "dev-ceremony", operator="root")
    openssl_verify(tmp_path, root_pem, issued.chain_pem, issued.certificate.pem)


def test_a_malformed_key_uri_is_a_station_error(ca_rig: CaRig) -> None:
    from station.domain.errors import KeyCustodyError

    with pytest.raises(KeyCustodyError) as info:
        ca_rig.service.init(
            "pkcs11:token=x;object=k?pin-value=1234", common_name="CA", operator="root"
        )
    assert "pin-value" in info.value.message
    assert info.value.details["hsm_code"] == "hsm.invalid_uri"


def test_group_key_import_is_admin_only_and_audited_without_the_key(ca_rig: CaRig) -> None:
    import base64

    from station.domain.errors import PermissionDeniedError, ValidationError

    text = base64.b64encode(b"k" * 32).decode()
    with pytest.raises(PermissionDeniedError):
        ca_rig.service.import_group_key(ca_rig.token.uri("g"), text, operator="tina")
    with pytest.raises(ValidationError):
        ca_rig.service.import_group_key(
            ca_rig.token.uri("g"), base64.b64encode(b"short").decode(), operator="root"
        )
    key = ca_rig.service.import_group_key(ca_rig.token.uri("g"), text, operator="root")
    assert (key.backend, key.algorithm, key.extractable) == ("pkcs11", "hmac-sha256", False)
    event = list(ca_rig.store.audit.events())[-1]
    assert event.kind == "ca.group_key_imported" and text not in event.payload_json


def test_status_flags_a_lab_root_and_warns_with_the_configured_threshold(ca_rig: CaRig) -> None:
    service = ca_rig.make(expiry_warning_days=4000)
    service.init(ca_rig.key_uri(), common_name="Line 9 CA", operator="root")
    service.lab_root(operator="root")
    status = service.status()
    assert status.lab_root and status.warn_days == 4000
    assert status.certificate is not None
    left = status.expires_within(ca_rig.clock.now())
    assert left is not None and 0 < left < 4000  # a lab intermediate lives less than 4000 days
    assert ca_rig.make(expiry_warning_days=1).status().expires_within(ca_rig.clock.now()) is None


def test_status_of_an_offline_root_chain_is_not_a_lab_root(initialised: CaRig) -> None:
    root = OfflineRoot()
    initialised.service.import_chain(
        root.sign_intermediate(initialised.admin.pending_csr()), root.pem, operator="root"
    )
    assert not initialised.service.status().lab_root


def test_chain_lists_the_intermediate_then_the_root_without_opening_the_key(
    initialised: CaRig,
) -> None:
    assert initialised.service.chain() == ()
    root = OfflineRoot()
    initialised.service.import_chain(
        root.sign_intermediate(initialised.admin.pending_csr()), root.pem, operator="root"
    )
    intermediate, top = initialised.make().chain()
    assert intermediate.subject == "O=ACME,CN=Line 3 CA" and intermediate.is_ca
    assert top.self_issued and intermediate.issuer == top.subject
    assert top.not_before <= intermediate.not_before < intermediate.not_after <= top.not_after


def _token_objects(ca_rig: CaRig) -> dict[str, bytes]:
    """The token's objects as SoftHSM2 stores them (one file each), by content."""
    tokens = ca_rig.token.conf.parent / "tokens"
    return {str(p.relative_to(tokens)): p.read_bytes() for p in sorted(tokens.rglob("*.object"))}


def _ca_files(ca_rig: CaRig) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(ca_rig.ca_dir.rglob("*")) if p.is_file()}


def test_only_an_admin_sets_up_the_ca_and_a_refusal_changes_nothing(ca_rig: CaRig) -> None:
    from station.domain.errors import PermissionDeniedError

    service = ca_rig.service
    untouched = (_token_objects(ca_rig), _ca_files(ca_rig))
    with pytest.raises(PermissionDeniedError) as refused:
        service.init(ca_rig.key_uri(), common_name="CA", operator="tina")
    assert refused.value.message == "tina is technician; to generate the CA key you must be admin"
    assert (_token_objects(ca_rig), _ca_files(ca_rig)) == untouched
    service.init(ca_rig.key_uri(), common_name="CA", operator="root")
    root = OfflineRoot()
    chain = root.sign_intermediate(_pending(ca_rig))
    before = (_token_objects(ca_rig), _ca_files(ca_rig), list(ca_rig.store.audit.events()))
    attempts = {
        "import the CA chain": lambda: service.import_chain(chain, root.pem, operator="tina"),
        "sign the CA with a lab root": lambda: service.lab_root(operator="tina"),
    }
    for action, attempt in attempts.items():
        with pytest.raises(PermissionDeniedError) as refused:
            attempt()
        assert refused.value.message == f"tina is technician; to {action} you must be admin"
        assert refused.value.details["role"] == "technician"
        # no lab root key in the token, no chain installed, no audit event
        assert (_token_objects(ca_rig), _ca_files(ca_rig), list(ca_rig.store.audit.events())) == (
            before
        )
    assert service.lab_root(operator="root").certificate.subject == "CN=CA"
