"""``station lab dps`` with the device API options: ID scope, linked hubs, allocation policy."""

from __future__ import annotations

import base64
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.iot.deviceprovisioning import DeviceProvisioningClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hsm.softhsm import SoftHsmToken
from station.adapters.dps.client import open_service_client
from station_lab.dps import STABLE_API_VERSION
from station_lab.firstboot import DeviceRegistrationClient, DpsEndpoint, SymmetricKeyCredential


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "station",
            "lab",
            "dps",
            "--state",
            str(tmp_path / "state"),
            "--id-scope",
            "0ne0000CAFE",
            "--hub",
            "far.azure-devices.net=80",
            "--hub",
            "near.azure-devices.net=5",
            "--allocation-policy",
            "geoLatency",
            "--retry-after",
            "0.01",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)
    for stream in (process.stdout, process.stderr):
        if stream:
            stream.close()


def _banner(
    process: subprocess.Popen[bytes], deadline_s: float = 60.0, until: str = "access log"
) -> dict[str, str]:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    lines: dict[str, str] = {}
    buffer = b""
    deadline = time.monotonic() + deadline_s
    while until not in lines:
        remaining = deadline - time.monotonic()
        assert remaining > 0 and process.poll() is None, "no banner from station lab dps"
        if selector.select(timeout=remaining):
            buffer += os.read(process.stdout.fileno(), 4096)
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                key, _, value = line.decode().partition(": ")
                lines[key] = value
    selector.close()
    assert not [value for value in lines.values() if "SharedAccessKey" in value]  # no secret
    return lines


def test_cli_prints_the_id_scope_and_devices_register_against_it(
    cli: subprocess.Popen[bytes],
) -> None:
    banner = _banner(cli)
    assert banner["ID scope"] == "0ne0000CAFE"
    assert banner["linked hubs"] == (
        "far.azure-devices.net (80 ms, weight 1), near.azure-devices.net (5 ms, weight 1)"
    )
    assert banner["allocation policy"] == "geoLatency"
    host = banner["lab DPS endpoint"].removeprefix("https://")
    key = base64.b64encode(os.urandom(32)).decode("ascii")
    with DeviceProvisioningClient.from_connection_string(
        Path(banner["connection string file"]).read_text().strip(),
        connection_verify=banner["CA bundle"],
    ) as service:
        service.enrollment_group.create_or_update(
            id="cli-group",
            enrollment_group={
                "enrollmentGroupId": "cli-group",
                "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
            },
        )
    device = DeviceRegistrationClient(
        DpsEndpoint(host, "0ne0000CAFE", Path(banner["CA bundle"])), timeout_s=30
    )
    assignment = device.register(SymmetricKeyCredential.from_group_key("cli-dev-1", key))
    assert assignment.assigned_hub == "near.azure-devices.net"
    cli.send_signal(signal.SIGTERM)
    assert cli.wait(timeout=30) == 0


def test_cli_runs_a_device_registry_with_a_credential_policy(
    tmp_path: Path, softhsm: SoftHsmToken
) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm.pin + "\n")
    pin_file.chmod(0o600)
    argv = [sys.executable, "-m", "station", "lab", "dps", "--state", str(tmp_path / "state")]
    argv += ["--retry-after", "0.01", "--credential-policy", "cli-policy=7"]
    argv += ["--registry-token", softhsm.label, "--registry-pin-file", str(pin_file)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        banner = _banner(process, until="device registry lab-ns")
        assert banner["device registry lab-ns"] == "credential policies cli-policy (7 days, active)"
        key = base64.b64encode(os.urandom(32)).decode("ascii")
        with open_service_client(
            Path(banner["connection string file"]).read_text().strip(),
            api_version=STABLE_API_VERSION,
            connection_verify=banner["CA bundle"],
        ) as service:
            service.enrollment.create_or_update(
                id="cli-opc",
                enrollment={
                    "registrationId": "cli-opc",
                    "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
                    "credentialPolicyName": "cli-policy",
                },
            )
        device_key = ec.generate_private_key(ec.SECP384R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cli-opc")])
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject)
        der = csr.sign(device_key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)
        host = banner["lab DPS endpoint"].removeprefix("https://")
        device = DeviceRegistrationClient(
            DpsEndpoint(host, "0ne00000001", Path(banner["CA bundle"])), timeout_s=30
        )
        chain = device.register(SymmetricKeyCredential("cli-opc", key), csr=der).issued_chain
        issuer = x509.load_der_x509_certificate(chain[0]).issuer.rfc4514_string()
        assert issuer == "CN=cli-policy issuing CA"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()
