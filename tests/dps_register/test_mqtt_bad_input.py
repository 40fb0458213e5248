"""Bad input on the lab DPS's MQTT endpoint: each is refused promptly, the way real DPS refuses
it, written to the access log, and the endpoint goes on serving other devices.

Raw clients are paho-mqtt (the MQTT client under the Python device SDK) and plain TLS sockets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from azure.iot.device import exceptions as sdk_errors
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station_lab.dps import DpsOptions, LocalDps
from station_lab.firstboot import sas_token
from tests.support.registration import HUBS, Pki, issue

from .sdk import TRANSPORTS, entries, new_key, sdk_client

CONNECT_TIMEOUT_S = 0.5
DEADLINE_S = 10.0  # every refusal must come well within this


@pytest.fixture
def dps_options(tmp_path: Path) -> DpsOptions:
    # A short connect timeout, so "never sends CONNECT" ends quickly.
    return DpsOptions(
        state_dir=tmp_path / "dps",
        linked_hubs=HUBS,
        retry_after_s=0.01,
        rate_limit=0,
        mqtt_connect_timeout_s=CONNECT_TIMEOUT_S,
    )


def _enroll(service: DeviceProvisioningClient, reg_id: str, key: str) -> None:
    service.enrollment.create_or_update(
        id=reg_id,
        enrollment={
            "registrationId": reg_id,
            "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key}},
        },
    )


def _sas(dps: LocalDps, reg_id: str, key: str, *, ttl_s: int = 600) -> str:
    def sign(message: bytes) -> bytes:
        return hmac.new(base64.b64decode(key), message, hashlib.sha256).digest()

    return sas_token(dps.id_scope, reg_id, sign, ttl_s=ttl_s)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    current: BaseException | None = exc
    while current is not None:
        yield current
        current = current.__cause__


def _assert_still_serving(dps: LocalDps, service: DeviceProvisioningClient) -> None:
    key = new_key()
    _enroll(service, "bystander", key)
    assert sdk_client(dps, "bystander", symmetric_key=key).register().status == "assigned"


# --------------------------------------------------------------------------- raw MQTT client
@dataclass
class RawDevice:
    """A paho client on the MQTT port: CONNACK code and the messages it received."""

    client: Any
    connack: queue.Queue[int] = field(default_factory=queue.Queue)
    messages: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)

    def rc(self) -> int:
        return self.connack.get(timeout=DEADLINE_S)

    def request(self, topic: str, body: Any) -> tuple[str, dict[str, Any]]:
        subscribed: queue.Queue[int] = queue.Queue()
        self.client.on_subscribe = lambda c, u, mid, granted: subscribed.put(granted[0])
        self.client.subscribe("$dps/registrations/res/#", qos=1)
        assert subscribed.get(timeout=DEADLINE_S) == 1
        self.client.publish(topic, json.dumps(body), qos=1)
        reply, payload = self.messages.get(timeout=DEADLINE_S)
        return reply, json.loads(payload)


@pytest.fixture
def raw(dps: LocalDps) -> Iterator[Any]:
    started: list[Any] = []

    def connect(
        username: str,
        password: str | None,
        *,
        client_id: str,
        cert: tuple[Path, Path] | None = None,
    ) -> RawDevice:
        client = paho.Client(client_id=client_id, protocol=paho.MQTTv311, clean_session=True)
        tls = ssl.create_default_context(cafile=str(dps.ca_bundle))
        if cert is not None:
            tls.load_cert_chain(*cert)
        client.tls_set_context(tls)
        client.username_pw_set(username, password)
        device = RawDevice(client)
        client.on_connect = lambda c, u, flags, rc: device.connack.put(rc)
        client.on_message = lambda c, u, m: device.messages.put((m.topic, m.payload))
        client.connect("localhost", dps.mqtt_port, keepalive=30)
        client.loop_start()
        started.append(client)
        return device

    yield connect
    for client in started:
        client.disconnect()
        client.loop_stop()


def _username(dps: LocalDps, reg_id: str, api_version: str = "2019-03-31") -> str:
    return f"{dps.id_scope}/registrations/{reg_id}/api-version={api_version}"


def _tls_socket(dps: LocalDps) -> ssl.SSLSocket:
    tls = ssl.create_default_context(cafile=str(dps.ca_bundle))
    sock = socket.create_connection(("127.0.0.1", dps.mqtt_port), timeout=DEADLINE_S)
    return tls.wrap_socket(sock, server_hostname="localhost")


def _closed_by_server(sock: ssl.SSLSocket) -> bool:
    """Read until the server closes; True if it did within the deadline."""
    try:
        while sock.recv(1024):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True  # reset: closed too
    return True


# --------------------------------------------------------------------------- the list
@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_a_wrong_key_is_refused_with_401(
    dps: LocalDps, service: DeviceProvisioningClient, transport: str
) -> None:
    _enroll(service, "wrong-key", new_key())
    client = sdk_client(dps, "wrong-key", transport=transport, symmetric_key=new_key())

    with pytest.raises(sdk_errors.ClientError) as caught:
        client.register()

    assert any("401" in str(cause) for cause in _causes(caught.value))
    [register] = [e for e in entries(dps, "wrong-key") if e["operation"] == "device.register"]
    assert (register["status"], register["errorCode"]) == (401, 401002)
    assert register["transport"] == transport
    assert dps.hub_devices() == []
    _assert_still_serving(dps, service)


def test_an_unknown_registration_id_is_refused_with_401(
    dps: LocalDps, service: DeviceProvisioningClient
) -> None:
    client = sdk_client(dps, "never-enrolled", symmetric_key=new_key())

    with pytest.raises(sdk_errors.ClientError) as caught:
        client.register()

    assert any("401" in str(cause) for cause in _causes(caught.value))
    [register] = [e for e in entries(dps, "never-enrolled") if e["operation"] == "device.register"]
    assert (register["status"], register["errorCode"]) == (401, 401002)


def test_an_expired_sas_is_refused_at_connect(
    dps: LocalDps, service: DeviceProvisioningClient, raw: Any
) -> None:
    key = new_key()
    _enroll(service, "expired", key)
    token = _sas(dps, "expired", key, ttl_s=-60)

    device = raw(_username(dps, "expired"), token, client_id="expired")

    assert device.rc() == paho.CONNACK_REFUSED_NOT_AUTHORIZED
    [connect] = [e for e in dps.access_log() if e["operation"] == "mqtt.connect"]
    assert connect["connackCode"] == 5
    assert "expired" in connect["message"]
    _assert_still_serving(dps, service)


def test_a_certificate_from_another_ca_is_refused(
    dps: LocalDps, service: DeviceProvisioningClient, pki: Pki
) -> None:
    dps.add_ca_certificate("station-root", pki.root.pem)
    service.enrollment_group.create_or_update(
        id="x509-group",
        enrollment_group={
            "enrollmentGroupId": "x509-group",
            "attestation": {"type": "x509", "x509": {"caReferences": {"primary": "station-root"}}},
        },
    )
    stranger_root = issue("Someone Else's Root", ca=True)
    stranger = pki.device("foreign-0001", issuer=stranger_root)
    client = sdk_client(dps, "foreign-0001", cert=pki.files(stranger, stranger_root))

    with pytest.raises(sdk_errors.ClientError):
        client.register()

    refusals = [e for e in dps.access_log() if e["operation"] == "mqtt.tls"]
    assert refusals and {(e["status"], e["errorCode"]) for e in refusals} == {(401, 401002)}
    assert dps.hub_devices() == []
    _assert_still_serving(dps, service)


def test_a_malformed_packet_closes_the_connection(
    dps: LocalDps, service: DeviceProvisioningClient
) -> None:
    with _tls_socket(dps) as sock:
        # CONNECT whose remaining length runs past four bytes: not MQTT
        sock.sendall(b"\x10\xff\xff\xff\xff\x01")
        assert _closed_by_server(sock)

    [closed] = [e for e in dps.access_log() if e["method"] == "CLOSE"]
    assert "malformed" in closed["message"]
    _assert_still_serving(dps, service)


def test_a_client_that_never_sends_connect_is_closed(
    dps: LocalDps, service: DeviceProvisioningClient
) -> None:
    with _tls_socket(dps) as silent:
        # the endpoint serves others while the silent client holds its connection
        _assert_still_serving(dps, service)
        assert _closed_by_server(silent)

    [closed] = [e for e in dps.access_log() if e["method"] == "CLOSE"]
    assert closed["operation"] == "mqtt.connect"
    assert "no CONNECT" in closed["message"]


@pytest.mark.parametrize(
    ("username", "client_id", "password", "expected"),
    [
        ("not-a-dps-user-name", "dev-1", "token", paho.CONNACK_REFUSED_BAD_USERNAME_PASSWORD),
        ("{scope}/registrations/dev-1/api-version=1999-01-01", "dev-1", "token", 4),
        ("{scope}/registrations/dev-1/api-version=2019-03-31", "dev-2", "token", 2),
        ("0ne99999999/registrations/dev-1/api-version=2019-03-31", "dev-1", "token", 5),
        ("{scope}/registrations/dev-1/api-version=2019-03-31", "dev-1", None, 5),
        ("{scope}/registrations/dev-1/api-version=2019-03-31", "dev-1", "garbage", 5),
    ],
    ids=["user-name", "api-version", "client-id", "id-scope", "no-credential", "bad-token"],
)
def test_connect_refusals_carry_the_connack_code(
    dps: LocalDps, raw: Any, username: str, client_id: str, password: str | None, expected: int
) -> None:
    token = _sas(dps, "dev-1", new_key()) if password == "token" else password

    device = raw(username.format(scope=dps.id_scope), token, client_id=client_id)

    assert device.rc() == expected
    [connect] = [e for e in dps.access_log() if e["operation"] == "mqtt.connect"]
    assert connect["connackCode"] == expected
    assert connect["message"]


def test_tpm_is_not_offered_over_mqtt(
    dps: LocalDps, service: DeviceProvisioningClient, raw: Any
) -> None:
    key = new_key()
    _enroll(service, "tpm-over-mqtt", key)
    device = raw(
        _username(dps, "tpm-over-mqtt"), _sas(dps, "tpm-over-mqtt", key), client_id="tpm-over-mqtt"
    )
    assert device.rc() == 0

    topic, body = device.request(
        "$dps/registrations/PUT/iotdps-register/?$rid=7",
        {"registrationId": "tpm-over-mqtt", "tpm": {"endorsementKey": "AAAA"}},
    )

    assert topic == "$dps/registrations/res/400/?$rid=7"
    assert "TPM" in body["message"]
    assert body["errorCode"] == 400010


def test_a_raw_device_registers_and_polls_on_the_dps_topics(
    dps: LocalDps, service: DeviceProvisioningClient, raw: Any
) -> None:
    key = new_key()
    _enroll(service, "raw-0001", key)
    device = raw(_username(dps, "raw-0001"), _sas(dps, "raw-0001", key), client_id="raw-0001")
    assert device.rc() == 0

    topic, accepted = device.request(
        "$dps/registrations/PUT/iotdps-register/?$rid=41", {"registrationId": "raw-0001"}
    )
    assert topic.startswith("$dps/registrations/res/202/?$rid=41&retry-after=")
    assert accepted["status"] == "assigning"
    device.client.publish(
        "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=42&operationId="
        + accepted["operationId"],
        b"",
        qos=0,
    )
    topic, done = device.messages.get(timeout=DEADLINE_S)
    assert topic == "$dps/registrations/res/200/?$rid=42"
    assert json.loads(done)["registrationState"]["registrationId"] == "raw-0001"


def test_the_port_map_only_reaches_the_lab(dps: LocalDps) -> None:
    host, port = dps.port_map
    for request, expected in (
        (b"CONNECT example.com:8883 HTTP/1.1\r\n\r\n", b"403"),
        (b"CONNECT localhost:22 HTTP/1.1\r\n\r\n", b"403"),
        (b"GET / HTTP/1.1\r\n\r\n", b"405"),
        (b"CONNECT localhost:8883 HTTP/1.1\r\n\r\n", b"200"),
    ):
        with socket.create_connection((host, port), timeout=DEADLINE_S) as sock:
            sock.sendall(request)
            assert sock.recv(64).split(b" ")[1] == expected


def test_a_websocket_without_the_mqtt_subprotocol_is_refused(
    dps: LocalDps, service: DeviceProvisioningClient
) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    tls = ssl.create_default_context(cafile=str(dps.ca_bundle))
    with pytest.raises(InvalidStatus) as caught:
        connect(dps.websocket_url, ssl=tls, subprotocols=["chat"], open_timeout=DEADLINE_S)

    assert caught.value.response.status_code == 400
    [refusal] = [e for e in dps.access_log() if e["operation"] == "mqtt.websocket"]
    assert refusal["status"] == 400
    assert "subprotocol" in refusal["message"]
    _assert_still_serving(dps, service)


def test_registrations_over_https_and_mqtt_share_the_units_limit(
    dps: LocalDps, service: DeviceProvisioningClient, raw: Any
) -> None:
    import requests

    dps._server.context.registrations.limit = 2  # the unit's registrations per minute, shared
    https = requests.put(
        f"{dps.endpoint}/{dps.id_scope}/registrations/raw-0002/register",
        params={"api-version": "2019-03-31"},
        json={"registrationId": "raw-0002"},
        timeout=DEADLINE_S,
        verify=str(dps.ca_bundle),
    )
    assert https.status_code == 401  # no credential, but a registration request all the same
    key = new_key()
    _enroll(service, "raw-0002", key)
    device = raw(_username(dps, "raw-0002"), _sas(dps, "raw-0002", key), client_id="raw-0002")
    assert device.rc() == 0
    topic, _ = device.request("$dps/registrations/PUT/iotdps-register/?$rid=1", {})
    assert topic.startswith("$dps/registrations/res/202/")
    topic, refused = device.request("$dps/registrations/PUT/iotdps-register/?$rid=2", {})
    assert topic.startswith("$dps/registrations/res/429/?$rid=2&retry-after=")
    assert 1 <= int(topic.rsplit("=", 1)[1]) <= 60 and refused["errorCode"] == 429001
