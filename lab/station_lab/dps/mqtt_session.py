"""One device's MQTT connection to the lab DPS: the DPS topics over MQTT 3.1.1 (dps-api.md §8).

The device connects with client ID = registration ID and user name
``{idScope}/registrations/{registrationId}/api-version=...`` (the Python SDK appends
``&ClientVersion=...``); the password is a device SAS token (symmetric key), or there is none and
TLS carried the device's certificate chain (X.509). It subscribes to ``$dps/registrations/res/#``,
publishes ``$dps/registrations/PUT/iotdps-register/?$rid={rid}`` with the body
``{registrationId, payload}`` and polls ``$dps/registrations/GET/iotdps-get-operationstatus/
?$rid={rid}&operationId={id}``; every answer comes back on
``$dps/registrations/res/{status}/?$rid={rid}[&retry-after={s}]`` with the HTTPS API's JSON body.

Refusals, as devices see them from real DPS:

* a user name not of that form, a client ID other than the registration ID, an unknown ID scope
  or api-version: CONNACK refused (return code 4, 2, 5 and 4);
* no credential, or a SAS token that is malformed, for another registration or expired:
  CONNACK 5 (not authorized);
* a SAS signed with the wrong key, an unknown registration ID, a certificate no enrollment
  matches: the connection is accepted and the register request is answered on
  ``res/401/`` with ``errorCode`` 401002, from the same registration core as HTTPS;
* TPM attestation: ``res/400/`` (DPS does not offer TPM over MQTT);
* a malformed packet, a packet over the size limit, QoS 2, or no CONNECT within the connect
  timeout: the connection is closed, as MQTT 3.1.1 §4.8 asks of a server.

Every CONNECT outcome, request and refusal is one line in the access log (``transport`` ``mqtt``
or ``mqtt-ws``), written before the answer is sent.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote

from amqtt.mqtt.connect import ConnectPacket
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.mqtt.pingreq import PingReqPacket
from amqtt.mqtt.publish import PublishPacket
from amqtt.mqtt.subscribe import SubscribePacket
from amqtt.mqtt.unsubscribe import UnsubscribePacket

from station_lab.dps import auth, mqtt_codec, validation
from station_lab.dps import errors as codes
from station_lab.dps.errors import ApiError
from station_lab.dps.limits import RateLimiter, take_registration
from station_lab.dps.mqtt_codec import ByteStream, MalformedPacket
from station_lab.dps.registration import DeviceRegistrationApi
from station_lab.dps.server import AccessLog, error_body
from station_lab.dps.service import ApiRequest, ApiResponse

log = logging.getLogger(__name__)

RESPONSE_FILTER: Final = "$dps/registrations/res/#"
REGISTER_TOPIC: Final = "$dps/registrations/PUT/iotdps-register/"
POLL_TOPIC: Final = "$dps/registrations/GET/iotdps-get-operationstatus/"
RESPONSE_TOPIC: Final = "$dps/registrations/res/{status}/?$rid={rid}"
IDLE_LIMIT_S: Final = 300.0  # a client that asked for no keep-alive still cannot idle forever
PACKET_SLACK: Final = 1024  # topic and headers on top of the largest accepted body

_USERNAME = re.compile(r"^(?P<scope>[^/]+)/registrations/(?P<rid>[^/]+)/(?P<query>.*)$")


@dataclass(frozen=True)
class MqttEndpoint:
    """What every MQTT connection of one running stand-in shares."""

    device_api: DeviceRegistrationApi
    access_log: AccessLog
    id_scope: str
    api_versions: frozenset[str]
    max_message_bytes: int
    # device registrations per minute for the unit, shared with HTTPS (0: no limit)
    registrations: RateLimiter = field(default_factory=lambda: RateLimiter(0))
    connect_timeout_s: float = 10.0
    clock: Callable[[], float] = time.time  # SAS expiry is checked against Unix time


class _Refused(Exception):
    """CONNECT refused with a CONNACK return code (one sentence why)."""

    def __init__(self, return_code: int, message: str) -> None:
        super().__init__(message)
        self.return_code = return_code
        self.message = message


@dataclass(frozen=True)
class _Identity:
    registration_id: str
    api_version: str
    password: str | None


class DpsMqttSession:
    """Serves one connection until the device disconnects, breaks the protocol or goes idle.

    Args:
        endpoint: the stand-in's shared MQTT state.
        stream: the connection's bytes (TLS socket or WebSocket payload).
        set_timeout: sets the read timeout of the underlying socket (seconds).
        transport: ``mqtt`` or ``mqtt-ws``, for the access log.
        client_chain: the certificate chain TLS verified (DER, leaf first), or ``()``.
        peer: the client's address, for the log.
    """

    def __init__(
        self,
        endpoint: MqttEndpoint,
        stream: ByteStream,
        *,
        set_timeout: Callable[[float], None],
        transport: str,
        client_chain: tuple[bytes, ...] = (),
        peer: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.stream = stream
        self.set_timeout = set_timeout
        self.transport = transport
        self.client_chain = client_chain
        self.peer = peer
        self.identity: _Identity | None = None
        self.subscribed = False
        self.max_packet = endpoint.max_message_bytes + PACKET_SLACK

    # ------------------------------------------------------------------ the connection
    def run(self) -> None:
        """Serve the connection; never raises for anything the client did."""
        started = time.monotonic()
        self.set_timeout(self.endpoint.connect_timeout_s)
        try:
            first = mqtt_codec.read_packet(self.stream, max_bytes=self.max_packet)
        except TimeoutError:
            self._log_closed(
                started,
                "mqtt.connect",
                f"no CONNECT within {self.endpoint.connect_timeout_s:g} s; connection closed",
            )
            return
        except MalformedPacket as exc:
            self._log_closed(started, "mqtt.connect", f"malformed packet: {exc}")
            return
        except OSError:
            return  # the client went away
        if first is None:
            return  # connected and left without a word: nothing to answer
        if not isinstance(first, ConnectPacket):
            self._log_closed(started, "mqtt.connect", "the first packet is not CONNECT")
            return
        if not self._connect(first, started):
            return
        self._serve()

    def _connect(self, packet: Any, started: float) -> bool:
        entry = self._entry("CONNECT", "", "mqtt.connect")
        try:
            self.identity = self._check_connect(packet)
        except _Refused as refused:
            entry.update(
                status=None,
                connackCode=refused.return_code,
                message=refused.message,
                durationMs=_ms(started),
            )
            self.endpoint.access_log.write(entry)
            self._send(mqtt_codec.connack(refused.return_code))
            return False
        entry.update(
            status=None,
            connackCode=mqtt_codec.CONNACK_ACCEPTED,
            registrationId=self.identity.registration_id,
            apiVersion=self.identity.api_version,
            durationMs=_ms(started),
        )
        self.endpoint.access_log.write(entry)
        keep_alive = int(packet.variable_header.keep_alive or 0)
        self.set_timeout(keep_alive * 1.5 if keep_alive else IDLE_LIMIT_S)
        return self._send(mqtt_codec.connack(mqtt_codec.CONNACK_ACCEPTED))

    def _check_connect(self, packet: Any) -> _Identity:
        header = packet.variable_header
        if header.proto_name != "MQTT" or header.proto_level != 4:
            raise _Refused(
                mqtt_codec.CONNACK_BAD_PROTOCOL,
                f"protocol {header.proto_name!r} level {header.proto_level}: "
                "DPS speaks MQTT 3.1.1 (level 4)",
            )
        payload = packet.payload
        found = _USERNAME.match(payload.username or "") if header.username_flag else None
        if found is None:
            raise _Refused(
                mqtt_codec.CONNACK_BAD_USERNAME_PASSWORD,
                "the user name is not {idScope}/registrations/{registrationId}/api-version=...",
            )
        scope = found["scope"]
        try:
            reg_id = validation.check_id(unquote(found["rid"]), "registrationId")
        except ApiError as exc:
            raise _Refused(mqtt_codec.CONNACK_BAD_USERNAME_PASSWORD, exc.message) from exc
        versions = parse_qs(found["query"]).get("api-version", [])
        if not versions or versions[0] not in self.endpoint.api_versions:
            raise _Refused(
                mqtt_codec.CONNACK_BAD_USERNAME_PASSWORD,
                f"the user name names no supported api-version (one of "
                f"{', '.join(sorted(self.endpoint.api_versions))})",
            )
        if scope.lower() != self.endpoint.id_scope.lower():
            raise _Refused(
                mqtt_codec.CONNACK_NOT_AUTHORIZED, f"the ID scope {scope!r} is not this service's"
            )
        client_id = "" if payload.client_id_is_random else str(payload.client_id or "")
        if client_id.lower() != reg_id:
            raise _Refused(
                mqtt_codec.CONNACK_IDENTIFIER_REJECTED,
                "the client ID must be the registration ID named in the user name",
            )
        password = payload.password if header.password_flag else None
        if password:
            try:
                auth.parse_device_token(
                    password,
                    id_scope=self.endpoint.id_scope,
                    registration_id=reg_id,
                    now=self.endpoint.clock(),
                )
            except ApiError as exc:
                raise _Refused(mqtt_codec.CONNACK_NOT_AUTHORIZED, exc.message) from exc
        elif not self.client_chain:
            raise _Refused(
                mqtt_codec.CONNACK_NOT_AUTHORIZED,
                "no credential: send a SAS token as the password or a client certificate",
            )
        return _Identity(reg_id, versions[0], password or None)

    def _serve(self) -> None:
        while True:
            started = time.monotonic()
            try:
                packet = mqtt_codec.read_packet(self.stream, max_bytes=self.max_packet)
            except TimeoutError:
                self._log_closed(started, "mqtt.keepalive", "no packet within the keep-alive")
                return
            except MalformedPacket as exc:
                self._log_closed(started, "mqtt.packet", f"malformed packet: {exc}")
                return
            except OSError:
                return
            if packet is None or isinstance(packet, DisconnectPacket):
                return
            if not self._dispatch(packet, started):
                return

    def _dispatch(self, packet: Any, started: float) -> bool:
        if isinstance(packet, PingReqPacket):
            return self._send(mqtt_codec.pingresp())
        if isinstance(packet, SubscribePacket):
            granted = []
            for topic, qos in packet.payload.topics:
                if topic == RESPONSE_FILTER:
                    self.subscribed = True
                    granted.append(min(int(qos), 1))
                else:
                    granted.append(mqtt_codec.SUBACK_FAILURE)
            return self._send(mqtt_codec.suback(packet.variable_header.packet_id, granted))
        if isinstance(packet, UnsubscribePacket):
            if RESPONSE_FILTER in packet.payload.topics:
                self.subscribed = False
            return self._send(mqtt_codec.unsuback(packet.variable_header.packet_id))
        if isinstance(packet, PublishPacket):
            return self._publish(packet, started)
        self._log_closed(
            started, "mqtt.packet", f"unexpected {type(packet).__name__} after CONNECT"
        )
        return False

    # ------------------------------------------------------------------ DPS requests
    def _publish(self, packet: Any, started: float) -> bool:
        if packet.qos == 2:
            self._log_closed(started, "mqtt.packet", "QoS 2 is not supported; use QoS 0 or 1")
            return False
        if packet.qos == 1 and not self._send(mqtt_codec.puback(packet.packet_id)):
            return False
        topic = str(packet.topic_name or "")
        path, _, query = topic.partition("?")
        props = _topic_properties(query)
        rid = props.get("$rid", "")
        if path == REGISTER_TOPIC:
            operation = "device.register"
        elif path == POLL_TOPIC:
            operation = "device.operation"
        else:
            self._log_closed(started, "mqtt.publish", f"no DPS topic {path!r}")
            return False
        entry = self._entry("PUBLISH", path, operation)
        entry["billable"] = True
        entry["requestBytes"] = len(packet.data or b"")
        try:
            response = self._request(operation, packet.data or b"", props)
            status, body = response.status, response.body
            error_code: int | None = None
            retry = response.headers.get("Retry-After")
        except ApiError as exc:
            status, error_code = exc.status, exc.error_code
            body = error_body(exc.error_code, exc.message, entry["trackingId"])
            retry = exc.headers.get("Retry-After")
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        reply = RESPONSE_TOPIC.format(status=status, rid=quote(rid, safe=""))
        if retry is not None:
            reply += f"&retry-after={_whole_seconds(retry)}"
        entry.update(
            status=status,
            errorCode=error_code,
            durationMs=_ms(started),
            responseBytes=len(payload),
            delivered=self.subscribed,
        )
        self.endpoint.access_log.write(entry)
        if not self.subscribed:
            return True  # like any MQTT server: no subscription, no delivery
        return self._send(mqtt_codec.publish(reply, payload))

    def _request(self, operation: str, data: bytes, props: Mapping[str, str]) -> ApiResponse:
        identity = self.identity
        if identity is None:  # pragma: no cover - _serve runs only after a CONNECT
            raise ApiError(codes.UNAUTHORIZED, "Not connected.")
        body: Any = None
        has_body = False
        if operation == "device.register":
            try:
                body = json.loads(data.decode("utf-8")) if data.strip() else None
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                raise ApiError(codes.MALFORMED_BODY, "The request body is not valid JSON.") from exc
            has_body = body is not None
            if isinstance(body, dict) and body.get("tpm") is not None:
                raise ApiError(
                    codes.INVALID_DEVICE_REQUEST,
                    "TPM attestation is not supported over MQTT; register over HTTPS.",
                )
        params = {
            "idScope": self.endpoint.id_scope,
            "id": identity.registration_id,
            "apiVersion": identity.api_version,
        }
        headers = {"authorization": identity.password} if identity.password else {}
        api = self.endpoint.device_api
        if operation == "device.register":
            take_registration(self.endpoint.registrations)
            return api.register(ApiRequest(params, headers, body, has_body, self.client_chain))
        operation_id = props.get("operationId", "")
        if not operation_id:
            raise ApiError(codes.INVALID_DEVICE_REQUEST, "The poll topic names no operationId.")
        request = ApiRequest(
            {**params, "operationId": operation_id}, headers, None, False, self.client_chain
        )
        return api.operation_status(request)

    # ------------------------------------------------------------------ helpers
    def _send(self, data: bytes) -> bool:
        try:
            self.stream.write(data)
        except OSError:
            return False
        return True

    def _entry(self, method: str, path: str, operation: str) -> dict[str, Any]:
        identity = self.identity
        return access_entry(
            self.transport,
            method,
            operation,
            path=path,
            apiVersion=identity.api_version if identity else None,
            registrationId=identity.registration_id if identity else None,
        )

    def _log_closed(self, started: float, operation: str, reason: str) -> None:
        entry = self._entry("CLOSE", "", operation)
        entry.update(status=None, errorCode=None, message=reason, durationMs=_ms(started))
        log.debug("lab DPS MQTT %s: %s", self.peer, reason)
        self.endpoint.access_log.write(entry)


def access_entry(transport: str, method: str, operation: str, **fields: Any) -> dict[str, Any]:
    """An access-log entry of the MQTT transports, in the HTTPS entries' shape, plus ``fields``."""
    entry: dict[str, Any] = {
        "time": validation.timestamp(datetime.now(UTC)),
        "trackingId": str(uuid.uuid4()),
        "transport": transport,
        "method": method,
        "path": "",
        "operation": operation,
        "policy": "device",
        "apiVersion": None,
        "registrationId": None,
        "billable": False,
        "fault": None,
        "requestBytes": 0,
    }
    entry.update(fields)
    return entry


def _topic_properties(query: str) -> dict[str, str]:
    """``$rid=1&operationId=x`` as a dict (values URL-decoded; ``+`` stays ``+``, as in the SDK)."""
    props: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        props[unquote(key)] = unquote(value)
    return props


def _whole_seconds(header: str) -> int:
    """A Retry-After header as the whole seconds the MQTT topic carries (SDKs parse an int)."""
    try:
        seconds = float(header)
    except ValueError:
        return 1
    return max(0, math.floor(seconds + 0.5)) if math.isfinite(seconds) else 1


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)
