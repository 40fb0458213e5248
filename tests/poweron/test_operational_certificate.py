"""First power-on of a board whose operational certificate comes from DPS: it registers with its
onboarding credential and a CSR of its operational key, keeps the issued chain, and the summary
names the certificate's issuer and expiry."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from station.adapters.dps.client import open_service_client
from station.domain.enrollments import symmetric_key_group
from station_lab.boards.poweron import OPERATIONAL_CHAIN_FILE
from station_lab.dps import STABLE_API_VERSION
from tests.support.poweron import ENABLED, PowerRig


def _registry(power: PowerRig) -> None:
    token = power.rig.token
    power.dps.enable_certificate_management("lab-ns", token.uri("adr-root"))
    power.dps.create_credential_policy("lab-policy", token.uri("adr-ica"), validity_days=30)
    body = symmetric_key_group("lab-opcert-sym", ENABLED, credential_policy="lab-policy")
    body["attestation"]["symmetricKey"] = {"primaryKey": power.group_key}
    # credentialPolicyName is kept only under an api-version that defines it (not 2021-10-01)
    with open_service_client(
        power.dps.connection_string(),
        api_version=STABLE_API_VERSION,
        connection_verify=str(power.dps.ca_bundle),
    ) as service:
        service.enrollment_group.create_or_update(id="lab-opcert-sym", enrollment_group=body)


def test_a_board_registers_with_a_csr_and_keeps_its_operational_chain(power: PowerRig) -> None:
    _registry(power)
    board, registration_id = power.provision("se", "WO-OPC")

    result = power.power_on(board)

    assert result.assigned, result
    assert result.operational_issuer == "CN=lab-policy issuing CA"
    expiry = datetime.strptime(result.operational_not_after, "%Y-%m-%dT%H:%M:%SZ")
    left = expiry.replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < left <= timedelta(days=30)
    assert "2026-04-01" in result.client
    pem = (board.state_dir / OPERATIONAL_CHAIN_FILE).read_bytes()
    leaf, issuing, root = x509.load_pem_x509_certificates(pem)
    assert leaf.subject.rfc4514_string() == f"CN={registration_id}"
    leaf.verify_directly_issued_by(issuing)
    issuing.verify_directly_issued_by(root)
    operational = power.manifest(registration_id).operational_certificate
    spki = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert hashlib.sha256(spki).hexdigest() == operational.public_key_sha256
    [device] = power.dps.hub_devices()
    assert device["certificate"]["thumbprint"] == leaf.fingerprint(hashes.SHA256()).hex().upper()

    # powered on again (a renewal): a new certificate for the same key, the hub keeps the new one
    again = power.power_on(board)
    assert again.assigned
    renewed = x509.load_pem_x509_certificates(
        (board.state_dir / OPERATIONAL_CHAIN_FILE).read_bytes()
    )[0]
    assert renewed.serial_number != leaf.serial_number
    [device] = power.dps.hub_devices()
    assert device["certificate"]["thumbprint"] == renewed.fingerprint(hashes.SHA256()).hex().upper()


def test_a_revoked_policy_is_reported_at_power_on(power: PowerRig) -> None:
    _registry(power)
    power.dps.registry.revoke_policy("lab-policy")
    board, _ = power.provision("se", "WO-OPC")

    result = power.power_on(board)

    assert not result.assigned
    assert result.error_code == "400016"
    assert "revoked" in result.error
    assert not (board.state_dir / OPERATIONAL_CHAIN_FILE).exists()
