"""The CA tests' plain helpers: a CA service over a given store and SoftHSM2, CSRs, openssl.

The fixtures built on them (``ca_rig``, ``ready``) are in ``tests/ca/conftest.py``.
"""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hsm import PinSource
from hsm.softhsm import SoftHsmToken
from station.adapters.ca.admin import FileCaAdministration
from station.adapters.ca.profiles import default_profile_dir, load_profiles
from station.services.ca import CaService
from tests.support.clocks import SteadyClock

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class CaRig:
    token: SoftHsmToken
    pins: PinSource
    admin: FileCaAdministration
    store: Any
    clock: SteadyClock
    ca_dir: Path
    make: Callable[..., CaService]

    @property
    def service(self) -> CaService:
        return self.make()

    def key_uri(self) -> str:
        return self.token.uri("station-ca")


def build_rig(token: SoftHsmToken, store: Any, ca_dir: Path) -> CaRig:
    pins = PinSource(env={"STATION_PKCS11_PIN": token.pin})
    admin = FileCaAdministration(ca_dir, configured_uri="", pin_source=pins)
    clock = SteadyClock()
    profiles = load_profiles(default_profile_dir())
    services: list[CaService] = []

    def make(**overrides: Any) -> CaService:
        options: dict[str, Any] = {
            "store": store,
            "admin": admin,
            "authority": admin.open_authority,
            "profiles": profiles,
            "clock": clock,
            "station_id": "test-station",
            "quota_spare": 1,
        }
        options.update(overrides)
        service = CaService(**options)
        services.append(service)
        return service

    ca_rig = CaRig(token, pins, admin, store, clock, ca_dir, make)
    ca_rig._services = services  # type: ignore[attr-defined]
    return ca_rig


def device_csr(
    cn: str | None = "dev-0001",
    *,
    key: Any = None,
    extensions: list[tuple[x509.ExtensionType, bool]] | None = None,
    extra_subject: list[x509.NameAttribute] | None = None,
    algorithm: Any = None,
) -> bytes:
    """A PEM CSR as a board would send it (a P-256 key unless ``key`` is given)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    with warnings.catch_warnings():
        # _validate=False: hostile boards do not respect the CN length limit either
        warnings.simplefilter("ignore", UserWarning)
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=False)] if cn else []
    attrs += extra_subject or []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    for ext, critical in extensions or []:
        builder = builder.add_extension(ext, critical=critical)
    if algorithm is None and not _is_ed(key):
        algorithm = hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)


def _is_ed(key: Any) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return isinstance(key, ed25519.Ed25519PrivateKey)


def openssl_verify(
    tmp_path: Path, root_pem: bytes, chain_pem: str, leaf_pem: str, *extra: str
) -> str:
    """Run ``openssl verify -x509_strict`` on the leaf; return its output (asserts success)."""
    root = tmp_path / "root.pem"
    chain = tmp_path / "chain.pem"
    leaf = tmp_path / "leaf.pem"
    root.write_bytes(root_pem)
    chain.write_text(chain_pem)
    leaf.write_text(leaf_pem)
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-x509_strict",
            *extra,
            "-CAfile",
            str(root),
            "-untrusted",
            str(chain),
            str(leaf),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
