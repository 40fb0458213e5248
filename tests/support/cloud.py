"""Batches to the cloud: a station wired to a real local DPS stand-in and a SoftHSM2 manifest key.

Fixtures for tests/batches and the GUI's batches view; a folder imports the ones it uses into its
conftest (or a module), so ``dps_options`` here configures the stand-in only there."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

import hsm
from station.bootstrap import Station, build_station
from station.config import load_config
from station.domain.manifest import Attestation
from station.services.identities import record_identity
from station_lab.dps import DpsOptions, LocalDps
from tests.support.certs import new_cert, new_ek
from tests.support.keystores import fresh_token
from tests.support.paths import REPO_ROOT


@dataclass
class ManifestPki:
    """The station CA's lab root (the cloud operator's trust anchor) and the manifest key's chain.

    ``ca_station`` is the station that certified the manifest key (same station ID as ``cloud``,
    its own data folder); tests use it to issue other certificates under the same root.
    """

    root_pem: bytes
    root_file: Path
    chain_file: Path
    key_uri: str
    pin: str
    ca_station: Station


STATION_ID = "test-station"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, public: Any, issuer: str, issuer_key: Any, *, ca: bool) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def pki(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ManifestPki]:
    """A manifest key in a fresh SoftHSM2 token, certified by the station CA (lab root).

    The certificate comes from 'station ca manifest-key' (the manifest-signing profile), as on
    a real station.
    """
    token = fresh_token(tmp_path / "softhsm", monkeypatch)
    monkeypatch.setenv("STATION_PKCS11_PIN", token.pin)
    uri = f"pkcs11:token={token.label};object=manifest-key"
    chain_file = tmp_path / "manifest-chain.pem"
    config = tmp_path / "ca-station.toml"
    config.write_text(
        "[station]\n"
        f'id = "{STATION_ID}"\n'
        f'data_dir = "{tmp_path / "ca-data"}"\n'
        "[dps]\n"
        f'manifest_key_uri = "{uri}"\n'
        f'manifest_chain_file = "{chain_file}"\n',
        encoding="utf-8",
    )
    station = build_station(load_config(config, env={}))
    station.database().initialize(config_file="c", data_dir="d", admin="boss", operator="boss")
    ca = station.ca()
    ca.init(
        f"pkcs11:token={token.label};object=station-ca-key",
        common_name="Station CA",
        operator="boss",
    )
    ca.lab_root(operator="boss")
    ca.certify_manifest_key(operator="boss")
    root_file = tmp_path / "ca-data" / "ca" / "root.pem"
    yield ManifestPki(root_file.read_bytes(), root_file, chain_file, uri, token.pin, station)
    station.close()


@pytest.fixture
def dps_limits() -> dict[str, Any]:
    """Stand-in options a test may override (rate limit, time scale)."""
    return {"rate_limit": 0}


@pytest.fixture
def dps_options(tmp_path: Path, dps_limits: dict[str, Any]) -> DpsOptions:
    """The stand-in ``dps`` (tests/support/dps.py) runs, with this test's limits."""
    return DpsOptions(state_dir=tmp_path / "dps", **dps_limits)


@pytest.fixture
def client_limits() -> dict[str, Any]:
    """``[dps]`` rate settings of the station (default: no client-side limit)."""
    return {"rate_limit_per_minute": 0, "time_scale": 1.0}


@pytest.fixture
def cloud_config_file(
    tmp_path: Path, dps: LocalDps, pki: ManifestPki, client_limits: dict[str, Any]
) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(
        "[station]\n"
        f'id = "{STATION_ID}"\n'
        f'data_dir = "{tmp_path / "data"}"\n'
        "[dps]\n"
        f'connection_string_file = "{dps.connection_file}"\n'
        f'ca_bundle = "{dps.ca_bundle}"\n'
        f"rate_limit_per_minute = {client_limits['rate_limit_per_minute']}\n"
        f"time_scale = {float(client_limits['time_scale'])}\n"
        "timeout_s = 20.0\n"
        f'manifest_key_uri = "{pki.key_uri}"\n'
        f'manifest_chain_file = "{pki.chain_file}"\n'
        f'export_dir = "{tmp_path / "exports"}"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def cloud(cloud_config_file: Path, clock: Any) -> Iterator[Station]:
    """A station (operator: admin 'boss') configured for the stand-in and the manifest key."""
    station = build_station(load_config(cloud_config_file, env={}), clock=clock)
    station.database().initialize(config_file="c", data_dir="d", admin="boss", operator="boss")
    yield station
    station.close()


_EK_TEMPLATE = base64.b64decode(new_ek(0))


def fast_ek(index: int) -> str:
    """A structurally valid EK (the TCG template) whose modulus encodes ``index`` (unique, quick)."""
    unique = index.to_bytes(8, "big") + hashlib.sha256(index.to_bytes(8, "big")).digest() * 8
    return base64.b64encode(_EK_TEMPLATE[:-256] + unique[:256]).decode("ascii")


@pytest.fixture
def sym_push_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pki) -> tuple[Path, bytes]:
    """Templates with a product whose template pushes symmetric keys; its group key in SoftHSM2."""
    shipped = REPO_ROOT / "templates"
    root = tmp_path / "templates"
    shutil.copytree(shipped, root)
    token = pki.key_uri.split("token=")[1].split(";")[0]
    group_key = os.urandom(32)
    uri = f"pkcs11:token={token};object=sym-group"
    hsm.import_group_key(
        uri, group_key, pin_source=hsm.PinSource(env={"STATION_PKCS11_PIN": pki.pin})
    )
    (root / "enrollments" / "sym-push.toml").write_text(
        '[enrollment]\nname = "sym-push"\nsymmetric_keys = "push"\n'
        '[enrollment.twin_tags]\nbatch = "{batch}"\n'
    )
    product = (root / "products" / "lab-sym.toml").read_text()
    product = product.replace('name = "lab-sym"', 'name = "lab-sym-push"')
    product = product.replace('enrollment_template = "default"', 'enrollment_template = "sym-push"')
    product = product.replace("pkcs11:token=station-ca;object=lab-group-key", uri)
    (root / "products" / "lab-sym-push.toml").write_text(product)
    return root, group_key


@pytest.fixture
def sym_cloud(
    cloud_config_file: Path, clock: Any, sym_push_templates: tuple[Path, bytes]
) -> Iterator[Station]:
    """Like ``cloud``, with templates where product lab-sym-push pushes HSM-derived keys."""
    root, _ = sym_push_templates
    text = cloud_config_file.read_text().replace("[dps]", f'templates_dir = "{root}"\n[dps]')
    cloud_config_file.write_text(text)
    station = build_station(load_config(cloud_config_file, env={}), clock=clock)
    station.database().initialize(config_file="c", data_dir="d", admin="boss", operator="boss")
    yield station
    station.close()


@pytest.fixture
def fill_batch(make_manifest: Callable[..., Any]) -> Callable[..., list[str]]:
    """Open batch NAME and record N identities in it (TPM with real-shaped EKs, or X.509)."""

    def fill(
        station: Station,
        name: str,
        count: int,
        *,
        product: str = "lab-tpm",
        attestation: Attestation = Attestation.TPM,
    ) -> list[str]:
        station.batches().open(name=name, product=product, size=max(count, 1), operator="boss")
        store = station.store()
        ids: list[str] = []
        with store:
            for index in range(count):
                serial = f"{name}-{index:07d}".lower()
                extra: dict[str, Any] = {}
                if attestation is Attestation.TPM:
                    extra["ek"] = fast_ek(index)
                elif attestation is Attestation.X509:
                    rid = f"x-{serial}"
                    extra["registration_id"] = rid
                    pem = new_cert(rid)
                    cert = x509.load_pem_x509_certificate(pem.encode())
                    extra["certificate_pem"] = pem
                    extra["thumbprint"] = cert.fingerprint(hashes.SHA256()).hex()
                manifest = make_manifest(serial, attestation=attestation, batch=name, **extra)
                record_identity(
                    store, manifest, clock=station.clock, station="test-station", operator="boss"
                )
                ids.append(manifest.registration_id)
        return ids

    return fill


def _autorest_any(node: Any) -> Any:
    """Read the swagger as AutoRest does: TwinCollection values (``{"type": "object"}``) are any
    JSON value (see tests/unit/domain/test_enrollments.py)."""
    if isinstance(node, dict):
        if node.get("additionalProperties") == {"type": "object"}:
            node = {**node, "additionalProperties": {}}
        return {k: _autorest_any(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_autorest_any(v) for v in node]
    return node


@pytest.fixture(scope="session")
def conforms(shared_dir: Path) -> Callable[[str, Any], None]:
    """``conforms("IndividualEnrollment", body)``: validates against the official swagger."""
    swagger = json.loads((shared_dir / "testdata" / "dps" / "service.json").read_text())
    definitions = _autorest_any(copy.deepcopy(swagger["definitions"]))
    for schema in definitions.values():  # close declared objects so unknown fields fail
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)

    def check(definition: str, instance: Any) -> None:
        schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
        jsonschema.Draft4Validator(schema).validate(instance)

    return check


def creates_per_id(dps: LocalDps) -> int:
    """Successful bulk calls in the access log."""
    return sum(
        1 for e in dps.access_log() if e["operation"] == "enrollment.bulk" and e["status"] == 200
    )


def dps_ids(dps: LocalDps, make_client: Any = None) -> list[str]:
    """Registration IDs DPS holds (read straight through the stand-in's API object)."""
    from azure.iot.deviceprovisioning import DeviceProvisioningClient

    client = DeviceProvisioningClient.from_connection_string(
        dps.connection_string(), connection_verify=str(dps.ca_bundle), retry_total=5
    )
    try:
        return [
            e["registrationId"] for e in client.enrollment.query({"query": "SELECT *"}, top=1000)
        ]
    finally:
        client.close()


class _client:
    """``with _client(dps) as client``: the official client trusting the lab CA.

    ``api_version``: what it sends (the client's own 2021-10-01 by default; ``"2026-04-01"``
    to write or read ``credentialPolicyName``, which older api-versions drop).
    """

    def __init__(self, dps: LocalDps, api_version: str = "2021-10-01") -> None:
        from station.adapters.dps.client import open_service_client

        self.client = open_service_client(
            dps.connection_string(), api_version=api_version, connection_verify=str(dps.ca_bundle)
        )

    def __enter__(self) -> Any:
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
