"""The QA panel's pieces on recorded values: chain trees per attestation, allowed actions."""

from __future__ import annotations

from PySide6.QtWidgets import QTreeWidget

from station.domain.manifest import Attestation
from station.domain.records import CertificateRecord, DeviceRecord, LabelRecord, Role
from station.domain.states import DeviceStatus
from station.gui.qa_view import DetailView, allowed_actions, fill_chain, grouped, identity_rows
from station.services.devices import DeviceDetail


def _device(make_manifest, attestation: Attestation, status: str = "provisioned") -> DeviceRecord:
    manifest = make_manifest("SN9", attestation=attestation, thumbprint="ab" * 32)
    return DeviceRecord(
        registration_id=manifest.registration_id,
        serial="SN9",
        batch="WO-1",
        product=manifest.product,
        attestation=str(attestation),
        status=DeviceStatus(status),
        ek_sha256="cd" * 32 if attestation is Attestation.TPM else "",
        cert_thumbprint="ab" * 32 if attestation is Attestation.X509 else "",
        manifest_json=manifest.canonical().decode(),
        manifest_hash="00",
        event_seq=1,
        created_at="2026-01-02T03:04:05.123456Z",
        updated_at="2026-01-02T03:04:05.123456Z",
    )


def _texts(tree: QTreeWidget) -> list[list[str]]:
    rows, pending = [], [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    while pending:
        item = pending.pop(0)
        rows.append([item.text(c) for c in range(tree.columnCount())])
        pending += [item.child(i) for i in range(item.childCount())]
    return rows


def test_the_chain_tree_says_what_each_attestation_holds(qtbot, make_manifest):
    tree = QTreeWidget()
    tree.setColumnCount(4)
    qtbot.addWidget(tree)
    manifest = {
        "tpm": {
            "ek_origin": "found",
            "ek_certificate_status": "trusted",
            "ek_certificate_vendor": "Infineon",
        }
    }
    tpm = DetailView(DeviceDetail(_device(make_manifest, Attestation.TPM), (), (), ()), b"")
    fill_chain(tree, tpm, manifest)
    assert _texts(tree) == [
        ["TPM endorsement key (found)", "", "", ""],
        ["EK certificate (Infineon)", "", "", "trusted"],
    ]
    sym = DetailView(
        DeviceDetail(_device(make_manifest, Attestation.SYMMETRIC_KEY), (), (), ()), b""
    )
    fill_chain(tree, sym, {"symmetric_key": {"group_key": "group-1"}})
    assert _texts(tree) == [["No certificate: key derived from group key 'group-1'", "", "", ""]]

    # a certificate from a CA that is no longer installed: its issuer is named, not guessed
    cert = CertificateRecord(
        serial_number="0A", registration_id="dev-sn9", thumbprint_sha256="ab" * 32,
        certificate_pem="", not_before="2026-01-01T00:00:00Z", not_after="2027-01-01T00:00:00Z",
        profile="device-identity", status="voided", issued_at="2026-01-01T00:00:00Z",
        void_reason="rework",
    )  # fmt: skip
    x509 = DetailView(DeviceDetail(_device(make_manifest, Attestation.X509), (cert,), (), ()), b"")
    fill_chain(tree, x509, {"x509": {"issuer": "CN=Old Station ICA"}})
    assert _texts(tree) == [
        ["CN=Old Station ICA (not the installed CA certificate)", "", "", ""],
        ["CN=dev-sn9 (device)", "2026-01-01", "2027-01-01", "voided: rework"],
    ]


def test_actions_follow_the_role_and_the_device_state(make_manifest):
    device = _device(make_manifest, Attestation.X509)
    fresh = DeviceDetail(device, (), (), ())
    label = LabelRecord("dev-sn9", "device-50x25", "file:", "print", "quinn", "2026-01-02")
    labelled = DeviceDetail(device, (), (label,), ())
    voided = DeviceDetail(_device(make_manifest, Attestation.X509, "voided"), (), (label,), ())
    assert allowed_actions(Role.QA, None) == {"void"}
    assert allowed_actions(Role.QA, fresh) == {"print", "rework", "void"}
    assert allowed_actions(Role.ADMIN, labelled) == {"reprint", "rework", "void"}
    assert allowed_actions(Role.QA, voided) == {"void"}
    # the permission table's: voiding a job is everyone's; reprint and rework are QA's
    assert allowed_actions(Role.TECHNICIAN, fresh) == {"print", "void"}
    assert allowed_actions(Role.TECHNICIAN, labelled) == {"void"}
    assert allowed_actions(None, fresh) == set()  # locked: nobody acts


def test_identity_rows_read_the_manifest(make_manifest):
    device = _device(make_manifest, Attestation.TPM)
    rows = identity_rows(
        device,
        {
            "provisioned_at": "2026-01-02T03:04:05.1Z",
            "operator": "tina",
            "station": "line-1",
            "dps": {"global_endpoint": "g", "id_scope": ""},
        },
    )
    assert rows["provisioned"] == "2026-01-02 03:04:05 by tina at station line-1"
    assert rows["dps"] == "g, ID scope not set"
    assert rows["fingerprint"] == f"EK SHA-256 {grouped('cd' * 32)}"
    assert grouped("cd" * 32).split() == ["cd" * 8] * 4
