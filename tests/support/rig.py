"""Provisioning rig: a real station (SQLite file, SoftHSM2 CA + group key, lab root) and a lab of
virtual boards (ptys, swtpm), with batches for every lab product and a technician logged in.

Used by tests/provision, tests/poweron and tests/gui (registered once by tests/conftest.py)."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from hsm.softhsm import SoftHsmToken, activate, create_token
from station.bootstrap import Station, build_station
from station.config import StationConfig, load_config
from station.domain.provision_events import ProvisionEvent
from station.domain.records import Role
from station.services.integrity import verify_store
from station.services.provision import ProvisionOutcome, ProvisionRequest
from station_lab.boards.runner import LabBoards
from tests.support.clocks import SteadyClock
from tests.support.paths import REPO_ROOT

PIN = "1234"
GROUP_KEY_URI = "pkcs11:token=station-ca;object=lab-group-key"
#: the group key of product lab-opcert (its own DPS group, so its own key)
OPC_GROUP_KEY_URI = "pkcs11:token=station-ca;object=lab-opcert-group-key"
#: batch name -> product (sized with room for retries)
BATCHES = {
    "WO-X509": "lab-x509",
    "WO-NOKEY": "lab-nokey",
    "WO-SYM": "lab-sym",
    "WO-TPM": "lab-tpm",
    "WO-OPC": "lab-opcert",
}


@dataclass
class Rig:
    """A provisioned-ready station, its config file and its lab."""

    config_file: Path
    config: StationConfig
    lab: LabBoards
    token: SoftHsmToken
    clock: SteadyClock
    stations: list[Station] = field(default_factory=list)

    def station(self) -> Station:
        built = build_station(self.config, clock=self.clock)
        self.stations.append(built)
        return built

    def run(
        self,
        port: str,
        batch: str,
        *,
        slot: str = "s1",
        operator: str = "tina",
        rework: str = "",
        serial: str = "",
        passed_serial: str = "",
        events: list[ProvisionEvent] | None = None,
    ) -> ProvisionOutcome:
        """Provision the board on ``port`` with a fresh station (as a new CLI run would)."""
        station = self.station()
        try:
            link = station.board_session(port, handshake=False)
            sink = events if events is not None else []
            return station.provisioning().run(
                link,
                ProvisionRequest(
                    slot=slot,
                    batch=batch,
                    operator=operator,
                    rework_reason=rework,
                    serial=serial,
                    passed_serial=passed_serial,
                ),
                emit=sink.append,
            )
        finally:
            station.close()
            self.stations.remove(station)

    def verify(self) -> None:
        """``station db verify`` must pass."""
        station = self.station()
        try:
            report = verify_store(station.store())
            assert report.ok, [str(p) for p in report.problems]
        finally:
            station.close()
            self.stations.remove(station)

    def env(self) -> dict[str, str]:
        """Environment for a station subprocess (the CLI, a crash script)."""
        env = dict(os.environ)
        env.update(
            {
                "STATION_CONFIG": str(self.config_file),
                "STATION_PKCS11_PIN": PIN,
                "SOFTHSM2_CONF": str(self.token.conf),
                "QT_QPA_PLATFORM": "offscreen",
                "TSS2_LOG": "all+none",
            }
        )
        return env


def write_config(tmp_path: Path, lab_dir: Path) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(
        "[station]\n"
        'id = "line-1"\n'
        f'data_dir = "{tmp_path / "data"}"\n'
        "[board]\n"
        "baud = 0\n"
        "timeout_s = 5.0\n"
        "slow_timeout_s = 60.0\n"
        f'slots_file = "{tmp_path / "slots.toml"}"\n'
        "[lab]\n"
        f'dir = "{lab_dir}"\n'
        "[tpm]\n"
        "trust_lab_ca = true\n"
        "[labels]\n"
        f'output_dir = "{tmp_path / "labels"}"\n',
        encoding="utf-8",
    )
    return path


def new_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, firmware: str = "python") -> Rig:
    """A SoftHSM2 token (activated for this test), the station config and an unstarted lab.

    ``firmware`` picks the lab boards: ``python`` (the reference) or ``c`` (the C agent).
    """
    token = create_token(tmp_path / "softhsm", "station-ca", pin=PIN)
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    monkeypatch.setenv("STATION_PKCS11_PIN", PIN)
    activate(token.conf)
    lab_dir = tmp_path / "lab"
    config_file = write_config(tmp_path, lab_dir)
    config = load_config(config_file, env={})
    lab = LabBoards(lab_dir, baud=0, registry=config.lab_registry, firmware=firmware)
    return Rig(config_file, config, lab, token, SteadyClock())


#: Parametrize a test over both board firmwares: ``@BOTH_FIRMWARES`` on a test using ``rig``.
BOTH_FIRMWARES = pytest.mark.parametrize("rig", ["python", "c"], indirect=True)


@pytest.fixture
def rig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Rig]:
    built = new_rig(tmp_path, monkeypatch, getattr(request, "param", "python"))
    token = built.token
    try:
        admin = built.station()
        admin.database().initialize(config_file="c", data_dir="d", admin="boss", operator="boss")
        ca = admin.ca()
        ca.init(
            token.uri("station-ca-key"),
            common_name="Line 1 CA",
            organization="ACME",
            operator="boss",
        )
        ca.lab_root(operator="boss")
        for uri in (GROUP_KEY_URI, OPC_GROUP_KEY_URI):
            ca.import_group_key(
                uri, base64.b64encode(secrets.token_bytes(32)).decode(), operator="boss"
            )
        admin.operators().add("tina", Role.TECHNICIAN, operator="boss")
        admin.operators().add("quinn", Role.QA, pin="246802", operator="boss")
        for name, product in BATCHES.items():
            admin.batches().open(name=name, product=product, size=40, operator="boss")
        admin.close()
        built.stations.remove(admin)
        yield built
    finally:
        for station in built.stations:
            station.close()
        built.lab.stop()


@pytest.fixture
def root_pem(rig: Rig) -> bytes:
    return (rig.config.data_dir / "ca" / "root.pem").read_bytes()


def openssl_verify(tmp_path: Path, root_pem: bytes, chain_der: bytes) -> None:
    """The chain a board holds (DER certs, leaf first) verifies against the lab root."""
    certs = split_der(chain_der)
    from cryptography.hazmat.primitives.serialization import Encoding

    (tmp_path / "root.pem").write_bytes(root_pem)
    (tmp_path / "untrusted.pem").write_bytes(
        b"".join(c.public_bytes(Encoding.PEM) for c in certs[1:])
    )
    (tmp_path / "leaf.pem").write_bytes(certs[0].public_bytes(Encoding.PEM))
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-x509_strict",
            "-purpose",
            "sslclient",
            "-CAfile",
            str(tmp_path / "root.pem"),
            "-untrusted",
            str(tmp_path / "untrusted.pem"),
            str(tmp_path / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def split_der(blob: bytes) -> list[x509.Certificate]:
    """Split concatenated DER certificates."""
    certs = []
    offset = 0
    while offset < len(blob):
        length, header = _der_length(blob, offset)
        end = offset + header + length
        certs.append(x509.load_der_x509_certificate(blob[offset:end]))
        offset = end
    return certs


def _der_length(blob: bytes, offset: int) -> tuple[int, int]:
    first = blob[offset + 1]
    if first < 0x80:
        return first, 2
    count = first & 0x7F
    return int.from_bytes(blob[offset + 2 : offset + 2 + count], "big"), 2 + count


@pytest.fixture
def board_state() -> Callable[..., Any]:
    """Read a lab board's objects straight through a fresh session (what the board holds)."""
    from station.adapters.board.session import open_session

    def read(port: str) -> dict[str, Any]:
        session = open_session(port, timeout_s=5.0, slow_timeout_s=60.0, retries=3)
        try:
            info = session.hello()
            objects: dict[str, Any] = {"hello": info}
            for name in ("cert_chain", "dps", "symkey", "privkey"):
                try:
                    objects[name] = session.read(name)
                except Exception:  # not_found / unsupported: absent
                    objects[name] = None
            return objects
        finally:
            session.close()

    return read


def kill_station_at(rig: Rig, port: str, batch: str, point: str) -> None:
    """Run the station on ``port`` in a child process that SIGKILLs itself at ``point``."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.provision.crash_run", port, batch, point],
        cwd=REPO_ROOT,
        env=rig.env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == -9, result.stdout + result.stderr[-2000:]
