"""DPS's documented limits and HTTP edges, as the stand-in now answers them.

Limits (docs/lab-dps.md, from DPS's documented quotas): 100 X.509 and 100 symmetric-key groups
(separate pools), 25 CA certificates, 50 linked hubs, 1,000 device registrations per minute per
unit. HTTP: a 405 names what is allowed, a SAS token is good only for the path it names, and a
list in If-Match, a bad Content-Length or a 10 MB body get their 4xx at once.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import ssl
from typing import Any

import pytest
import requests

from station.domain.errors import LabDpsError
from station_lab.dps import DpsOptions, LinkedHub, LocalDps, auth

SYM = {"attestation": {"type": "symmetricKey"}}
DEV_1 = json.dumps({"registrationId": "dev-1", **SYM})


def _send(dps: LocalDps, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    headers.setdefault(
        "Authorization", auth.make_token(dps.host_name, dps.policies[auth.OWNER_POLICY])
    )
    return requests.request(
        method,
        f"{dps.endpoint}{path}",
        params={"api-version": "2021-10-01"},
        headers=headers,
        timeout=30,
        verify=str(dps.ca_bundle),
        **kwargs,
    )


def _raw(dps: LocalDps, data: bytes) -> bytes:
    """Send raw bytes; return the answer's head (within a 10 s read time-out)."""
    context = ssl.create_default_context(cafile=str(dps.ca_bundle))
    with (
        socket.create_connection(dps.address, timeout=10) as plain,
        context.wrap_socket(plain, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(data)
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := tls.recv(4096)):
            answer += chunk
    return answer.partition(b"\r\n\r\n")[0]


def test_405_names_the_allowed_methods(dps: LocalDps) -> None:
    patched = _send(dps, "PATCH", "/enrollments/dev-1", data=DEV_1)
    assert patched.status_code == 405 and patched.json()["errorCode"] == 405001
    assert patched.headers["Allow"] == "GET, PUT, DELETE"
    listed = _send(dps, "GET", "/enrollments")
    assert (listed.status_code, listed.headers["Allow"]) == (405, "POST")


def test_a_sas_token_is_good_only_for_the_path_it_names(dps: LocalDps) -> None:
    owner = dps.policies[auth.OWNER_POLICY]
    scoped = {"Authorization": auth.make_token(f"{dps.host_name}/enrollments/dev-1", owner)}
    mine = _send(dps, "PUT", "/enrollments/dev-1", data=DEV_1, headers=scoped)
    assert mine.status_code == 200
    for method, path in (("GET", "/enrollments/dev-2"), ("GET", "/enrollmentGroups/dev-1")):
        other = _send(dps, method, path, headers=scoped)
        assert other.status_code == 401 and other.json()["errorCode"] == 401002
        assert "does not cover" in other.json()["message"]


def test_an_if_match_list_is_412_even_when_it_names_the_etag(dps: LocalDps) -> None:
    created = _send(dps, "PUT", "/enrollments/dev-1", data=DEV_1).json()
    for if_match in (f'"other", {created["etag"]}', f"*, {created['etag']}"):
        answer = _send(dps, "PUT", "/enrollments/dev-1", data=DEV_1, headers={"If-Match": if_match})
        assert answer.status_code == 412 and answer.json()["errorCode"] == 412001
    single = _send(
        dps, "PUT", "/enrollments/dev-1", data=DEV_1, headers={"If-Match": created["etag"]}
    )
    assert single.status_code == 200


def _head(dps: LocalDps, extra: bytes, body: bytes = b"") -> bytes:
    token = auth.make_token(dps.host_name, dps.policies[auth.OWNER_POLICY]).encode()
    return (
        b"PUT /enrollments/dev-9?api-version=2021-10-01 HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nAuthorization: " + token + b"\r\n" + extra + b"\r\n"
    ) + body


@pytest.mark.parametrize(
    "lengths",
    [
        b"Content-Length: 5\r\nContent-Length: 7\r\n",
        b"Content-Length: -1\r\n",
        b"Content-Length: +5\r\n",
    ],
)
def test_a_bad_content_length_is_400_at_once(dps: LocalDps, lengths: bytes) -> None:
    head = _raw(dps, _head(dps, lengths, b"{}"))
    assert head.startswith(b"HTTP/1.1 400 ") and b"x-ms-error-code: 400001" in head
    assert _send(dps, "POST", "/enrollments/query", json={"query": "*"}).status_code == 200


def test_a_10_mb_body_is_answered_413_and_the_client_reads_it(dps: LocalDps) -> None:
    big = {"registrationId": "dev-9", **SYM, "optionalDeviceInformation": {"x": "y" * 10_000_000}}
    answer = _send(dps, "PUT", "/enrollments/dev-9", data=json.dumps(big))
    assert answer.status_code == 413 and answer.json()["errorCode"] == 413001
    # a client that asks first (Expect: 100-continue) is refused before it sends the body
    head = _raw(dps, _head(dps, b"Content-Length: 10485760\r\nExpect: 100-continue\r\n"))
    assert head.startswith(b"HTTP/1.1 413 ")
    assert [e["status"] for e in dps.access_log() if e["requestBytes"] > 96 * 1024] == [413, 413]
    assert _send(dps, "GET", "/enrollments/dev-9").status_code == 404


def test_x509_and_symmetric_key_groups_are_separate_pools(
    dps_options: DpsOptions, make_cert: Any
) -> None:
    with LocalDps(dataclasses.replace(dps_options, max_groups=2)) as dps:
        for n in range(2):
            group = {"enrollmentGroupId": f"sym-{n}", **SYM}
            assert _send(dps, "PUT", f"/enrollmentGroups/sym-{n}", json=group).status_code == 200
        full = _send(
            dps, "PUT", "/enrollmentGroups/sym-2", json={"enrollmentGroupId": "sym-2", **SYM}
        )
        assert full.status_code == 403 and "symmetricKey" in full.json()["message"]
        for n in range(2):
            x509 = {
                "enrollmentGroupId": f"x509-{n}",
                "attestation": {
                    "type": "x509",
                    "x509": {
                        "signingCertificates": {"primary": {"certificate": make_cert(f"ca-{n}")}}
                    },
                },
            }
            assert _send(dps, "PUT", f"/enrollmentGroups/x509-{n}", json=x509).status_code == 200


def test_25_ca_certificates_and_50_linked_hubs_at_most(
    dps: LocalDps, dps_options: DpsOptions, make_cert: Any
) -> None:
    for n in range(25):
        dps.add_ca_certificate(f"ca-{n}", make_cert(f"ca-{n}"))
    dps.add_ca_certificate("ca-7", make_cert("ca-7 renewed"))  # replacing one is fine
    with pytest.raises(LabDpsError, match="maximum of 25 CA certificates"):
        dps.add_ca_certificate("ca-25", make_cert("ca-25"))
    hubs = tuple(LinkedHub(f"hub-{n}.azure-devices.net") for n in range(51))
    with pytest.raises(LabDpsError, match="at most 50 IoT hubs"):
        LocalDps(dataclasses.replace(dps_options, linked_hubs=hubs))


def test_device_registrations_are_limited_per_minute(dps_options: DpsOptions) -> None:
    # 2 registrations per 10 s: far more than the three calls below take
    options = dataclasses.replace(dps_options, registration_rate_limit=2, time_scale=6.0)
    with LocalDps(options) as dps:
        path = f"/{dps.id_scope}/registrations/dev-1/register"
        statuses = [
            _send(dps, "PUT", path, json={"registrationId": "dev-1"}, headers={"Authorization": ""})
            for _ in range(3)
        ]
        assert [s.status_code for s in statuses] == [401, 401, 429]
        assert statuses[-1].json()["errorCode"] == 429001
        assert statuses[-1].headers["Retry-After"] in {str(s) for s in range(1, 11)}
        # polling and status lookups are not registrations
        lookup = _send(dps, "POST", f"/{dps.id_scope}/registrations/dev-1", json={})
        assert lookup.status_code != 429


def test_a_body_shorter_than_its_content_length_is_408_once_it_stalls(
    dps: LocalDps, monkeypatch: pytest.MonkeyPatch
) -> None:
    from station_lab.dps import server

    monkeypatch.setattr(server, "BODY_TIMEOUT_S", 0.3)  # real default: 5 s
    # _raw reads with a 10 s time-out: the answer comes before the 30 s connection time-out
    head = _raw(dps, _head(dps, b"Content-Length: 100\r\n", b'{"registrationId": '))
    assert head.startswith(b"HTTP/1.1 408 ") and b"x-ms-error-code: 408001" in head
    assert _send(dps, "GET", "/enrollments/dev-9").status_code == 404  # still serving
