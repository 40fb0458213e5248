"""Bulk operations, etag conflicts and query paging through the official client."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError


def _sym(reg_id: str, **extra):
    return {"registrationId": reg_id, "attestation": {"type": "symmetricKey"}, **extra}


def test_bulk_create_with_mixed_success(client, conforms):
    client.enrollment.create_or_update(id="bulk-02", enrollment=_sym("bulk-02"))
    body = {"mode": "create", "enrollments": [_sym(f"bulk-{n:02}") for n in range(5)]}
    conforms("BulkEnrollmentOperation", body)
    result = client.enrollment.run_bulk_operation(body)
    conforms("BulkEnrollmentOperationResult", result)
    assert result["isSuccessful"] is False
    assert result["errors"] == [
        {
            "registrationId": "bulk-02",
            "errorCode": 409201,
            "errorStatus": "Enrollment already exists.",
        }
    ]
    ids = sorted(e["registrationId"] for e in client.enrollment.query({"query": "SELECT *"}))
    assert ids == [f"bulk-{n:02}" for n in range(5)]


def test_bulk_item_validation_errors_are_per_item(client, make_ek):
    body = {
        "mode": "create",
        "enrollments": [
            _sym("good-1"),
            {
                "registrationId": "bad-ek",
                "attestation": {"type": "tpm", "tpm": {"endorsementKey": "AAAA"}},
            },
            _sym("-bad-id"),
            {
                "registrationId": "tpm-ok",
                "attestation": {"type": "tpm", "tpm": {"endorsementKey": make_ek()}},
            },
        ],
    }
    result = client.enrollment.run_bulk_operation(body)
    codes = {e["registrationId"]: e["errorCode"] for e in result["errors"]}
    assert codes == {"bad-ek": 400004, "-bad-id": 400009}
    assert client.enrollment.get("tpm-ok")["registrationId"] == "tpm-ok"


def test_bulk_update_modes_and_delete(client):
    first = client.enrollment.create_or_update(id="upd-1", enrollment=_sym("upd-1"))
    # 'update' of an existing record without its etag is refused per item (as DPS does)
    result = client.enrollment.run_bulk_operation(
        {
            "mode": "update",
            "enrollments": [_sym("upd-1", provisioningStatus="disabled"), _sym("upd-2")],
        }
    )
    assert [e["errorCode"] for e in result["errors"]] == [409201]
    # unchanged: created without a status, which DPS answers as null
    assert client.enrollment.get("upd-2")["provisioningStatus"] is None
    # with the current etag it goes through
    result = client.enrollment.run_bulk_operation(
        {
            "mode": "update",
            "enrollments": [_sym("upd-1", provisioningStatus="disabled", etag=first["etag"])],
        }
    )
    assert result == {"isSuccessful": True, "errors": []}
    current = client.enrollment.get("upd-1")
    assert current["provisioningStatus"] == "disabled"
    # updateIfMatchETag: a stale etag gives 412 per item, the current one succeeds
    result = client.enrollment.run_bulk_operation(
        {"mode": "updateIfMatchETag", "enrollments": [_sym("upd-1", etag=first["etag"])]}
    )
    assert [e["errorCode"] for e in result["errors"]] == [412001]
    result = client.enrollment.run_bulk_operation(
        {"mode": "updateIfMatchETag", "enrollments": [_sym("upd-1", etag=current["etag"])]}
    )
    assert result["isSuccessful"] is True
    result = client.enrollment.run_bulk_operation(
        {"mode": "delete", "enrollments": [_sym("upd-1"), _sym("upd-2"), _sym("never-was")]}
    )
    assert [(e["registrationId"], e["errorCode"]) for e in result["errors"]] == [
        ("never-was", 404201)
    ]
    assert list(client.enrollment.query({"query": "SELECT *"})) == []


def test_bulk_of_more_than_ten_items_is_refused(client, conforms):
    body = {"mode": "create", "enrollments": [_sym(f"many-{n}") for n in range(11)]}
    with pytest.raises(HttpResponseError) as info:
        client.enrollment.run_bulk_operation(body)
    assert info.value.status_code == 400
    error = info.value.response.json()
    conforms("ProvisioningServiceErrorDetails", error)
    assert error["errorCode"] == 400005
    assert list(client.enrollment.query({"query": "SELECT *"})) == []


def test_group_bulk_reports_409202(client, conforms):
    group = {"enrollmentGroupId": "grp-1", "attestation": {"type": "symmetricKey"}}
    client.enrollment_group.create_or_update(id="grp-1", enrollment_group=group)
    body = {"mode": "create", "enrollmentGroups": [group, dict(group, enrollmentGroupId="grp-2")]}
    conforms("BulkEnrollmentGroupOperation", body)
    result = client.enrollment_group.run_bulk_operation(body)
    conforms("BulkEnrollmentGroupOperationResult", result)
    assert result["errors"] == [
        {
            "enrollmentGroupId": "grp-1",
            "errorCode": 409202,
            "errorStatus": "EnrollmentGroup already exists.",
        }
    ]


def test_etag_conflicts(client, conforms):
    created = client.enrollment.create_or_update(id="etag-1", enrollment=_sym("etag-1"))
    with pytest.raises(ResourceExistsError) as info:
        client.enrollment.create_or_update(id="etag-1", enrollment=_sym("etag-1"))
    assert info.value.status_code == 409
    conforms("ProvisioningServiceErrorDetails", info.value.response.json())
    assert info.value.response.headers["x-ms-error-code"] == "409201"

    second = client.enrollment.create_or_update(
        id="etag-1", enrollment=_sym("etag-1"), if_match=created["etag"]
    )
    with pytest.raises(HttpResponseError) as info:  # the first etag is stale now
        client.enrollment.create_or_update(
            id="etag-1", enrollment=_sym("etag-1"), if_match=created["etag"]
        )
    assert info.value.status_code == 412
    with pytest.raises(HttpResponseError) as info:
        client.enrollment.delete("etag-1", if_match=created["etag"])
    assert info.value.status_code == 412
    assert client.enrollment.get("etag-1")["etag"] == second["etag"]
    client.enrollment.delete("etag-1", if_match=f'"{second["etag"]}"')  # quoted form is accepted


def test_paging_through_thousands_of_enrollments(dps, client, conforms_array):
    total = 2345
    for start in range(0, total, 10):
        result = client.enrollment.run_bulk_operation(
            {
                "mode": "create",
                "enrollments": [_sym(f"page-{n:05}") for n in range(start, min(start + 10, total))],
            }
        )
        assert result["isSuccessful"], result

    pages = list(client.enrollment.query({"query": "SELECT * FROM enrollments"}, top=500).by_page())
    sizes = [len(list(page)) for page in pages]
    assert sizes == [500, 500, 500, 500, 345]
    everything = list(client.enrollment.query({"query": "SELECT *"}, top=1000))
    conforms_array("IndividualEnrollment", everything[:50])
    ids = [e["registrationId"] for e in everything]
    assert sorted(ids) == [f"page-{n:05}" for n in range(total)]  # each one exactly once
    assert ids != sorted(ids)  # in an order no client may rely on, as in DPS
    queries = [e for e in dps.access_log() if e["operation"] == "enrollment.query"]
    assert len(queries) == 5 + 3  # one call per page


def test_query_response_headers(dps, client):
    for n in range(3):
        client.enrollment.create_or_update(id=f"hdr-{n}", enrollment=_sym(f"hdr-{n}"))
    seen: list[dict[str, str]] = []

    def keep(pipeline_response, deserialized, headers):
        seen.append(dict(pipeline_response.http_response.headers))
        return deserialized

    first = client.enrollment._query({"query": "SELECT *"}, x_ms_max_item_count=2, cls=keep)
    assert len(first) == 2
    assert seen[0]["x-ms-item-type"] == "Enrollment"
    token = seen[0]["x-ms-continuation"]
    rest = client.enrollment._query(
        {"query": "SELECT *"}, x_ms_max_item_count=2, x_ms_continuation=token, cls=keep
    )
    listed = [e["registrationId"] for e in [*first, *rest]]
    assert sorted(listed) == ["hdr-0", "hdr-1", "hdr-2"]
    assert "x-ms-continuation" not in seen[1]

    with pytest.raises(HttpResponseError) as info:
        client.enrollment._query({"query": "SELECT *"}, x_ms_continuation="garbage!")
    assert info.value.response.json()["errorCode"] == 400008
    with pytest.raises(HttpResponseError) as info:
        client.enrollment._query({"query": "SELECT * FROM enrollments WHERE x = 1"})
    assert info.value.status_code == 400


def test_concurrent_conditional_updates_exactly_one_wins(dps, make_client):
    from concurrent.futures import ThreadPoolExecutor

    setup = make_client(dps)
    created = setup.enrollment.create_or_update(id="race-1", enrollment=_sym("race-1"))
    clients = [make_client(dps, retry_total=0) for _ in range(6)]

    def attempt(index: int) -> int:
        body = _sym("race-1", deviceId=f"writer-{index}")
        try:
            clients[index].enrollment.create_or_update(
                id="race-1", enrollment=body, if_match=created["etag"]
            )
        except HttpResponseError as exc:
            return exc.status_code
        return 200

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(attempt, range(6)))
    assert statuses == [200] + [412] * 5
    winner = setup.enrollment.get("race-1")["deviceId"]
    assert winner.startswith("writer-")


def test_registration_query_of_unknown_group_is_404(client):
    with pytest.raises(HttpResponseError) as info:
        list(client.device_registration_state.query(id="no-such-group"))
    assert info.value.status_code == 404
    assert info.value.response.json()["errorCode"] == 404202
