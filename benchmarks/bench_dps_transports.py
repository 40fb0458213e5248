"""Device registrations per second on the lab DPS over MQTT, MQTT over WebSocket and HTTPS.

Run: .venv/bin/python benchmarks/bench_dps_transports.py [N] [N_SDK]

Each registration is a symmetric-key device's first boot on a new connection: HTTPS (the lab
firmware's client: PUT register, then poll), MQTT and MQTT over WebSocket (paho-mqtt, the client
under the Python device SDK: CONNECT, SUBSCRIBE, PUBLISH register, PUBLISH poll, DISCONNECT).
Retry-After is 0 and throttling is off; the kinds are interleaved so they see the same load.

The floor is the transport alone: a new TLS connection and one round trip the server answers
without DPS work (HTTPS: a request refused at routing; MQTT: a CONNECT refused with CONNACK 4).

N_SDK registrations through the Python device SDK itself (azure-iot-device) show its fixed cost:
it always waits 2 s before its first poll, whatever DPS's retry-after says.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import socket
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from azure.iot.device import ProvisioningDeviceClient, ProxyOptions
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station_lab.dps import DpsOptions, LocalDps
from station_lab.firstboot import (
    DeviceRegistrationClient,
    DpsEndpoint,
    SymmetricKeyCredential,
    sas_token,
)

DPS_CEILING_PER_S = 1000 / 60


def _enroll(service: DeviceProvisioningClient, group_key: str) -> None:
    service.enrollment_group.create_or_update(
        id="bench",
        enrollment_group={
            "enrollmentGroupId": "bench",
            "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": group_key}},
        },
    )


def _mqtt_register(dps: LocalDps, credential: SymmetricKeyCredential, websockets: bool) -> None:
    reg_id = credential.registration_id
    client = paho.Client(
        client_id=reg_id,
        protocol=paho.MQTTv311,
        transport="websockets" if websockets else "tcp",
    )
    if websockets:
        client.ws_set_options(path="/$iothub/websocket")
    client.tls_set_context(ssl.create_default_context(cafile=str(dps.ca_bundle)))
    client.username_pw_set(
        f"{dps.id_scope}/registrations/{reg_id}/api-version=2019-03-31",
        sas_token(dps.id_scope, reg_id, credential.signer()),
    )
    answers: queue.Queue[tuple[str, bytes]] = queue.Queue()
    ready: queue.Queue[int] = queue.Queue()
    client.on_connect = lambda c, u, f, rc: ready.put(rc)
    client.on_subscribe = lambda c, u, mid, granted: ready.put(granted[0])
    client.on_message = lambda c, u, m: answers.put((m.topic, m.payload))
    client.connect("127.0.0.1", dps.port if websockets else dps.mqtt_port, keepalive=30)
    if not websockets:
        # paho leaves Nagle on (http.client and the WebSocket path do not): ~4 ms a registration
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    try:
        assert ready.get(timeout=10) == 0
        client.subscribe("$dps/registrations/res/#", qos=1)
        assert ready.get(timeout=10) == 1
        client.publish("$dps/registrations/PUT/iotdps-register/?$rid=1", json.dumps({}), qos=1)
        topic, body = answers.get(timeout=10)
        assert "/res/202/" in topic, topic
        operation = json.loads(body)["operationId"]
        while True:
            client.publish(
                f"$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId={operation}"
            )
            topic, body = answers.get(timeout=10)
            if "/res/200/" in topic:
                assert json.loads(body)["status"] == "assigned"
                return
    finally:
        client.disconnect()
        client.loop_stop()


def _https_floor(dps: LocalDps, tls: ssl.SSLContext) -> None:
    connection = http.client.HTTPSConnection(*dps.address, context=tls, timeout=10)
    connection.request("GET", "/nothing-here?api-version=2021-10-01")
    assert connection.getresponse().read()
    connection.close()


def _mqtt_floor(dps: LocalDps, tls: ssl.SSLContext) -> None:
    with (
        socket.create_connection(("127.0.0.1", dps.mqtt_port), timeout=10) as raw,
        tls.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        sock.sendall(b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x1e\x00\x01x")  # CONNECT, no user name
        assert sock.recv(4) == b"\x20\x02\x00\x04"  # CONNACK: bad user name or password


def _time(work: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    work()
    return time.perf_counter() - t0


def main(count: int, sdk_count: int) -> None:
    group_key = base64.b64encode(os.urandom(32)).decode("ascii")
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalDps(DpsOptions(state_dir=Path(tmp) / "dps", rate_limit=0, retry_after_s=0.0)) as dps,
    ):
        service = DeviceProvisioningClient.from_connection_string(
            dps.connection_string(), connection_verify=str(dps.ca_bundle)
        )
        _enroll(service, group_key)
        https = DeviceRegistrationClient(DpsEndpoint(dps.host_name, dps.id_scope, dps.ca_bundle))
        tls = ssl.create_default_context(cafile=str(dps.ca_bundle))
        times: dict[str, list[float]] = {
            k: [] for k in ("https", "mqtt", "mqtt-ws", "https floor", "mqtt floor")
        }
        for n in range(count):

            def credential(kind: str, n: int = n) -> SymmetricKeyCredential:
                return SymmetricKeyCredential.from_group_key(f"{kind}-{n:05}", group_key)

            runs: dict[str, Callable[[], Any]] = {
                "https": lambda: https.register(credential("https")),
                "mqtt": lambda: _mqtt_register(dps, credential("mqtt"), False),
                "mqtt-ws": lambda: _mqtt_register(dps, credential("ws"), True),
                "https floor": lambda: _https_floor(dps, tls),
                "mqtt floor": lambda: _mqtt_floor(dps, tls),
            }
            for kind, work in runs.items():
                times[kind].append(_time(work))
        sdk: list[float] = []
        host, port = dps.port_map
        for n in range(sdk_count):
            reg_id = f"sdk-{n:05}"
            key = SymmetricKeyCredential.from_group_key(reg_id, group_key).device_key
            client = ProvisioningDeviceClient.create_from_symmetric_key(
                provisioning_host="127.0.0.1",
                registration_id=reg_id,
                id_scope=dps.id_scope,
                symmetric_key=key,
                server_verification_cert=dps.ca_bundle.read_text(),
                proxy_options=ProxyOptions("HTTP", host, port),
            )
            sdk.append(_time(lambda client=client: client.register()))
        service.close()

    print(f"{count} registrations per transport, interleaved; load {os.getloadavg()[0]:.1f}")
    print(f"{'':<12} {'reg/s':>7} {'median ms':>10} {'x floor':>8} {'x DPS ceiling':>14}")
    floors = {
        "https": statistics.median(times["https floor"]),
        "mqtt": statistics.median(times["mqtt floor"]),
        "mqtt-ws": statistics.median(times["https floor"]),  # WebSocket rides the HTTPS port
    }
    for kind, values in times.items():
        rate = len(values) / sum(values)
        median = statistics.median(values)
        ratio = f"{median / floors[kind]:.2f}" if kind in floors else "-"
        print(
            f"{kind:<12} {rate:>7.1f} {median * 1000:>10.1f} {ratio:>8} "
            f"{rate / DPS_CEILING_PER_S:>13.1f}x"
        )
    if sdk:
        print(
            f"python SDK   {len(sdk) / sum(sdk):>7.2f} {statistics.median(sdk) * 1000:>10.1f}"
            "  (waits 2 s before its first poll)"
        )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 200,
        int(sys.argv[2]) if len(sys.argv) > 2 else 3,
    )
