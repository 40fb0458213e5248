"""Bring your own root: ``station ca sign-issuing-csr`` signs the issuing-CA CSR a DPS credential
policy generated with the station's root key in the HSM, under the service's rules (ECC, path
length 1, a year left), logged and audited like every issuance."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

import hsm
from hsm.softhsm import SoftHsmToken
from station.adapters.dps.client import open_service_client
from station.cli.main import main
from station.domain.errors import OwnRootRefusedError, PermissionDeniedError
from station_lab.dps import STABLE_API_VERSION, DpsOptions, LocalDps
from station_lab.firstboot import DeviceRegistrationClient, DpsEndpoint
from station_lab.firstboot.credentials import SymmetricKeyCredential
from tests.support.ca import CaRig

LAB_ROOT = "station-lab-root"


def _issuing_csr(key: Any = None, cn: str = "lab-policy issuing CA") -> bytes:
    key = key or ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .sign(key, hashes.SHA384())
        .public_bytes(serialization.Encoding.PEM)
    )


def _root(rig: CaRig, *, path_length: int | None = 1, days: int = 3650, label: str = LAB_ROOT):
    """A root certificate for the HSM key ``label`` with the given path length and lifetime."""
    signer = hsm.open_signer(rig.token.uri(label), pin_source=rig.pins)
    try:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Factory Root")])
        now = rig.clock.now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(signer.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(signer.public_key()), critical=False
            )
            .sign(signer, hashes.SHA256())
        )
    finally:
        signer.close()
    return cert.public_bytes(serialization.Encoding.PEM)


def test_the_root_signs_an_issuing_ca_and_it_is_logged(ready: CaRig) -> None:
    issued = ready.service.sign_issuing_csr(
        _issuing_csr(), root_key_uri=ready.token.uri(LAB_ROOT), operator="root"
    )

    cert = x509.load_pem_x509_certificate(issued.certificate.pem.encode())
    root = x509.load_pem_x509_certificate((ready.ca_dir / "root.pem").read_bytes())
    cert.verify_directly_issued_by(root)
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca and basic.path_length == 0
    assert cert.subject.rfc4514_string() == "CN=lab-policy issuing CA"
    assert cert.not_valid_after_utc <= root.not_valid_after_utc
    record = ready.store.certificates.get(issued.certificate.serial_hex)
    assert record is not None and record.profile == "adr-issuing-ca"
    [event] = [e for e in ready.store.audit.events() if e.kind == "ca.certificate_issued"][-1:]
    assert event.payload["profile"] == "adr-issuing-ca" and event.operator == "root"


@pytest.mark.parametrize(
    ("make_root", "reason"),
    [
        (lambda rig: _root(rig, path_length=None), "path_length"),
        (lambda rig: _root(rig, path_length=0), "path_length"),
        (lambda rig: _root(rig, days=200), "expiring"),
    ],
    ids=["no-path-length", "path-length-0", "200-days-left"],
)
def test_a_root_the_service_refuses_is_refused_before_signing(
    ready: CaRig, make_root: Any, reason: str
) -> None:
    with pytest.raises(OwnRootRefusedError) as caught:
        ready.service.sign_issuing_csr(
            _issuing_csr(),
            root_key_uri=ready.token.uri(LAB_ROOT),
            root_pem=make_root(ready),
            operator="root",
        )
    assert caught.value.details["reason"] == reason
    assert caught.value.remedy


def test_an_rsa_root_is_refused(ready: CaRig) -> None:
    hsm.generate_key(ready.token.uri("rsa-root"), "rsa-3072", pin_source=ready.pins).close()

    with pytest.raises(OwnRootRefusedError) as caught:
        ready.service.sign_issuing_csr(
            _issuing_csr(),
            root_key_uri=ready.token.uri("rsa-root"),
            root_pem=_root(ready, label="rsa-root"),
            operator="root",
        )
    assert caught.value.details["reason"] == "key_type"


def test_a_root_certificate_for_another_key_is_refused(ready: CaRig) -> None:
    hsm.generate_key(ready.token.uri("other-root"), "ec-p256", pin_source=ready.pins).close()

    with pytest.raises(OwnRootRefusedError) as caught:
        ready.service.sign_issuing_csr(
            _issuing_csr(), root_key_uri=ready.token.uri("other-root"), operator="root"
        )
    assert caught.value.details["reason"] == "key_mismatch"


def test_a_bad_issuing_csr_and_a_technician_are_refused(ready: CaRig) -> None:
    csr = _issuing_csr()
    der = x509.load_pem_x509_csr(csr).public_bytes(serialization.Encoding.DER)
    tampered = der[:-4] + bytes([der[-4] ^ 0x01]) + der[-3:]
    uri = ready.token.uri(LAB_ROOT)
    with pytest.raises(OwnRootRefusedError) as caught:
        ready.service.sign_issuing_csr(tampered, root_key_uri=uri, operator="root")
    assert caught.value.details["reason"] == "bad_signature"
    rsa_csr = _issuing_csr(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(OwnRootRefusedError) as caught:
        ready.service.sign_issuing_csr(rsa_csr, root_key_uri=uri, operator="root")
    assert caught.value.details["reason"] == "key_type"
    with pytest.raises(PermissionDeniedError):
        ready.service.sign_issuing_csr(csr, root_key_uri=uri, operator="tina")
    assert not [e for e in ready.store.audit.events() if e.kind == "ca.certificate_issued"]


def test_the_lab_policy_chains_to_the_station_root_end_to_end(
    station_cli: Path,
    softhsm: SoftHsmToken,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tmp = station_cli
    monkeypatch.setenv("STATION_PKCS11_PIN", softhsm.pin)
    ca = ["--operator", "boss", "ca"]
    assert main([*ca, "init", "--key", softhsm.uri("station-ca"), "--json"]) == 0
    assert main([*ca, "lab-root", "--json"]) == 0
    with LocalDps(DpsOptions(state_dir=tmp / "dps", retry_after_s=0.01)) as dps:
        dps.enable_certificate_management("lab-ns", softhsm.uri("adr-root"))
        dps.create_credential_policy("lab-policy", softhsm.uri("adr-ica"))
        csr = dps.registry.policy_csr("lab-policy")
        (tmp / "policy.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        capsys.readouterr()
        argv = ["--operator", "boss", "ca", "sign-issuing-csr", str(tmp / "policy.csr")]
        argv += ["--root-key", softhsm.uri(LAB_ROOT), "--out", str(tmp / "ica.pem"), "--json"]
        assert main(argv) == 0, capsys.readouterr().err
        assert json.loads(capsys.readouterr().out)["profile"] == "adr-issuing-ca"
        root = x509.load_pem_x509_certificate((tmp / "data" / "ca" / "root.pem").read_bytes())
        issuing = x509.load_pem_x509_certificate((tmp / "ica.pem").read_bytes())
        dps.registry.attach_issuing_certificate("lab-policy", issuing, root)
        key = base64.b64encode(b"k" * 32).decode()
        with open_service_client(
            dps.connection_string(),
            api_version=STABLE_API_VERSION,
            connection_verify=str(dps.ca_bundle),
        ) as client:
            client.enrollment.create_or_update(
                id="opc-byor",
                enrollment={
                    "registrationId": "opc-byor",
                    "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
                    "credentialPolicyName": "lab-policy",
                },
            )
        device_key = ec.generate_private_key(ec.SECP384R1())
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opc-byor")]))
            .sign(device_key, hashes.SHA384())
        )
        device = DeviceRegistrationClient(DpsEndpoint(dps.host_name, dps.id_scope, dps.ca_bundle))
        chain = device.register(
            SymmetricKeyCredential("opc-byor", key),
            csr=request.public_bytes(serialization.Encoding.DER),
        ).issued_chain

    assert x509.load_der_x509_certificate(chain[2]) == root
    assert x509.load_der_x509_certificate(chain[1]) == issuing
    x509.load_der_x509_certificate(chain[0]).verify_directly_issued_by(issuing)
