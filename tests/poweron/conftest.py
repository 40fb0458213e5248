"""Power-on rig: a real station (SQLite, SoftHSM2 CA + lab root + a known group key), lab boards
provisioned by the real workflow, and a running lab DPS whose enrollments the tests create with
the official service client, the way a cloud operator would."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station.domain.records import Role
from station_lab.dps import DpsOptions, LocalDps
from tests.support.poweron import HUBS, PowerRig
from tests.support.rig import BATCHES, GROUP_KEY_URI, new_rig


@pytest.fixture(autouse=True)
def _quiet_tss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSS2_LOG", "all+none")


@pytest.fixture
def power(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PowerRig]:
    rig = new_rig(tmp_path, monkeypatch)
    token, lab, lab_dir = rig.token, rig.lab, rig.lab.lab_dir
    group_key = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    options = DpsOptions(
        state_dir=lab_dir / "dps", linked_hubs=HUBS, retry_after_s=0.01, rate_limit=0
    )
    try:
        admin = rig.station()
        admin.database().initialize(config_file="c", data_dir="d", admin="boss", operator="boss")
        ca = admin.ca()
        ca.init(
            token.uri("station-ca-key"),
            common_name="Line 1 CA",
            organization="ACME",
            operator="boss",
        )
        ca.lab_root(operator="boss")
        ca.import_group_key(GROUP_KEY_URI, group_key, operator="boss")
        admin.operators().add("tina", Role.TECHNICIAN, operator="boss")
        for name, product in BATCHES.items():
            admin.batches().open(name=name, product=product, size=10, operator="boss")
        admin.close()
        rig.stations.remove(admin)
        with (
            LocalDps(options) as dps,
            DeviceProvisioningClient.from_connection_string(
                dps.connection_string(), connection_verify=str(dps.ca_bundle)
            ) as service,
        ):
            yield PowerRig(rig, dps, service, group_key)
    finally:
        for station in rig.stations:
            station.close()
        lab.stop()
