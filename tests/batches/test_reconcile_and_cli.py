"""Reconcile against DPS, symmetric keys derived in SoftHSM2 at push time, and the CLI flow."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from station.cli.main import main
from station.domain.errors import EnrollmentServiceError
from station.domain.manifest import Attestation
from tests.support.cloud import _client, dps_ids

_SYM = {"attestation": {"type": "symmetricKey"}}


def test_reconcile_names_missing_different_and_extra_and_repushes(cloud, dps, fill_batch) -> None:
    ids = fill_batch(cloud, "WO-RC", 6)
    cloud.batches().seal("WO-RC", operator="boss")
    cloud.batches().push("WO-RC", operator="boss")
    with _client(dps) as client:
        client.enrollment.delete(id=ids[0])
        changed = client.enrollment.get(ids[1])
        changed["provisioningStatus"] = "disabled"
        client.enrollment.create_or_update(id=ids[1], enrollment=changed, if_match=changed["etag"])
        extra = {
            "registrationId": "intruder-1",
            "attestation": {"type": "symmetricKey"},
            "initialTwin": {"tags": {"batch": "WO-RC"}, "properties": {"desired": {}}},
        }
        client.enrollment.create_or_update(id="intruder-1", enrollment=extra)
        client.enrollment.create_or_update(
            id="unrelated-1",
            enrollment={"registrationId": "unrelated-1", "attestation": {"type": "symmetricKey"}},
        )
    report = cloud.batches().reconcile("WO-RC", operator="boss")
    found = {i.registration_id: (str(i.status), i.differences) for i in report.items}
    assert found[ids[0]] == ("missing", ())
    assert found[ids[1]] == ("different", ("provisioningStatus",))
    assert found["intruder-1"] == ("extra", ())
    assert "unrelated-1" not in found
    assert report.counts == {"equal": 4, "missing": 1, "different": 1, "extra": 1}
    assert not report.clean and cloud.store().batches.get("WO-RC").status == "pushed"
    repaired = cloud.batches().reconcile("WO-RC", repush_missing=True, operator="boss")
    assert repaired.repushed == 1
    assert repaired.counts == {"equal": 5, "different": 1, "extra": 1}
    assert ids[0] in dps_ids(dps)


def test_symmetric_keys_are_derived_in_the_hsm_at_push_time(
    sym_cloud, dps, fill_batch, sym_push_templates
) -> None:
    _, group_key = sym_push_templates
    ids = fill_batch(
        sym_cloud, "WO-SK", 3, product="lab-sym-push", attestation=Attestation.SYMMETRIC_KEY
    )
    sym_cloud.batches().seal("WO-SK", operator="boss")
    summary = sym_cloud.batches().push("WO-SK", operator="boss")
    assert summary.pushed == 3
    with _client(dps) as client:
        for rid in ids:
            # keys are shown only by attestationmechanism, as in real DPS
            assert client.enrollment.get(rid)["attestation"] == {"type": "symmetricKey"}
            keys = client.enrollment.get_attestation_mechanism(rid)["symmetricKey"]
            derived = hmac.new(group_key, rid.encode(), hashlib.sha256).digest()
            assert keys["primaryKey"] == base64.b64encode(derived).decode()
    assert sym_cloud.batches().reconcile("WO-SK", operator="boss").clean
    exported = sym_cloud.batches().export("WO-SK", formats=("bulk-json", "csv"), operator="boss")
    for path in exported.files.values():
        assert "primaryKey" not in path.read_text()


def test_cli_open_seal_export_push_reconcile(
    cloud_config_file, cloud, dps, make_manifest, capsys
) -> None:
    base = ["--config", str(cloud_config_file), "--operator", "boss"]
    assert main([*base, "batch", "open", "WO-CLI", "--product", "lab-tpm", "--size", "2"]) == 0
    # the spelling, with --name, works too; giving the name twice does not
    assert (
        main([*base, "batch", "open", "--name", "WO-CLI2", "--product", "lab-tpm", "--size", "2"])
        == 0
    )
    assert (
        main(
            [
                *base,
                "batch",
                "open",
                "WO-X",
                "--name",
                "WO-Y",
                "--product",
                "lab-tpm",
                "--size",
                "2",
            ]
        )
        == 2
    )
    from station.services.identities import record_identity
    from tests.support.cloud import fast_ek

    for index in range(2):
        record_identity(
            cloud.store(),
            make_manifest(
                f"CLI{index}", attestation=Attestation.TPM, batch="WO-CLI", ek=fast_ek(77 + index)
            ),
            clock=cloud.clock,
            station="test-station",
            operator="boss",
        )
    capsys.readouterr()
    assert main([*base, "batch", "list", "--json"]) == 0
    listed = {row["batch"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed["WO-CLI"]["provisioned"] == 2 and listed["WO-CLI2"]["provisioned"] == 0
    assert main([*base, "batch", "seal", "WO-CLI"]) == 0
    assert "sealed batch WO-CLI: 2 devices" in capsys.readouterr().out
    assert main([*base, "batch", "export", "WO-CLI", "--json"]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert set(files) == {"bulk-json", "csv", "manifest"}
    assert main([*base, "batch", "push", "WO-CLI"]) == 0
    out = capsys.readouterr().out
    assert "2/2 pushed, 0 conflicts, 0 failed, 1 billable DPS operations" in out
    assert main([*base, "batch", "reconcile", "WO-CLI", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"equal": 2}
    assert main([*base, "--operator", "nobody", "batch", "push", "WO-CLI"]) == 1
    assert "unknown operator" in capsys.readouterr().err


def test_enrollment_groups_land_in_dps(cloud, dps, fill_batch, pki, tmp_path) -> None:
    fill_batch(cloud, "WO-GS", 1, product="lab-sym", attestation=Attestation.SYMMETRIC_KEY)
    assert cloud.batches().push_groups("WO-GS", operator="boss") == ["lab-sym-sym"]
    # an X.509 product: the group carries the station intermediate from [ca] chain_file
    chain = tmp_path / "data" / "ca" / "chain.pem"
    chain.parent.mkdir(parents=True, exist_ok=True)
    ica = pki.chain_file.read_text().split("-----END CERTIFICATE-----\n")[1]
    chain.write_text(ica + "-----END CERTIFICATE-----\n")
    fill_batch(cloud, "WO-GX", 1, product="lab-x509", attestation=Attestation.X509)
    assert cloud.batches().push_groups("WO-GX", operator="boss") == ["lab-x509-x509"]
    with _client(dps) as client:
        sym = client.enrollment_group.get("lab-sym-sym")
        assert sym["attestation"]["type"] == "symmetricKey"
        assert sym["initialTwin"]["tags"]["batch"] == "WO-GS"
        x509 = client.enrollment_group.get("lab-x509-x509")
        info = x509["attestation"]["x509"]["signingCertificates"]["primary"]["info"]
        assert info["subjectName"] == "CN=Station CA"
    kinds = [e.kind for e in cloud.store().audit.events_for("WO-GX")]
    assert kinds[-1] == "batch.groups_pushed"
    # again (a re-run, or after a crash): DPS answers 409, the station finds its own groups there
    assert cloud.batches().push_groups("WO-GS", operator="boss") == ["lab-sym-sym"]
    assert cloud.batches().push_groups("WO-GX", operator="boss") == ["lab-x509-x509"]
    # a group someone else made under the same ID is not taken for ours
    with _client(dps) as client:
        client.enrollment_group.delete("lab-sym-sym")
        client.enrollment_group.create_or_update(
            id="lab-sym-sym",
            enrollment_group={
                "enrollmentGroupId": "lab-sym-sym",
                **_SYM,
                "allocationPolicy": "static",
                "iotHubs": ["h.azure-devices.net"],
            },
        )
    with pytest.raises(
        EnrollmentServiceError, match="different enrollment group lab-sym-sym"
    ) as info:
        cloud.batches().push_groups("WO-GS", operator="boss")
    assert {"allocationPolicy", "initialTwin", "iotHubs"} <= set(info.value.details["differences"])


def test_a_group_for_operational_certificates_names_the_credential_policy(
    cloud, dps, fill_batch
) -> None:
    fill_batch(cloud, "WO-GO", 1, product="lab-opcert", attestation=Attestation.SYMMETRIC_KEY)

    assert cloud.batches().push_groups("WO-GO", operator="boss") == ["lab-opcert-sym"]

    with _client(dps, "2026-04-01") as client:
        assert client.enrollment_group.get("lab-opcert-sym")["credentialPolicyName"] == "lab-policy"
    assert [e["apiVersion"] for e in dps.access_log() if e["operation"] == "group.put"] == [
        "2026-04-01"
    ]
    # pushed again, DPS's group is found equal, policy included
    assert cloud.batches().push_groups("WO-GO", operator="boss") == ["lab-opcert-sym"]
