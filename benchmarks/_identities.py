"""Shared by bench_push and bench_export: a station in a temp dir with N recorded TPM identities."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from tpm2_pytss.types import TPM2B_PUBLIC

from station.bootstrap import Station, build_station
from station.config import load_config
from station.domain.manifest import Attestation, BoardInfo, DpsTarget, IdentityManifest, TpmIdentity
from station.services.identities import record_identity

_EK_POLICY = bytes.fromhex("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa")


def _ek_template() -> bytes:
    public = TPM2B_PUBLIC.parse(
        "rsa2048:aes128cfb",
        objectAttributes="fixedtpm|fixedparent|sensitivedataorigin|adminwithpolicy|restricted|decrypt",
    )
    public.publicArea.authPolicy = _EK_POLICY
    public.publicArea.unique.rsa = os.urandom(256)
    return bytes(public.marshal())


_TEMPLATE = _ek_template()


def ek(index: int) -> str:
    """A structurally valid RSA-2048 EK (TCG template) unique to ``index``."""
    unique = (index.to_bytes(8, "big") + hashlib.sha256(index.to_bytes(8, "big")).digest() * 8)[
        :256
    ]
    return base64.b64encode(_TEMPLATE[:-256] + unique).decode("ascii")


def station_in(directory: Path, dps_lines: str = "") -> Station:
    """A station with its data in ``directory``, initialised with the admin 'boss'."""
    config = directory / "station.toml"
    config.write_text(
        f'[station]\nid = "bench-station"\ndata_dir = "{directory / "data"}"\n[dps]\n{dps_lines}',
        encoding="utf-8",
    )
    station = build_station(load_config(config, env={}))
    station.database().initialize(
        config_file=str(config), data_dir="data", admin="boss", operator="boss"
    )
    return station


def fill(station: Station, batch: str, count: int) -> None:
    """Open ``batch`` and record ``count`` TPM identities through record_identity."""
    station.batches().open(name=batch, product="lab-tpm", size=count, operator="boss")
    store = station.store()
    for start in range(0, count, 5000):
        with store:
            for index in range(start, min(start + 5000, count)):
                serial = f"{batch.lower()}-{index:07d}"
                rid = f"dev-{serial}"
                manifest = IdentityManifest(
                    registration_id=rid,
                    device_id=rid,
                    attestation=Attestation.TPM,
                    board=BoardInfo(serial=serial, model="M1", hardware_revision="B"),
                    product="lab-tpm",
                    batch=batch,
                    dps=DpsTarget("global.azure-devices-provisioning.net", "0ne00000001"),
                    station="bench-station",
                    operator="boss",
                    provisioned_at="2026-11-26T00:00:00.000000Z",
                    tpm=TpmIdentity(
                        endorsement_key=ek(index),
                        ek_sha256=hashlib.sha256(serial.encode()).hexdigest(),
                    ),
                )
                record_identity(
                    store, manifest, clock=station.clock, station="bench-station", operator="boss"
                )
