"""The power-on tests' rig: provisioned lab boards, the lab DPS and its service client.

The fixture that builds it (``power``) is in ``tests/poweron/conftest.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.iot.deviceprovisioning import DeviceProvisioningClient
from cryptography.hazmat.primitives.serialization import Encoding

from station.domain.enrollments import (
    EnrollmentTemplate,
    individual_enrollment,
    symmetric_key_group,
    x509_ca_group,
)
from station_lab.boards.runner import LabBoard, LabBoards
from station_lab.dps import LinkedHub, LocalDps
from tests.support.rig import Rig, split_der

HUBS = (LinkedHub("hub-east.azure-devices.net"), LinkedHub("hub-west.azure-devices.net"))
HUB_NAMES = {hub.host_name for hub in HUBS}
ENABLED = EnrollmentTemplate(name="poweron")
DISABLED = EnrollmentTemplate(name="poweron-off", provisioning_status="disabled")


@dataclass
class PowerRig:
    """The provisioning rig, the lab DPS (state in ``<lab dir>/dps``) and the HSM's group key."""

    rig: Rig
    dps: LocalDps
    service: DeviceProvisioningClient
    group_key: str

    @property
    def lab(self) -> LabBoards:
        return self.rig.lab

    def provision(self, kind: str, batch: str) -> tuple[LabBoard, str]:
        """Start a board of ``kind``, provision it into ``batch``; return it and its reg ID."""
        (board,) = self.lab.start(1, kind)
        outcome = self.rig.run(board.port, batch)
        assert outcome.passed, outcome
        return board, outcome.registration_id

    def manifest(self, registration_id: str) -> Any:
        station = self.rig.station()
        try:
            device = station.store().devices.get(registration_id)
            assert device is not None
            return device.manifest()
        finally:
            station.close()
            self.rig.stations.remove(station)

    def enroll(self, registration_id: str, template: EnrollmentTemplate = ENABLED) -> None:
        """Individual enrollment from the station's record (TPM EK or X.509 leaf)."""
        body = individual_enrollment(self.manifest(registration_id), template)
        self.service.enrollment.create_or_update(id=registration_id, enrollment=body)

    def enroll_symmetric_group(self, group_id: str = "lab-sym") -> None:
        """A symmetric-key group holding the same group key the station's HSM holds."""
        body = symmetric_key_group(group_id, ENABLED)
        body["attestation"]["symmetricKey"] = {"primaryKey": self.group_key}
        self.service.enrollment_group.create_or_update(id=group_id, enrollment_group=body)

    def enroll_x509_group(self, chain_der: bytes, group_id: str = "lab-x509") -> None:
        """An X.509 group naming the station intermediate, uploaded and verified as a CA."""
        intermediate = split_der(chain_der)[1].public_bytes(Encoding.PEM).decode("ascii")
        self.dps.add_ca_certificate("station-ica", intermediate)
        body = x509_ca_group(group_id, ENABLED, ca_reference="station-ica")
        self.service.enrollment_group.create_or_update(id=group_id, enrollment_group=body)

    def power_on(self, board: LabBoard) -> Any:
        host, port = self.dps.port_map
        return self.lab.power_on(
            board.index,
            endpoint=self.dps.host_name,
            ca_bundle=self.dps.ca_bundle,
            timeout_s=60,
            port_map=f"{host}:{port}",
        )
