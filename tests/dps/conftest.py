"""Fixtures for the local DPS stand-in: a running server, the official client, swagger schemas."""

from __future__ import annotations

import base64
import copy
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from azure.iot.deviceprovisioning import DeviceProvisioningClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tpm2_pytss.types import TPM2B_PUBLIC

from station_lab.dps import DpsOptions, LocalDps

# The TCG default EK policy (PolicySecret(TPM_RH_ENDORSEMENT)), as in every SDK's EK template.
EK_AUTH_POLICY = bytes.fromhex("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa")
EK_ATTRIBUTES = "fixedtpm|fixedparent|sensitivedataorigin|adminwithpolicy|restricted|decrypt"


def new_ek(seed: int = 0) -> str:
    """A structurally valid RSA-2048 EK (TCG template) as DPS stores it: base64 TPM2B_PUBLIC."""
    public = TPM2B_PUBLIC.parse("rsa2048:aes128cfb", objectAttributes=EK_ATTRIBUTES)
    public.publicArea.authPolicy = EK_AUTH_POLICY
    public.publicArea.unique.rsa = (seed.to_bytes(4, "big") + os.urandom(252))[:256]
    return base64.b64encode(public.marshal()).decode("ascii")


def new_cert(common_name: str, *, issuer_key: Any = None, issuer_cn: str = "") -> str:
    """A PEM certificate with subject CN ``common_name`` (self-signed unless an issuer is given)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer = (
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]) if issuer_cn else subject
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(issuer_key or key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@pytest.fixture(name="make_ek")
def make_ek_fixture() -> Callable[..., str]:
    return new_ek


@pytest.fixture(name="make_cert")
def make_cert_fixture() -> Callable[..., str]:
    return new_cert


@pytest.fixture
def dps_options(tmp_path: Path) -> DpsOptions:
    return DpsOptions(state_dir=tmp_path / "dps")


@pytest.fixture
def dps(dps_options: DpsOptions) -> Iterator[LocalDps]:
    with LocalDps(dps_options) as server:
        yield server


@pytest.fixture
def make_client() -> Iterator[Callable[..., DeviceProvisioningClient]]:
    """Build official clients trusting the lab CA (closed at teardown)."""
    clients: list[DeviceProvisioningClient] = []

    def build(server: LocalDps, policy: str = "provisioningserviceowner", **kwargs: Any):
        client = DeviceProvisioningClient.from_connection_string(
            server.connection_string(policy), connection_verify=str(server.ca_bundle), **kwargs
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def client(dps: LocalDps, make_client: Callable[..., DeviceProvisioningClient]):
    return make_client(dps)


@pytest.fixture(scope="session")
def swagger(shared_dir: Path) -> dict[str, Any]:
    return json.loads((shared_dir / "testdata" / "dps" / "service.json").read_text())


def _strict(definitions: dict[str, Any]) -> dict[str, Any]:
    # The swagger leaves objects open; close the ones with declared properties so a field the
    # contract does not have fails validation (free-form maps like TwinCollection stay open).
    result = copy.deepcopy(definitions)
    for schema in result.values():
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
    # Real DPS answers a provisioningStatus sent as null (or left out) with null, which the
    # swagger does not allow (recorded: tests/batches/data/SOURCES.md).
    for name in ("IndividualEnrollment", "EnrollmentGroup"):
        status = result[name]["properties"]["provisioningStatus"]
        status["type"] = [status["type"], "null"]
        status["enum"] = [*status["enum"], None]
    return result


@pytest.fixture(scope="session")
def conforms(swagger: dict[str, Any]) -> Callable[[str, Any], None]:
    """``conforms("IndividualEnrollment", body)`` validates against the official swagger."""
    definitions = _strict(swagger["definitions"])

    def check(definition: str, instance: Any) -> None:
        schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
        jsonschema.Draft4Validator(schema).validate(instance)

    return check


@pytest.fixture(scope="session")
def conforms_array(swagger: dict[str, Any]) -> Callable[[str, Any], None]:
    definitions = _strict(swagger["definitions"])

    def check(definition: str, instance: Any) -> None:
        schema = {
            "type": "array",
            "items": {"$ref": f"#/definitions/{definition}"},
            "definitions": definitions,
        }
        jsonschema.Draft4Validator(schema).validate(instance)

    return check
