"""Operational certificates at registration (DPS certificate management, 2025-07-01-preview).

The lab's device registry holds a credential (root CA) and a policy (issuing CA), both keys in a
real SoftHSM2 token. Enrollments name the policy; devices register with their onboarding
credential and a ``csr`` and get ``registrationState.issuedCertificateChain`` over HTTPS and
MQTT; every refusal the service makes is checked on both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import queue
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as paho
import pytest
from azure.iot.deviceprovisioning import DeviceProvisioningClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from hsm.softhsm import SoftHsmToken
from station.adapters.dps.client import open_service_client
from station.domain.errors import DeviceRegistrationError
from station_lab.dps import STABLE_API_VERSION, DpsOptions, LocalDps
from station_lab.firstboot import DeviceRegistrationClient, DpsEndpoint, sas_token
from station_lab.firstboot.credentials import SymmetricKeyCredential
from tests.support.keystores import fresh_token
from tests.support.registration import HUBS

from .sdk import new_key

PREVIEW = "2025-07-01-preview"
POLICY = "lab-policy"
DEADLINE_S = 15.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalDps, SoftHsmToken]]:
    """One stand-in for the module (its registry's keys cost a token and two P-384 keys)."""
    directory = tmp_path_factory.mktemp("opcert")
    with pytest.MonkeyPatch.context() as patch:
        token = fresh_token(directory / "softhsm", patch)
        pin_file = directory / "pin"  # each test's environment is reset: the PIN is in a file
        pin_file.write_text(token.pin + "\n")
        pin_file.chmod(0o600)
        options = DpsOptions(
            state_dir=directory / "dps",
            linked_hubs=HUBS,
            retry_after_s=0.01,
            rate_limit=0,
            registry_pin_file=pin_file,
        )
        with LocalDps(options) as dps:
            dps.enable_certificate_management("lab-ns", token.uri("adr-root"))
            dps.create_credential_policy(POLICY, token.uri("adr-ica"), validity_days=30)
            yield dps, token


@pytest.fixture
def registry(lab: tuple[LocalDps, SoftHsmToken]) -> Iterator[LocalDps]:
    dps, _ = lab
    yield dps
    if any(p["status"] != "active" for p in dps.registry.policies() if p["name"] == POLICY):
        dps.registry.renew_policy(POLICY)  # a test revoked it


@pytest.fixture
def service(registry: LocalDps) -> Iterator[DeviceProvisioningClient]:
    # credentialPolicyName is kept only under an api-version that defines it (not 2021-10-01)
    client = open_service_client(
        registry.connection_string(),
        api_version=STABLE_API_VERSION,
        connection_verify=str(registry.ca_bundle),
    )
    yield client
    client.close()


@pytest.fixture
def device(registry: LocalDps) -> DeviceRegistrationClient:
    return DeviceRegistrationClient(
        DpsEndpoint(registry.host_name, registry.id_scope, registry.ca_bundle), timeout_s=30
    )


def _hub(dps: LocalDps, reg_id: str) -> dict[str, Any] | None:
    return next((d for d in dps.hub_devices() if d["registrationId"] == reg_id), None)


def _enroll(service: DeviceProvisioningClient, reg_id: str, key: str, policy: str | None) -> None:
    body: dict[str, Any] = {
        "registrationId": reg_id,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
    }
    if policy is not None:
        body["credentialPolicyName"] = policy
    service.enrollment.create_or_update(id=reg_id, enrollment=body)


def _csr(cn: str, key: Any | None = None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA384())
    return csr.public_bytes(serialization.Encoding.DER)


def _tampered(der: bytes) -> bytes:
    return der[:-4] + bytes([der[-4] ^ 0x01]) + der[-3:]


def _credential(reg_id: str, key: str) -> SymmetricKeyCredential:
    return SymmetricKeyCredential(reg_id, key)


def _https(
    dps: LocalDps, device: DeviceRegistrationClient, reg_id: str, key: str, csr: bytes
) -> dict[str, Any]:
    """Register over HTTPS; the operation's result or the refusal's code, as one dict."""
    try:
        assignment = device.register(_credential(reg_id, key), csr=csr)
    except DeviceRegistrationError as exc:
        return {"refused": exc.details.get("error_code"), "status": exc.details.get("status")}
    return {"status": "assigned", "registrationState": dict(assignment.registration_state)}


def _mqtt(dps: LocalDps, reg_id: str, key: str, csr: bytes) -> dict[str, Any]:
    """Register over MQTT with a raw client (the SDKs do not know the preview)."""
    messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
    connected: queue.Queue[int] = queue.Queue()
    subscribed: queue.Queue[int] = queue.Queue()
    client = paho.Client(client_id=reg_id, protocol=paho.MQTTv311, clean_session=True)
    client.tls_set_context(ssl.create_default_context(cafile=str(dps.ca_bundle)))

    def sign(message: bytes) -> bytes:
        return hmac.new(base64.b64decode(key), message, hashlib.sha256).digest()

    client.username_pw_set(
        f"{dps.id_scope}/registrations/{reg_id}/api-version={PREVIEW}",
        sas_token(dps.id_scope, reg_id, sign),
    )
    client.on_connect = lambda c, u, flags, rc: connected.put(rc)
    client.on_subscribe = lambda c, u, mid, granted: subscribed.put(granted[0])
    client.on_message = lambda c, u, m: messages.put((m.topic, m.payload))
    client.connect("localhost", dps.mqtt_port, keepalive=30)
    client.loop_start()
    try:
        assert connected.get(timeout=DEADLINE_S) == 0
        client.subscribe("$dps/registrations/res/#", qos=1)
        assert subscribed.get(timeout=DEADLINE_S) == 1
        body = {"registrationId": reg_id, "csr": base64.b64encode(csr).decode("ascii")}
        client.publish("$dps/registrations/PUT/iotdps-register/?$rid=1", json.dumps(body), qos=1)
        topic, payload = messages.get(timeout=DEADLINE_S)
        answer = json.loads(payload)
        status = int(topic.split("/")[3])
        if status >= 400:
            return {"refused": answer["errorCode"], "answer": answer}
        operation = answer["operationId"]
        rid = 2
        while answer.get("status") == "assigning":
            client.publish(
                "$dps/registrations/GET/iotdps-get-operationstatus/"
                f"?$rid={rid}&operationId={operation}",
                b"",
                qos=1,
            )
            topic, payload = messages.get(timeout=DEADLINE_S)
            answer = json.loads(payload)
            rid += 1
        return answer
    finally:
        client.disconnect()
        client.loop_stop()


TRANSPORTS = {"https": _https, "mqtt": _mqtt}


def _register(
    transport: str,
    dps: LocalDps,
    device: DeviceRegistrationClient,
    reg_id: str,
    key: str,
    csr: bytes,
) -> dict[str, Any]:
    if transport == "https":
        return _https(dps, device, reg_id, key, csr)
    return _mqtt(dps, reg_id, key, csr)


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_a_csr_gets_the_issued_chain_and_the_hub_records_it(
    registry: LocalDps,
    service: DeviceProvisioningClient,
    device: DeviceRegistrationClient,
    transport: str,
) -> None:
    key = new_key()
    reg_id = f"op-0001-{transport}"
    _enroll(service, reg_id, key, POLICY)
    device_key = ec.generate_private_key(ec.SECP384R1())

    answer = _register(transport, registry, device, reg_id, key, _csr(reg_id, device_key))

    assert answer["status"] == "assigned"
    chain = [
        x509.load_der_x509_certificate(base64.b64decode(der))
        for der in answer["registrationState"]["issuedCertificateChain"]
    ]
    leaf, issuing, root = chain
    assert leaf.subject.rfc4514_string() == f"CN={reg_id}"
    assert leaf.public_key().public_numbers() == device_key.public_key().public_numbers()
    leaf.verify_directly_issued_by(issuing)
    issuing.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    assert issuing.subject.rfc4514_string() == f"CN={POLICY} issuing CA"
    validity = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert timedelta(days=30) <= validity <= timedelta(days=30, minutes=6)
    hub = _hub(registry, reg_id)
    assert hub is not None
    assert hub["certificate"]["thumbprint"] == leaf.fingerprint(hashes.SHA256()).hex().upper()
    assert hub["certificate"]["policy"] == POLICY


def test_renewal_gives_a_new_chain_and_the_hub_keeps_the_current_one(
    registry: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient
) -> None:
    key = new_key()
    _enroll(service, "op-0002", key, POLICY)
    first = device.register(_credential("op-0002", key), csr=_csr("op-0002"))
    second = device.register(_credential("op-0002", key), csr=_csr("op-0002"))

    first_leaf = x509.load_der_x509_certificate(first.issued_chain[0])
    second_leaf = x509.load_der_x509_certificate(second.issued_chain[0])
    assert first_leaf.public_key() != second_leaf.public_key()
    hub = _hub(registry, "op-0002")
    assert hub is not None
    assert hub["certificate"]["thumbprint"] == (
        second_leaf.fingerprint(hashes.SHA256()).hex().upper()
    )


def test_the_validity_follows_the_policy(
    registry: LocalDps,
    service: DeviceProvisioningClient,
    device: DeviceRegistrationClient,
    lab: tuple[LocalDps, SoftHsmToken],
) -> None:
    token = lab[1]
    registry.create_credential_policy("week-policy", token.uri("adr-ica-7"), validity_days=7)
    key = new_key()
    _enroll(service, "op-0003", key, "week-policy")

    leaf = x509.load_der_x509_certificate(
        device.register(_credential("op-0003", key), csr=_csr("op-0003")).issued_chain[0]
    )

    assert leaf.not_valid_after_utc - datetime.now(UTC) < timedelta(days=7, minutes=1)
    assert leaf.not_valid_after_utc - datetime.now(UTC) > timedelta(days=6, hours=23)


def test_without_the_preview_api_version_the_csr_is_ignored(
    registry: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient
) -> None:
    key = new_key()
    _enroll(service, "op-0004", key, POLICY)
    assignment = device.register(_credential("op-0004", key))  # 2021-10-01, no csr

    assert assignment.issued_chain == ()
    hub = _hub(registry, "op-0004")
    assert hub is not None and "certificate" not in hub


def _other_cn(reg_id: str) -> bytes:
    return _csr("someone-else")


def _p256(reg_id: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, reg_id)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def _rsa(reg_id: str) -> bytes:
    return _csr(reg_id, rsa.generate_private_key(public_exponent=65537, key_size=2048))


REFUSALS = {
    "other-cn": (_other_cn, 400013),
    "p256-key": (_p256, 400014),
    "rsa-key": (_rsa, 400014),
    "bad-signature": (lambda reg_id: _tampered(_csr(reg_id)), 400012),
    "not-a-csr": (lambda reg_id: b"\x30\x03\x02\x01\x00", 400011),
}


@pytest.mark.parametrize("case", list(REFUSALS))
@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_a_bad_csr_is_refused_with_400_and_nothing_is_assigned(
    registry: LocalDps,
    service: DeviceProvisioningClient,
    device: DeviceRegistrationClient,
    transport: str,
    case: str,
) -> None:
    make, code = REFUSALS[case]
    key = new_key()
    reg_id = f"op-bad-{case}-{transport}"
    _enroll(service, reg_id, key, POLICY)

    answer = _register(transport, registry, device, reg_id, key, make(reg_id))

    assert answer["refused"] == code
    assert _hub(registry, reg_id) is None


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_a_revoked_policy_ends_the_registration_failed(
    registry: LocalDps,
    service: DeviceProvisioningClient,
    device: DeviceRegistrationClient,
    transport: str,
) -> None:
    key = new_key()
    reg_id = f"op-0005-{transport}"
    _enroll(service, reg_id, key, POLICY)
    registry.registry.revoke_policy(POLICY)

    answer = _register(transport, registry, device, reg_id, key, _csr(reg_id))

    if transport == "https":
        assert (answer["status"], answer["refused"]) == ("failed", 400016)
    else:
        assert answer["status"] == "failed"
        assert answer["registrationState"]["errorCode"] == 400016
        assert "revoked" in answer["registrationState"]["errorMessage"]
    assert _hub(registry, reg_id) is None
    registry.registry.renew_policy(POLICY)
    assert device.register(_credential(reg_id, key), csr=_csr(reg_id)).issued_chain


def test_a_csr_for_an_enrollment_without_a_policy_is_refused(
    registry: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient
) -> None:
    key = new_key()
    _enroll(service, "op-0006", key, None)

    answer = _https(registry, device, "op-0006", key, _csr("op-0006"))

    assert answer["refused"] == 400015


def test_groups_name_a_policy_too(
    registry: LocalDps, service: DeviceProvisioningClient, device: DeviceRegistrationClient
) -> None:
    group_key = new_key()
    service.enrollment_group.create_or_update(
        id="op-group",
        enrollment_group={
            "enrollmentGroupId": "op-group",
            "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": group_key}},
            "credentialPolicyName": POLICY,
        },
    )
    derived = base64.b64encode(
        hmac.new(base64.b64decode(group_key), b"op-0007", hashlib.sha256).digest()
    ).decode()

    assignment = device.register(_credential("op-0007", derived), csr=_csr("op-0007"))

    assert len(assignment.issued_chain) == 3
    assert service.enrollment_group.get("op-group")["credentialPolicyName"] == POLICY


def test_bring_your_own_root_replaces_the_issuing_ca(
    registry: LocalDps,
    service: DeviceProvisioningClient,
    device: DeviceRegistrationClient,
    lab: tuple[LocalDps, SoftHsmToken],
) -> None:
    registry.create_credential_policy("byor-policy", lab[1].uri("adr-ica-byor"))
    own_key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Factory Root")])
    now = datetime.now(UTC)
    own_root = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(own_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=800))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .sign(own_key, hashes.SHA384())
    )
    csr = registry.registry.policy_csr("byor-policy")
    issuing = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(name)
        .public_key(csr.public_key())
        .serial_number(2)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(own_key, hashes.SHA384())
    )
    registry.registry.attach_issuing_certificate("byor-policy", issuing, own_root)
    key = new_key()
    _enroll(service, "op-0008", key, "byor-policy")

    chain = device.register(_credential("op-0008", key), csr=_csr("op-0008")).issued_chain

    assert x509.load_der_x509_certificate(chain[2]) == own_root
    x509.load_der_x509_certificate(chain[0]).verify_directly_issued_by(issuing)


def test_a_csr_in_a_status_lookup_is_a_bad_request(
    registry: LocalDps, service: DeviceProvisioningClient
) -> None:
    key = new_key()
    _enroll(service, "op-0009", key, POLICY)

    def sign(message: bytes) -> bytes:
        return hmac.new(base64.b64decode(key), message, hashlib.sha256).digest()

    host, _, port = registry.host_name.rpartition(":")
    connection = http.client.HTTPSConnection(
        host, int(port), context=ssl.create_default_context(cafile=str(registry.ca_bundle))
    )
    body = {"registrationId": "op-0009", "csr": base64.b64encode(_csr("op-0009")).decode()}
    connection.request(
        "POST",
        f"/{registry.id_scope}/registrations/op-0009?api-version={PREVIEW}",
        body=json.dumps(body),
        headers={
            "Content-Type": "application/json",
            "Authorization": sas_token(registry.id_scope, "op-0009", sign),
        },
    )
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()

    assert (response.status, answer["errorCode"]) == (400, 400015)
