import json

import jsonschema
import pytest

from station.domain.enrollments import EnrollmentTemplate, individual_enrollment
from station.domain.errors import ValidationError
from station.domain.manifest import Attestation


def _autorest_any(node):
    """Read the swagger as AutoRest does: a bare {"type": "object"} value schema means "any".

    TwinCollection's additionalProperties is {"type": "object"}; the SDKs generated from it take
    any JSON value (DPS's own docs use string tags), so strict JSON Schema would be wrong here.
    """
    if isinstance(node, dict):
        if node.get("additionalProperties") == {"type": "object"}:
            node = {**node, "additionalProperties": {}}
        return {k: _autorest_any(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_autorest_any(v) for v in node]
    return node


@pytest.fixture(scope="module")
def enrollment_schema(shared_dir):
    swagger = json.loads((shared_dir / "testdata/dps/service.json").read_text())
    definitions = _autorest_any(swagger["definitions"])
    schema = {"$ref": "#/definitions/IndividualEnrollment", "definitions": definitions}
    return jsonschema.Draft4Validator(schema)


@pytest.fixture(scope="module")
def sample_ek(shared_dir) -> str:
    samples = json.loads((shared_dir / "testdata/tpm-ek-samples/ek_samples.json").read_text())
    return samples[0]["endorsementKey_base64"]


TEMPLATE = EnrollmentTemplate(
    name="thermo",
    device_id="{product}-{serial}",
    allocation_policy="static",
    iot_hubs=("hub-a.azure-devices.net",),
    iot_edge=True,
    twin_tags={"batch": "{batch}", "site": "plant-1", "revision": "{hardware_revision}"},
    twin_desired={"telemetryInterval": 60, "model": "{model}"},
)


def test_tpm_enrollment_carries_the_ek_and_validates_against_the_swagger(
    make_manifest, sample_ek, enrollment_schema
) -> None:
    manifest = make_manifest("SN7", attestation=Attestation.TPM, ek=sample_ek)
    body = individual_enrollment(manifest, TEMPLATE)
    enrollment_schema.validate(body)
    # the validator is not vacuous: a wrong enum or type is refused
    assert not enrollment_schema.is_valid({**body, "provisioningStatus": "on"})
    assert not enrollment_schema.is_valid({**body, "capabilities": {"iotEdge": "yes"}})
    assert body["attestation"] == {"type": "tpm", "tpm": {"endorsementKey": sample_ek}}
    assert body["registrationId"] == manifest.registration_id
    assert body["deviceId"] == "thermo-SN7"
    assert body["iotHubs"] == ["hub-a.azure-devices.net"]
    assert body["capabilities"] == {"iotEdge": True}
    assert body["initialTwin"] == {
        "tags": {"batch": "WO-1", "site": "plant-1", "revision": "B"},
        "properties": {"desired": {"telemetryInterval": 60, "model": "M1"}},
    }


def test_x509_enrollment_uses_client_certificates(make_manifest, enrollment_schema) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    manifest = make_manifest(
        "SN8", attestation=Attestation.X509, certificate_pem=pem, thumbprint="ab" * 32
    )
    body = individual_enrollment(manifest, EnrollmentTemplate(name="plain"))
    enrollment_schema.validate(body)
    assert body["attestation"]["x509"]["clientCertificates"]["primary"]["certificate"] == pem
    assert body["allocationPolicy"] == "hashed"
    assert "initialTwin" not in body and "iotHubs" not in body


def test_symmetric_keys_leave_only_when_the_template_allows(
    make_manifest, enrollment_schema
) -> None:
    manifest = make_manifest("SN9")
    with pytest.raises(ValidationError, match="does not allow symmetric keys"):
        individual_enrollment(manifest, EnrollmentTemplate(name="plain"), symmetric_keys=("a", "b"))
    pushing = EnrollmentTemplate(name="push", symmetric_keys="push")
    with pytest.raises(ValidationError, match="must be derived"):
        individual_enrollment(manifest, pushing)
    body = individual_enrollment(manifest, pushing, symmetric_keys=("cHJpbWFyeQ==", "c2Vjb25kYXJ5"))
    enrollment_schema.validate(body)
    assert body["attestation"]["symmetricKey"] == {
        "primaryKey": "cHJpbWFyeQ==",
        "secondaryKey": "c2Vjb25kYXJ5",
    }


def test_custom_allocation_definition(make_manifest, enrollment_schema) -> None:
    template = EnrollmentTemplate(
        name="custom", allocation_policy="custom", custom_webhook_url="https://alloc.example/api"
    )
    body = individual_enrollment(make_manifest("SN1", attestation=Attestation.TPM), template)
    enrollment_schema.validate(body)
    assert body["customAllocationDefinition"] == {
        "webhookUrl": "https://alloc.example/api",
        "apiVersion": "2021-10-01",
    }


def test_voided_identities_are_never_enrolled(make_manifest) -> None:
    import dataclasses

    from station.domain.states import DeviceStatus

    voided = dataclasses.replace(
        make_manifest("SN1", attestation=Attestation.TPM), status=DeviceStatus.VOIDED
    )
    with pytest.raises(ValidationError, match="voided"):
        individual_enrollment(voided, TEMPLATE)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"provisioning_status": "on"}, "provisioning_status"),
        ({"allocation_policy": "random"}, "allocation_policy"),
        ({"allocation_policy": "static"}, "exactly one hub"),
        ({"allocation_policy": "custom", "custom_webhook_url": "http://x"}, "https webhook"),
        (
            {
                "allocation_policy": "custom",
                "custom_webhook_url": "https://x",
                "custom_api_version": "2017-01-01",
            },
            "or newer",
        ),
        ({"custom_webhook_url": "https://x"}, "needs allocation_policy"),
        ({"device_id": "{secret}"}, "unknown placeholders"),
        ({"twin_tags": {"a": "{nope}"}}, "twin.a uses unknown"),
        ({"twin_desired": {"ratio": 0.5}}, "floats"),
        ({"symmetric_keys": "file"}, "symmetric_keys"),
    ],
)
def test_bad_templates_are_refused(kwargs, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        EnrollmentTemplate(name="t", **kwargs)
    assert fragment in info.value.message


def test_csv_cells_from_outside_are_neutralised_against_formulas(make_manifest) -> None:
    import dataclasses

    from station.domain.enrollments import csv_row, csv_text

    manifest = make_manifest("SN9")
    board = dataclasses.replace(manifest.board, model='=HYPERLINK("http://evil","x")')
    row = csv_row(dataclasses.replace(manifest, board=board, batch="+cmd|' /C calc'!A0"), TEMPLATE)
    assert row["model"] == '\'=HYPERLINK("http://evil","x")'
    assert row["batch"] == "'+cmd|' /C calc'!A0"
    assert row["serial"] == "SN9"
    assert [csv_text(v) for v in ("-1", "@x", "\tx", "ok")] == ["'-1", "'@x", "'\tx", "ok"]


@pytest.mark.parametrize(
    "template",
    [
        TEMPLATE,
        EnrollmentTemplate(name="plain"),
        EnrollmentTemplate(
            name="custom",
            device_id="{serial}",
            allocation_policy="custom",
            custom_webhook_url="https://alloc.example/api",
            twin_tags={"station": "{station}", "braces": "{{literal}}", "ü": "{model}"},
            twin_desired={"nested": {"list": ["{batch}", 1, True, None]}},
        ),
        EnrollmentTemplate(name="fixed-twin", twin_tags={"site": "plant-1"}, iot_edge=True),
    ],
    ids=lambda template: template.name,
)
def test_the_bulk_encoder_writes_exactly_what_json_dumps_writes(make_manifest, template) -> None:
    import dataclasses

    from station.domain.enrollments import EnrollmentEncoder, export_enrollment
    from station.domain.manifest import OperationalCertificate

    tpm = make_manifest(
        "SN-Ü1", registration_id="dev-u1", attestation=Attestation.TPM, ek='AA"\\/é'
    )
    assert tpm.tpm is not None
    manifests = [
        tpm,
        dataclasses.replace(tpm, tpm=dataclasses.replace(tpm.tpm, storage_root_key="U1JL")),
        make_manifest("SN2", attestation=Attestation.X509, certificate_pem="-----PEM\n\t-----"),
        make_manifest("SN3", batch="WO-\u2028"),
        make_manifest("SN4", attestation=Attestation.TPM, batch="WO-2"),
        dataclasses.replace(
            tpm,
            operational_certificate=OperationalCertificate(
                credential_policy="lab-policy", public_key_sha256="ab" * 32
            ),
        ),
    ]
    encoder = EnrollmentEncoder(template)
    for manifest in manifests:
        body = export_enrollment(manifest, template)
        expected = None if body is None else json.dumps(body, sort_keys=True)
        assert encoder.encode(manifest.to_dict()) == expected


def test_a_device_that_can_renew_names_its_credential_policy(make_manifest) -> None:
    from dataclasses import replace

    from station.domain.enrollments import comparable
    from station.domain.manifest import OperationalCertificate

    manifest = replace(
        make_manifest("SN0009", attestation=Attestation.TPM, ek="AAAA"),
        operational_certificate=OperationalCertificate(
            credential_policy="lab-policy", public_key_sha256="ab" * 32
        ),
    )
    body = individual_enrollment(manifest, TEMPLATE)

    assert body["credentialPolicyName"] == "lab-policy"
    assert comparable(body)["credentialPolicyName"] == "lab-policy"
    without = individual_enrollment(make_manifest("SN0009", attestation=Attestation.TPM), TEMPLATE)
    assert "credentialPolicyName" not in without
    # the manifest round-trips with its section, and the section changes its digest
    again = type(manifest).from_dict(json.loads(manifest.canonical()))
    assert (
        again == manifest
        and again.digest() != replace(manifest, operational_certificate=None).digest()
    )
