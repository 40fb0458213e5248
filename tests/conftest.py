"""Fixtures every test tier shares: isolated config, fixed clock, a fresh station."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Qt must never try to open a display in tests; set before anything imports PySide6.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from station.bootstrap import Station, build_station
from station.config import StationConfig, load_config
from tests.support.clocks import FixedClock
from tests.support.paths import SHARED

# The shared fixtures, registered once for every folder (tests/support).
pytest_plugins = (
    "tests.support.boards",
    "tests.support.dps",
    "tests.support.keystores",
    "tests.support.rig",
    "tests.support.tpm",
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep every test away from the real user's config and data directories."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    # the TSS logs expected misses (optional EK template indices, probes) as errors: keep quiet
    monkeypatch.setenv("TSS2_LOG", "all+none")
    for variable in list(os.environ):
        if variable.startswith("STATION_"):
            monkeypatch.delenv(variable)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A config file whose data directory is inside the test's tmp_path."""
    path = tmp_path / "station.toml"
    path.write_text(
        f'[station]\nid = "test-station"\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8"
    )
    return path


@pytest.fixture
def config(config_file: Path) -> StationConfig:
    return load_config(config_file, env={})


@pytest.fixture
def station(config: StationConfig, clock: FixedClock) -> Iterator[Station]:
    built = build_station(config, clock=clock)
    yield built
    built.close()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only shared test data (../shared next to the repository)."""
    if not SHARED.is_dir():
        pytest.fail(f"shared test data not found at {SHARED}")
    return SHARED


@pytest.fixture
def make_manifest():
    """Factory for valid identity manifests (symmetric-key by default, TPM or X.509 on request)."""
    from station.domain.manifest import (
        Attestation,
        BoardInfo,
        DpsTarget,
        IdentityManifest,
        SymmetricKeyIdentity,
        TpmIdentity,
        X509Identity,
    )

    def build(
        serial: str = "SN0001",
        *,
        registration_id: str | None = None,
        attestation: Attestation = Attestation.SYMMETRIC_KEY,
        batch: str = "WO-1",
        ek: str = "",
        certificate_pem: str = "",
        thumbprint: str = "",
    ) -> IdentityManifest:
        reg = registration_id or f"dev-{serial.lower()}"
        parts: dict[str, object] = {}
        if attestation is Attestation.TPM:
            parts["tpm"] = TpmIdentity(
                endorsement_key=ek or "AAAA", ek_sha256=(serial.lower() * 64)[:64]
            )
        elif attestation is Attestation.X509:
            parts["x509"] = X509Identity(
                certificate_pem=certificate_pem,
                thumbprint_sha256=thumbprint,
                serial_number="01",
                not_before="2026-01-01T00:00:00Z",
                not_after="2027-01-01T00:00:00Z",
                issuer="CN=Station ICA",
            )
        else:
            parts["symmetric_key"] = SymmetricKeyIdentity(group_key="group-1")
        return IdentityManifest(
            registration_id=reg,
            device_id=reg,
            attestation=attestation,
            board=BoardInfo(
                serial=serial, model="M1", hardware_revision="B", firmware_version="1.0"
            ),
            product="thermo",
            batch=batch,
            dps=DpsTarget(
                global_endpoint="global.azure-devices-provisioning.net", id_scope="0ne00000001"
            ),
            station="test-station",
            operator="tester",
            provisioned_at="2026-01-02T03:04:05.000000Z",
            **parts,  # type: ignore[arg-type]
        )

    return build
