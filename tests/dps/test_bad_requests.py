"""Malformed, oversized, unauthenticated and unsupported requests get DPS-shaped errors.

These go around the official client (it would refuse to send most of them), with ``requests``
trusting the lab CA, and check status, ``errorCode``, the ``x-ms-error-code`` header and that no
answer is a 500 or carries a stack trace.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import time

import pytest
import requests

from station_lab.dps import auth


@pytest.fixture
def call(dps):
    owner = dps.policies[auth.OWNER_POLICY]
    session = requests.Session()

    def send(method, path, *, body=None, raw=None, token="owner", api="2021-10-01", headers=None):
        hdrs = {"Content-Type": "application/json"}
        if token == "owner":
            hdrs["Authorization"] = auth.make_token(dps.host_name, owner)
        elif token is not None:
            hdrs["Authorization"] = token
        hdrs.update(headers or {})
        params = {"api-version": api} if api else {}
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        return session.request(
            method,
            dps.endpoint + path,
            params=params,
            data=data,
            headers=hdrs,
            timeout=30,
            verify=str(dps.ca_bundle),
        )

    yield send
    session.close()


def expect_error(response, status, code, conforms):
    assert response.status_code == status, response.text
    body = response.json()
    conforms("ProvisioningServiceErrorDetails", body)
    assert set(body) == {"errorCode", "trackingId", "message", "timestampUtc"}
    assert body["errorCode"] == code
    assert response.headers["x-ms-error-code"] == str(code)
    assert "Traceback" not in response.text
    return body


def sym(reg_id="dev-1", **extra):
    return {"registrationId": reg_id, "attestation": {"type": "symmetricKey"}, **extra}


def test_malformed_json(call, conforms):
    expect_error(call("PUT", "/enrollments/dev-1", raw="{not json"), 400, 400001, conforms)
    expect_error(call("PUT", "/enrollments/dev-1", raw=b"\xff\xfe\x00"), 400, 400001, conforms)
    expect_error(call("PUT", "/enrollments/dev-1"), 400, 400001, conforms)
    expect_error(call("POST", "/enrollments", raw="[1, 2"), 400, 400001, conforms)
    expect_error(
        call("PUT", "/enrollments/dev-1", raw="[" * 40_000 + "]" * 40_000), 400, 400001, conforms
    )
    nan = '{"registrationId": "dev-1", "attestation": {"type": "symmetricKey"}, "x": NaN}'
    expect_error(call("PUT", "/enrollments/dev-1", raw=nan), 400, 400001, conforms)


@pytest.mark.parametrize(
    "body",
    [
        [sym()],
        "just a string",
        {"registrationId": 12, "attestation": {"type": "symmetricKey"}},
        sym(provisioningStatus="maybe"),
        sym(provisioningStatus=True),
        sym(capabilities={"iotEdge": "yes"}),
        sym(iotHubs="lab-hub.azure-devices.net"),
        sym(iotHubs=[1, 2]),
        sym(allocationPolicy="random"),
        sym(reprovisionPolicy={"updateHubAssignment": 1}),
        sym(initialTwin=["tags"]),
        sym(allocationPolicy="custom"),
        {"registrationId": "dev-1", "attestation": {"type": "magic"}},
        {"registrationId": "dev-1", "attestation": {"type": "none"}},
        {"registrationId": "dev-1", "attestation": "tpm"},
        {"registrationId": "dev-1"},
        sym("dev-2"),  # differs from the id in the URL
    ],
)
def test_wrong_types_and_values(call, conforms, body):
    response = call("PUT", "/enrollments/dev-1", body=body)
    assert response.status_code == 400
    expect_error(response, 400, response.json()["errorCode"], conforms)
    assert response.json()["errorCode"] in (400002, 400009)


@pytest.mark.parametrize(
    "reg_id", ["-leading", "trailing-", "has space", "x" * 129, "bad/slash", "ünï"]
)
def test_registration_id_rules(call, conforms, reg_id):
    response = call("POST", "/enrollments", body={"mode": "create", "enrollments": [sym(reg_id)]})
    assert response.status_code == 200
    (error,) = response.json()["errors"]
    assert error["errorCode"] == 400009


@pytest.mark.parametrize(
    "ek",
    [
        "not base64 !!",
        base64.b64encode(b"\x00\x02ab").decode(),  # consistent size prefix, garbage inside
        base64.b64encode(b"OgEAAAEA" * 20).decode(),  # legacy little-endian tpm2_getpubek style
        "",
        42,
    ],
)
def test_endorsement_key_must_be_tpm2b_public(call, conforms, ek):
    body = {
        "registrationId": "tpm-1",
        "attestation": {"type": "tpm", "tpm": {"endorsementKey": ek}},
    }
    expect_error(call("PUT", "/enrollments/tpm-1", body=body), 400, 400004, conforms)


def test_truncated_or_padded_endorsement_key(call, conforms, make_ek):
    raw = base64.b64decode(make_ek())
    for bad in (raw[:-1], raw + b"\x00", raw[2:]):
        body = {
            "registrationId": "tpm-1",
            "attestation": {
                "type": "tpm",
                "tpm": {"endorsementKey": base64.b64encode(bad).decode()},
            },
        }
        expect_error(call("PUT", "/enrollments/tpm-1", body=body), 400, 400004, conforms)


def test_bad_certificate(call, conforms):
    for cert in (
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        base64.b64encode(b"x").decode(),
    ):
        body = {
            "registrationId": "x-1",
            "attestation": {
                "type": "x509",
                "x509": {"clientCertificates": {"primary": {"certificate": cert}}},
            },
        }
        expect_error(call("PUT", "/enrollments/x-1", body=body), 400, 400006, conforms)


def test_non_json_content_type_is_415(call, conforms):
    response = call("PUT", "/enrollments/dev-1", body=sym(), headers={"Content-Type": "text/xml"})
    expect_error(response, 415, 415001, conforms)
    response = call(
        "PUT",
        "/enrollments/dev-1",
        body=sym(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


def test_oversized_body_is_413(call, conforms, dps):
    big = sym(optionalDeviceInformation={"blob": "x" * (97 * 1024)})
    expect_error(call("PUT", "/enrollments/dev-1", body=big), 413, 413001, conforms)
    # the connection stays usable and nothing was stored
    expect_error(call("GET", "/enrollments/dev-1"), 404, 404201, conforms)
    # just under the limit is fine
    fits = sym(optionalDeviceInformation={"blob": "x" * (90 * 1024)})
    assert call("PUT", "/enrollments/dev-1", body=fits).status_code == 200


def test_authentication_failures(call, conforms, dps):
    owner = dps.policies[auth.OWNER_POLICY]
    expired = auth.make_token(dps.host_name, owner, ttl_s=-10)
    wrong_key = auth.make_token(
        dps.host_name, auth.AccessPolicy(owner.name, auth.new_key(), owner.permissions)
    )
    other_host = auth.make_token("other.azure-devices-provisioning.net", owner)
    unknown = auth.make_token(
        dps.host_name, auth.AccessPolicy("nobody", owner.key, owner.permissions)
    )
    for token in (
        None,
        "Bearer abc",
        "SharedAccessSignature ",
        "SharedAccessSignature sr=x",
        expired,
        wrong_key,
        other_host,
        unknown,
    ):
        body = expect_error(call("GET", "/enrollments/dev-1", token=token), 401, 401002, conforms)
        assert body["message"]
    assert "expired" in call("GET", "/enrollments/dev-1", token=expired).json()["message"]
    # nothing unauthenticated is billable
    assert not any(entry["billable"] for entry in dps.access_log())


def test_read_only_policy_cannot_write(call, conforms, dps):
    reader = auth.make_token(dps.host_name, dps.policies[auth.READER_POLICY])
    expect_error(call("PUT", "/enrollments/dev-1", body=sym(), token=reader), 401, 401002, conforms)
    assert (
        call("POST", "/enrollments/query", body={"query": "SELECT *"}, token=reader).status_code
        == 200
    )


def test_token_signed_over_unencoded_resource_is_accepted(call, dps):
    owner = dps.policies[auth.OWNER_POLICY]
    expiry = int(time.time()) + 600
    import hashlib
    import hmac
    from urllib.parse import quote_plus

    sig = base64.b64encode(
        hmac.new(
            base64.b64decode(owner.key), f"{dps.host_name}\n{expiry}".encode(), hashlib.sha256
        ).digest()
    ).decode()
    token = f"SharedAccessSignature sr={quote_plus(dps.host_name)}&sig={quote_plus(sig)}&se={expiry}&skn={owner.name}"
    assert (
        call("POST", "/enrollments/query", body={"query": "SELECT *"}, token=token).status_code
        == 200
    )


def test_api_version(call, conforms):
    expect_error(call("GET", "/enrollments/dev-1", api="2099-01-01"), 400, 400003, conforms)
    expect_error(call("GET", "/enrollments/dev-1", api=None), 400, 400003, conforms)
    for version in ("2018-04-01", "2019-03-31", "2021-10-01"):
        expect_error(call("GET", "/enrollments/dev-1", api=version), 404, 404201, conforms)


def test_routes_are_case_insensitive_and_unknown_ones_refused(call, conforms):
    group = {"enrollmentGroupId": "grp-a", "attestation": {"type": "symmetricKey"}}
    assert call("PUT", "/ENROLLMENTGROUPS/grp-a", body=group).status_code == 200
    mechanism = call("POST", "/enrollmentgroups/GRP-A/attestationmechanism")
    assert mechanism.status_code == 200
    assert mechanism.json()["type"] == "symmetricKey"
    assert call("POST", "/EnrollmentGroups/Query", body={"query": "select *"}).status_code == 200
    expect_error(call("GET", "/nothing/here"), 404, 404001, conforms)
    expect_error(call("PATCH", "/enrollments/dev-1", body=sym()), 405, 405001, conforms)
    expect_error(call("GET", "/enrollments"), 405, 405001, conforms)


def _raw_exchange(dps, data: bytes) -> bytes:
    context = ssl.create_default_context(cafile=str(dps.ca_bundle))
    with (
        socket.create_connection(dps.address, timeout=30) as raw_sock,
        context.wrap_socket(raw_sock, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(data)
        answer = b""
        while chunk := tls.recv(4096):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        (b"GET /enrollments/x HTTP/7.0\r\n\r\n", 505),
        (b"GET /x HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", 431),
    ],
)
def test_malformed_http_gets_a_dps_error_not_a_crash(dps, call, request_bytes, status):
    answer = _raw_exchange(dps, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == str(status).encode()
    assert b"x-ms-error-code" in head.lower()
    assert json.loads(body)["errorCode"] // 1000 == status
    assert call("POST", "/enrollments/query", body={"query": "SELECT *"}).status_code == 200


def test_garbage_and_plain_http_do_not_hurt_the_server(dps, call):
    answer = _raw_exchange(dps, b"\x00\x01 NONSENSE\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body)["errorCode"] == 400001
    with socket.create_connection(dps.address, timeout=30) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            reply = plain.recv(100)
        except ConnectionResetError:
            reply = b""
        assert not reply.startswith(b"HTTP/")  # no plaintext service behind the TLS port
    assert call("POST", "/enrollments/query", body={"query": "SELECT *"}).status_code == 200


def test_unexpected_exception_is_a_plain_500(dps, call, conforms, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(dps.api, "registration_get", explode)
    # routes captured the bound method at start, so patch the route table's handler instead
    for route in dps._server.context.routes:
        if route.operation == "registration.get":
            object.__setattr__(route, "handler", explode)
    response = call("GET", "/registrations/dev-1")
    body = expect_error(response, 500, 500001, conforms)
    assert "secret" not in response.text
    assert body["message"] == "Internal server error."
