"""Fixed identity records for label tests (the golden record is the first one)."""

from __future__ import annotations

from station.domain.manifest import (
    Attestation,
    BoardInfo,
    DpsTarget,
    IdentityManifest,
    SymmetricKeyIdentity,
    TpmIdentity,
    X509Identity,
)
from station.domain.records import DeviceRecord
from station.domain.states import DeviceStatus

# A 128-character registration ID (the DPS maximum) that uses every allowed character class.
LONGEST_ID = ("sym-" + "0123456789abcdefghijklmnopqrstuvwxyz.:_-" * 4)[:127] + "z"
# A 64-character one: the longest an X.509 certificate CN allows.
LONGEST_X509_ID = ("x509-" + "abcdefghij0123456789" * 4)[:63] + "9"
TPM_ID = "mfrwg33vnz2xi3ltmvzxiltemv3gszlfnfzgk2lemvzxiltemv3g"  # 52 chars, like the SDKs derive

assert len(LONGEST_ID) == 128 and len(LONGEST_X509_ID) == 64 and len(TPM_ID) == 52


def tpm_manifest(
    registration_id: str = TPM_ID,
    *,
    serial: str = "SN-2026-000123",
    batch: str = "WO-4711",
    provisioned_at: str = "2026-11-26T08:15:00Z",
    status: DeviceStatus = DeviceStatus.PROVISIONED,
) -> IdentityManifest:
    return IdentityManifest(
        registration_id=registration_id,
        device_id=registration_id,
        attestation=Attestation.TPM,
        board=BoardInfo(serial=serial, model="EdgeSense-T2", hardware_revision="B"),
        product="edgesense",
        batch=batch,
        dps=DpsTarget("global.azure-devices-provisioning.net", "0ne00ABCDEF"),
        station="station-07",
        operator="alice",
        provisioned_at=provisioned_at,
        status=status,
        tpm=TpmIdentity(endorsement_key="AAEAAQ==", ek_sha256="3f" * 32),
    )


def x509_manifest(
    registration_id: str = LONGEST_X509_ID, *, serial: str = "X-000042"
) -> IdentityManifest:
    return IdentityManifest(
        registration_id=registration_id,
        device_id=registration_id,
        attestation=Attestation.X509,
        board=BoardInfo(serial=serial, model="EdgeSense-X"),
        product="edgesense",
        batch="WO-4711",
        dps=DpsTarget("global.azure-devices-provisioning.net", "0ne00ABCDEF"),
        station="station-07",
        operator="alice",
        provisioned_at="2026-11-26T08:20:00Z",
        x509=X509Identity(
            certificate_pem="-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
            thumbprint_sha256="AB" * 32,
            serial_number="01AF",
            not_before="2026-11-26T00:00:00Z",
            not_after="2036-11-26T00:00:00Z",
            issuer="CN=station-07 intermediate",
        ),
    )


def symmetric_manifest(
    registration_id: str = LONGEST_ID, *, serial: str = "SYM-000000000001"
) -> IdentityManifest:
    return IdentityManifest(
        registration_id=registration_id,
        device_id=registration_id,
        attestation=Attestation.SYMMETRIC_KEY,
        board=BoardInfo(serial=serial, model="EdgeSense-S"),
        product="edgesense",
        batch="WO-4711",
        dps=DpsTarget("global.azure-devices-provisioning.net", "0ne00ABCDEF"),
        station="station-07",
        operator="alice",
        provisioned_at="2026-11-26T09:01:00Z",
        symmetric_key=SymmetricKeyIdentity(group_key="edgesense-group"),
    )


def device_record(manifest: IdentityManifest, *, event_seq: int = 1) -> DeviceRecord:
    return DeviceRecord.from_manifest(
        manifest,
        event_seq=event_seq,
        created_at=manifest.provisioned_at,
        updated_at=manifest.provisioned_at,
    )
