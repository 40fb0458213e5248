"""Start, stop and inspect the local DPS stand-in in-process.

>>> with LocalDps(DpsOptions(state_dir=tmp)) as dps:          # doctest: +SKIP
...     client = DeviceProvisioningClient.from_connection_string(
...         dps.connection_string(), connection_verify=str(dps.ca_bundle))

The same server answers the device registration API (``/{idScope}/registrations/...``) for the
ID scope in :class:`DpsOptions`, allocating devices across ``linked_hubs``.

State directory layout: ``dps.sqlite3`` (records), ``policies.json`` (0600, policy keys),
``tls/`` (lab CA bundle, server certificate and key), ``access.jsonl`` (one line per request),
``connection-string.txt`` (0600, for ``[dps] connection_string_file``) and
``device-endpoints.json`` (HTTPS, MQTT, MQTT-over-WebSocket and port-map addresses).

Devices register over HTTPS, MQTT (its own port, real DPS: 8883) or MQTT over WebSocket (the HTTPS
port, ``/$iothub/websocket``); see docs/lab-dps.md, "Transports".
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

import hsm
from station.domain.errors import LabDpsError
from station_lab.dps import auth, validation
from station_lab.dps.allocation import DEFAULT_HUBS, Allocator, LinkedHub
from station_lab.dps.credentials import DeviceRegistry
from station_lab.dps.limits import FaultInjector, FaultPlan, RateLimiter
from station_lab.dps.mqtt_server import MqttTransports
from station_lab.dps.mqtt_session import MqttEndpoint
from station_lab.dps.registration import DeviceApiSettings, DeviceRegistrationApi
from station_lab.dps.server import (
    AccessLog,
    DpsHttpServer,
    ServerContext,
    device_routes,
    lab_routes,
    read_access_log,
    service_routes,
)
from station_lab.dps.service import EnrollmentApi, Quotas
from station_lab.dps.store import DpsStore
from station_lab.dps.tls import ensure_tls
from station_lab.dps.versions import DEFAULT_API_VERSIONS

MAX_MESSAGE_BYTES: Final = 96 * 1024
DEFAULT_ID_SCOPE: Final = "0ne00000001"
MAX_LINKED_HUBS: Final = 50  # DPS's documented limits
MAX_CA_CERTIFICATES: Final = 25
GLOBAL_ENDPOINT: Final = "global.azure-devices-provisioning.net"
DEVICE_ENDPOINTS_FILE: Final = "device-endpoints.json"


@dataclass(frozen=True)
class DpsOptions:
    """How to run the stand-in. Defaults follow DPS's documented limits."""

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    reset: bool = False
    rate_limit: int = 1000  # operations per (scaled) minute; 0 disables throttling
    registration_rate_limit: int = 1000  # device registrations per (scaled) minute; 0: none
    time_scale: float = 1.0  # >1 makes the lab's minute shorter
    faults: FaultPlan = field(default_factory=FaultPlan)
    max_enrollments: int = 1_000_000
    max_groups: int = 100
    max_message_bytes: int = MAX_MESSAGE_BYTES
    api_versions: tuple[str, ...] = DEFAULT_API_VERSIONS
    # device registration API
    id_scope: str = DEFAULT_ID_SCOPE
    linked_hubs: tuple[LinkedHub, ...] = tuple(LinkedHub(h) for h in DEFAULT_HUBS)
    allocation_policy: str = "hashed"  # the service-level default: hashed|static|geoLatency
    retry_after_s: float = 3.0  # Retry-After on 202 (DPS's documented example)
    assignment_delay_s: float = 0.0  # how long an operation stays "assigning"
    webhook_ca_bundle: Path | None = None  # extra trust for https custom-allocation webhooks
    # device MQTT (docs/lab-dps.md "Transports"); MQTT over WebSocket shares the HTTPS port
    mqtt_port: int = 0  # real DPS: 8883; 0: any free port
    mqtt_connect_timeout_s: float = 10.0  # a connection that sends no CONNECT is closed then
    # the lab device registry's keys (SoftHSM2): PIN file (default: $STATION_PKCS11_PIN)
    registry_pin_file: Path | None = None


class LocalDps:
    """A running (after :meth:`start`) DPS stand-in on the loopback interface."""

    def __init__(self, options: DpsOptions) -> None:
        if not _is_loopback(options.host):
            raise LabDpsError(
                f"the lab DPS only listens on loopback, not on {options.host!r}",
                remedy="Use 127.0.0.1 (the default) or ::1.",
                host=options.host,
            )
        if len(options.linked_hubs) > MAX_LINKED_HUBS:
            raise LabDpsError(
                f"a DPS links at most {MAX_LINKED_HUBS} IoT hubs, not {len(options.linked_hubs)}",
                remedy=f"Give at most {MAX_LINKED_HUBS} --hub options.",
                hubs=len(options.linked_hubs),
            )
        self.options = options
        self.faults = FaultInjector(options.faults)
        self._server: DpsHttpServer | None = None
        self._mqtt: MqttTransports | None = None
        self._thread: threading.Thread | None = None
        self._store: DpsStore | None = None
        self._access_log: AccessLog | None = None
        self.api: EnrollmentApi | None = None
        self.device_api: DeviceRegistrationApi | None = None
        self._tls: ssl.SSLContext | None = None
        self.policies: dict[str, auth.AccessPolicy] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalDps:
        """Open the state, bind the port and serve in a background thread.

        Raises:
            LabDpsError: the state directory or the port cannot be used.
        """
        if self._server is not None:
            raise LabDpsError("the lab DPS is already running", port=self.port)
        opts = self.options
        try:
            opts.state_dir.mkdir(parents=True, exist_ok=True)
            tls_files = ensure_tls(opts.state_dir / "tls")
            self.policies = auth.load_or_create_policies(opts.state_dir / "policies.json")
            self._store = DpsStore(opts.state_dir / "dps.sqlite3")
            self._access_log = AccessLog(opts.state_dir / "access.jsonl")
        except OSError as exc:
            self._close_state()
            raise LabDpsError(
                f"cannot use the lab DPS state directory {opts.state_dir}: {exc.strerror}",
                remedy="Check that the directory is writable, or pass another --state.",
                path=str(opts.state_dir),
            ) from exc
        if opts.reset:
            self._store.reset()
            self._access_log.truncate()
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.load_cert_chain(tls_files.certificate, tls_files.private_key)
        # X.509 devices: TLS verifies the client chain up to any enrolled certificate (a partial
        # chain may end at an intermediate or at an individual enrollment's own certificate).
        # Clients without a certificate (service API, SAS and TPM devices) are still accepted.
        tls.verify_mode = ssl.CERT_OPTIONAL
        tls.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        self._tls = tls
        for kind in ("certificates", "cas"):
            self._trust([base64.b64decode(doc["der"]) for doc in self._store.all(kind)])
        self.api = EnrollmentApi(
            self._store,
            quotas=Quotas(max_enrollments=opts.max_enrollments, max_groups=opts.max_groups),
            on_certificates=self._trust,
        )
        self.device_api = DeviceRegistrationApi(
            self._store,
            Allocator(
                opts.linked_hubs,
                default_policy=opts.allocation_policy,
                webhook_ca_bundle=opts.webhook_ca_bundle,
            ),
            DeviceApiSettings(
                id_scope=opts.id_scope,
                retry_after_s=opts.retry_after_s,
                assignment_delay_s=opts.assignment_delay_s,
                time_scale=opts.time_scale,
            ),
            registry=DeviceRegistry(
                self._store,
                pins=hsm.PinSource(file=opts.registry_pin_file) if opts.registry_pin_file else None,
            ),
        )
        # one limit for the unit's registrations, whichever transport they come over
        registrations = RateLimiter(opts.registration_rate_limit, time_scale=opts.time_scale)
        context = ServerContext(
            routes=service_routes(self.api)
            + device_routes(self.device_api)
            + lab_routes(self.device_api),
            policies=self.policies,
            audiences=frozenset(),
            api_versions=frozenset(opts.api_versions),
            max_message_bytes=opts.max_message_bytes,
            limiter=RateLimiter(opts.rate_limit, time_scale=opts.time_scale),
            registrations=registrations,
            faults=self.faults,
            access_log=self._access_log,
        )
        try:
            server_cls = _server_class(opts.host)
            self._server = server_cls((opts.host, opts.port), tls, context)
        except OSError as exc:
            self._close_state()
            raise LabDpsError(
                f"cannot listen on {opts.host} port {opts.port}: {exc.strerror}",
                remedy="Pick another --port, or stop whatever is using it.",
                host=opts.host,
                port=opts.port,
            ) from exc
        try:
            self._mqtt = MqttTransports(
                opts.host,
                opts.mqtt_port,
                self.port,
                tls,
                MqttEndpoint(
                    device_api=self.device_api,
                    access_log=self._access_log,
                    id_scope=opts.id_scope,
                    api_versions=frozenset(opts.api_versions),
                    max_message_bytes=opts.max_message_bytes,
                    registrations=registrations,
                    connect_timeout_s=opts.mqtt_connect_timeout_s,
                ),
            )
        except OSError as exc:
            self._server.server_close()
            self._server = None
            self._close_state()
            raise LabDpsError(
                f"cannot listen for MQTT on {opts.host} port {opts.mqtt_port}: {exc.strerror}",
                remedy="Pick another --mqtt-port, or stop whatever is using it.",
                host=opts.host,
                port=opts.mqtt_port,
            ) from exc
        context.upgrade = self._mqtt.upgrade
        self._mqtt.start()
        context.audiences = frozenset(self._audiences())
        self._write_connection_file()
        self._write_device_endpoints()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="lab-dps",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections, the database and the log. Idempotent."""
        if self._mqtt is not None:
            self._mqtt.stop()
            self._mqtt = None
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._close_state()

    def _close_state(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._access_log is not None:
            self._access_log.close()
            self._access_log = None

    def __enter__(self) -> LocalDps:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ what clients need
    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._running().server_address[1])

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the socket is bound to."""
        host, port = self._running().server_address[:2]
        return str(host), int(port)

    @property
    def mqtt_port(self) -> int:
        """The bound MQTT-over-TLS port (real DPS: 8883)."""
        return self._running_mqtt().mqtt_port

    @property
    def port_map(self) -> tuple[str, int]:
        """The lab's port-map proxy (host, port): DPS's device ports 8883 and 443 on this lab.

        Device SDKs that dial fixed ports reach the stand-in through it with their proxy option
        (HTTP CONNECT); see ``lab/station_lab/dps/port_map.py``.
        """
        return self.options.host, self._running_mqtt().port_map_port

    @property
    def websocket_url(self) -> str:
        """Where MQTT over WebSocket is served (the HTTPS port)."""
        return f"wss://{self.host_name}/$iothub/websocket"

    @property
    def host_name(self) -> str:
        """The ``HostName`` of the connection string (``127.0.0.1:PORT``)."""
        host = self.options.host
        shown = f"[{host}]" if ":" in host else host
        return f"{shown}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The service URL."""
        return f"https://{self.host_name}"

    @property
    def ca_bundle(self) -> Path:
        """The PEM file clients must trust (``connection_verify=``, ``[dps] ca_bundle``)."""
        return self.options.state_dir / "tls" / "ca.pem"

    @property
    def access_log_path(self) -> Path:
        """The JSON-lines access log."""
        return self.options.state_dir / "access.jsonl"

    @property
    def connection_file(self) -> Path:
        """The 0600 file holding the owner connection string."""
        return self.options.state_dir / "connection-string.txt"

    def connection_string(self, policy: str = auth.OWNER_POLICY) -> str:
        """The service connection string for ``policy`` (default: the owner policy)."""
        try:
            chosen = self.policies[policy]
        except KeyError as exc:
            raise LabDpsError(
                f"the lab DPS has no policy named {policy!r}",
                remedy=f"Use one of {', '.join(sorted(self.policies))}.",
            ) from exc
        return auth.connection_string(self.host_name, chosen)

    def access_log(self) -> list[dict[str, Any]]:
        """The access-log entries so far, oldest first."""
        return read_access_log(self.access_log_path)

    @property
    def id_scope(self) -> str:
        """The ID scope devices register under."""
        return self.options.id_scope

    @property
    def device_endpoint(self) -> str:
        """Where devices register (this stand-in plays the global device endpoint too)."""
        return self.endpoint

    def add_ca_certificate(self, name: str, certificate_pem: str) -> dict[str, Any]:
        """Upload a verified CA certificate that groups can name in ``caReferences``.

        The lab's stand-in for the ARM certificate upload with "verified on upload" set.

        Raises:
            LabDpsError: the certificate cannot be parsed or the stand-in is not running.
        """
        store = self._running_store()
        try:
            cert = validation.load_certificate(certificate_pem, "certificate")
        except Exception as exc:
            raise LabDpsError(f"the CA certificate {name!r} cannot be parsed") from exc
        held = {ca["name"].lower() for ca in store.all("cas")}
        if name.lower() not in held and len(held) >= MAX_CA_CERTIFICATES:
            raise LabDpsError(
                f"the lab DPS holds its maximum of {MAX_CA_CERTIFICATES} CA certificates",
                remedy="Replace one by uploading under its name, as DPS allows.",
                name=name,
            )
        der = cert.public_bytes(serialization.Encoding.DER)
        doc = {
            "name": name,
            "thumbprint": validation.thumbprint(cert),
            "der": base64.b64encode(der).decode("ascii"),
            "isVerified": True,
        }
        store.put("cas", name.lower(), doc)
        self._trust([der])
        return {k: v for k, v in doc.items() if k != "der"}

    # ------------------------------------------------------------------ device registry (ADR)
    @property
    def registry(self) -> DeviceRegistry:
        """The lab's ADR namespace: credential, credential policies, issuance (credentials.py)."""
        if self.device_api is None:
            raise LabDpsError("the lab DPS is not running", remedy="Call start() first.")
        return self.device_api.registry

    def enable_certificate_management(self, namespace: str, root_key_uri: str) -> x509.Certificate:
        """Create the namespace's credential: its root CA, key generated at ``root_key_uri``."""
        return self.registry.create_credential(namespace, root_key_uri)

    def create_credential_policy(
        self, name: str, key_uri: str, *, validity_days: int = 30
    ) -> x509.Certificate:
        """Create a credential policy: an issuing CA (key at ``key_uri``) signed by the root."""
        return self.registry.create_policy(name, key_uri, validity_days=validity_days)

    def hub_devices(self, hub: str | None = None) -> list[dict[str, Any]]:
        """The hub registry: devices the linked hubs got (all hubs, or one)."""
        if self.device_api is None:
            raise LabDpsError("the lab DPS is not running", remedy="Call start() first.")
        return self.device_api.hub_devices(hub)

    def _running_store(self) -> DpsStore:
        if self._store is None:
            raise LabDpsError("the lab DPS is not running", remedy="Call start() first.")
        return self._store

    def _trust(self, ders: list[bytes]) -> None:
        """Add enrolled certificates to the client-certificate trust of new TLS connections."""
        if self._tls is None:
            return
        for der in ders:
            # OpenSSL's store ignores duplicates; loading is cheap and thread-safe.
            x509.load_der_x509_certificate(der)  # refuse garbage before OpenSSL sees it
            self._tls.load_verify_locations(cadata=der)

    def record_registration(self, registration_id: str, **kwargs: Any) -> dict[str, Any]:
        """Store a device registration state (see :meth:`EnrollmentApi.record_registration`)."""
        if self.api is None:
            raise LabDpsError("the lab DPS is not running")
        return self.api.record_registration(registration_id, **kwargs)

    # ------------------------------------------------------------------ helpers
    def _running_mqtt(self) -> MqttTransports:
        if self._mqtt is None:
            raise LabDpsError("the lab DPS is not running", remedy="Call start() first.")
        return self._mqtt

    def _running(self) -> DpsHttpServer:
        if self._server is None:
            raise LabDpsError("the lab DPS is not running", remedy="Call start() first.")
        return self._server

    def _audiences(self) -> list[str]:
        port = self.port
        names = {self.options.host, "localhost", "127.0.0.1", "[::1]"}
        return [n.lower() for name in names for n in (name, f"{name}:{port}")] + [
            self.host_name.lower()
        ]

    @property
    def device_endpoints_file(self) -> Path:
        """Where devices reach this stand-in (JSON), for lab tools in other processes."""
        return self.options.state_dir / DEVICE_ENDPOINTS_FILE

    def _write_device_endpoints(self) -> None:
        host, port_map = self.port_map
        shown = f"[{host}]" if ":" in host else host
        endpoints = {
            "https": self.host_name,
            "mqtt": f"{shown}:{self.mqtt_port}",
            "websocket": self.websocket_url,
            "portMap": f"{shown}:{port_map}",
        }
        self.device_endpoints_file.write_text(json.dumps(endpoints, indent=2) + "\n", "utf-8")

    def _write_connection_file(self) -> None:
        path = self.connection_file
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.connection_string() + "\n")


@contextmanager
def running_dps(options: DpsOptions) -> Iterator[LocalDps]:
    """Run a stand-in for the duration of a ``with`` block."""
    with LocalDps(options) as dps:
        yield dps


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _server_class(host: str) -> type[DpsHttpServer]:
    import socket

    if ":" not in host:
        return DpsHttpServer

    class _V6Server(DpsHttpServer):
        address_family = socket.AF_INET6

    return _V6Server
