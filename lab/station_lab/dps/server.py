"""HTTPS transport of the stand-in: routing, api-version, SAS auth, limits, faults, access log.

Built on the stdlib ``ThreadingHTTPServer`` with TLS wrapped per connection (in the connection's
own thread, so a client that never finishes its handshake cannot stall the others). Every answer,
including refusals of malformed HTTP, carries a DPS-shaped JSON body; an unexpected exception
becomes a plain 500 with a tracking id and the traceback goes only to the server's log.

Routes are a table of (method, path pattern, operation, permission, handler), matched
case-insensitively. The service API's rows need a service SAS with a permission; the device API's
rows (permission :data:`auth.DEVICE_ACCESS`) skip that: the device API attests devices itself, with
the client certificate chain TLS verified (see :func:`peer_chain`) or a device SAS.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from station_lab.dps import auth
from station_lab.dps import errors as codes
from station_lab.dps.errors import ApiError
from station_lab.dps.limits import (
    FaultInjector,
    RateLimiter,
    retry_after_headers,
    take_registration,
)
from station_lab.dps.registration import DeviceRegistrationApi
from station_lab.dps.service import ENROLLMENTS, GROUPS, ApiRequest, ApiResponse, EnrollmentApi
from station_lab.dps.validation import timestamp

log = logging.getLogger(__name__)

DRAIN_LIMIT: Final = 16 * 1024 * 1024  # read (and discard) at most this much of an oversized body
CONNECTION_TIMEOUT_S: Final = 30.0
BODY_TIMEOUT_S = 5.0  # a body that stalls this long is refused with 408 (tests shorten it)

Handler = Callable[[ApiRequest], ApiResponse]


@dataclass(frozen=True)
class Route:
    """One row of the routing table."""

    method: str
    pattern: re.Pattern[str]
    operation: str
    permission: str
    handler: Handler


def _route(method: str, path: str, operation: str, permission: str, handler: Handler) -> Route:
    regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "/?$"
    return Route(method, re.compile(regex, re.IGNORECASE), operation, permission, handler)


def service_routes(api: EnrollmentApi) -> list[Route]:
    """The service (enrollment) API of dps-api.md §1.2. Fixed paths come before ``{id}`` ones."""
    e, g = ENROLLMENTS, GROUPS
    read, write = auth.ENROLLMENT_READ, auth.ENROLLMENT_WRITE
    reg_read, reg_write = auth.REGISTRATION_READ, auth.REGISTRATION_WRITE
    return [
        _route("POST", "/enrollments/query", "enrollment.query", read, lambda r: api.query(e, r)),
        _route("POST", "/enrollments", "enrollment.bulk", write, lambda r: api.bulk(e, r)),
        _route(
            "POST",
            "/enrollments/{id}/attestationmechanism",
            "enrollment.attestation",
            read,
            lambda r: api.attestation(e, r),
        ),
        _route("GET", "/enrollments/{id}", "enrollment.get", read, lambda r: api.get(e, r)),
        _route("PUT", "/enrollments/{id}", "enrollment.put", write, lambda r: api.put(e, r)),
        _route(
            "DELETE", "/enrollments/{id}", "enrollment.delete", write, lambda r: api.delete(e, r)
        ),
        _route("POST", "/enrollmentGroups/query", "group.query", read, lambda r: api.query(g, r)),
        _route("POST", "/enrollmentGroups", "group.bulk", write, lambda r: api.bulk(g, r)),
        _route(
            "POST",
            "/enrollmentGroups/{id}/attestationmechanism",
            "group.attestation",
            read,
            lambda r: api.attestation(g, r),
        ),
        _route("GET", "/enrollmentGroups/{id}", "group.get", read, lambda r: api.get(g, r)),
        _route("PUT", "/enrollmentGroups/{id}", "group.put", write, lambda r: api.put(g, r)),
        _route(
            "DELETE", "/enrollmentGroups/{id}", "group.delete", write, lambda r: api.delete(g, r)
        ),
        _route(
            "POST",
            "/registrations/{id}/query",
            "registration.query",
            reg_read,
            api.registration_query,
        ),
        _route("GET", "/registrations/{id}", "registration.get", reg_read, api.registration_get),
        _route(
            "DELETE",
            "/registrations/{id}",
            "registration.delete",
            reg_write,
            api.registration_delete,
        ),
    ]


def device_routes(api: DeviceRegistrationApi) -> list[Route]:
    """The device registration API of dps-api.md §8 (after the service routes in the table)."""
    device = auth.DEVICE_ACCESS
    return [
        _route(
            "PUT", "/{idScope}/registrations/{id}/register", "device.register", device, api.register
        ),
        _route(
            "GET",
            "/{idScope}/registrations/{id}/operations/{operationId}",
            "device.operation",
            device,
            api.operation_status,
        ),
        _route("POST", "/{idScope}/registrations/{id}", "device.status", device, api.status_lookup),
    ]


def lab_routes(api: DeviceRegistrationApi) -> list[Route]:
    """Lab-only reads (not DPS API): the hub registry, for tools in another process."""
    read = auth.REGISTRATION_READ
    return [
        _route(
            "GET",
            "/lab/hubDevices",
            "lab.hub_devices",
            read,
            lambda r: ApiResponse(200, api.hub_devices()),
        ),
        _route(
            "GET",
            "/lab/hubs/{hub}/devices",
            "lab.hub_devices",
            read,
            lambda r: ApiResponse(200, api.hub_devices(r.params["hub"])),
        ),
    ]


def peer_chain(connection: Any) -> tuple[bytes, ...]:
    """The client certificate chain TLS verified (DER, leaf first), or ``()`` without one.

    Python 3.11 has no public API for the chain (``SSLSocket.get_verified_chain`` is 3.13). Its
    ``_ssl`` object has had the method since 3.10, so it is used when present; otherwise only the
    leaf is returned and the device API completes the chain from enrolled certificates.
    """
    getter = getattr(getattr(connection, "_sslobj", None), "get_verified_chain", None)
    if getter is not None:
        try:
            chain = getter()
        except (ssl.SSLError, ValueError):
            chain = None
        if chain:
            return tuple(bytes(cert.public_bytes(ssl._ssl.ENCODING_DER)) for cert in chain)  # type: ignore[attr-defined]
    getpeercert = getattr(connection, "getpeercert", None)
    leaf = getpeercert(binary_form=True) if getpeercert is not None else None
    return (bytes(leaf),) if leaf else ()


class AccessLog:
    """Appends one JSON line per request; tests read it to count (billable) operations."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle = path.open("a", encoding="utf-8")

    def write(self, entry: Mapping[str, Any]) -> None:
        """Append ``entry`` and flush, so a reader sees it as soon as the response is sent."""
        line = json.dumps(entry, separators=(",", ":"), sort_keys=True)
        with self._lock:
            self._handle.write(line + "\n")
            self._handle.flush()

    def truncate(self) -> None:
        """Forget earlier entries (``--reset``)."""
        with self._lock:
            self._handle.seek(0)
            self._handle.truncate()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._handle.close()


def read_access_log(path: Path) -> list[dict[str, Any]]:
    """Return the entries of an access log, oldest first."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass
class ServerContext:
    """What request handlers share (one per running stand-in)."""

    routes: list[Route]
    policies: Mapping[str, auth.AccessPolicy]
    audiences: frozenset[str]
    api_versions: frozenset[str]
    max_message_bytes: int
    limiter: RateLimiter
    registrations: RateLimiter  # device registrations per (scaled) minute and unit (DPS: 1,000)
    faults: FaultInjector
    access_log: AccessLog
    # MQTT over WebSocket: takes over a GET it recognises as the upgrade (returns True then)
    upgrade: Callable[[Any], bool] | None = None


class _Dropped(Exception):
    """Internal signal: close the connection without answering (fault injection)."""


def error_body(error_code: int, message: str, tracking_id: str) -> dict[str, Any]:
    """Return the DPS error body ``{errorCode, trackingId, message, timestampUtc}``."""
    return {
        "errorCode": error_code,
        "trackingId": tracking_id,
        "message": message,
        "timestampUtc": timestamp(datetime.now(UTC)),
    }


class DpsRequestHandler(BaseHTTPRequestHandler):
    """Handles one connection (HTTP/1.1 keep-alive) for :class:`DpsHttpServer`."""

    protocol_version = "HTTP/1.1"
    server_version = "station-lab-dps/1"
    timeout = CONNECTION_TIMEOUT_S  # an idle keep-alive client cannot hold a thread forever
    sys_version = ""
    server: DpsHttpServer
    _drain_after = 0
    _body_withheld = False  # Expect: 100-continue refused: the client sends no body

    # every method goes through one place; unknown methods end in send_error (DPS-shaped)
    def do_GET(self) -> None:
        """Handle GET (or hand an MQTT-over-WebSocket upgrade to the MQTT transport)."""
        upgrade = self.server.context.upgrade
        if upgrade is not None and upgrade(self):
            self.close_connection = True
            return
        self._handle()

    def do_PUT(self) -> None:
        """Handle PUT."""
        self._handle()

    def do_POST(self) -> None:
        """Handle POST."""
        self._handle()

    def do_DELETE(self) -> None:
        """Handle DELETE."""
        self._handle()

    def do_PATCH(self) -> None:
        """Handle PATCH (no DPS route takes it: 405 or 404)."""
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Send http.server's own messages to logging instead of stderr."""
        log.debug("%s " + format, self.client_address[0], *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer http.server's own refusals (bad request line, 501, ...) with a DPS body."""
        tracking_id = str(uuid.uuid4())
        error_code = code * 1000 + 1
        text = message or self.responses.get(code, ("Error",))[0]
        self.close_connection = True
        # http.server falls back to header-less HTTP/0.9 answers for unparsable request lines;
        # a status line and headers are more useful to any client that sent garbage.
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        body = json.dumps(error_body(error_code, text, tracking_id)).encode()
        self._send(code, body, {"x-ms-error-code": str(error_code)})

    # ------------------------------------------------------------------ the request
    def _handle(self) -> None:
        ctx = self.server.context
        self._drain_after = 0  # bytes of an oversized body to read and drop after answering
        started = time.monotonic()
        tracking_id = str(uuid.uuid4())
        entry: dict[str, Any] = {
            "time": timestamp(datetime.now(UTC)),
            "trackingId": tracking_id,
            "method": self.command,
            "path": urlsplit(self.path).path,
            "operation": None,
            "policy": None,
            "apiVersion": None,
            "billable": False,
            "fault": None,
            "requestBytes": 0,
        }
        status = 500
        error_code: int | None = None
        try:
            fault = ctx.faults.next_fault()
            entry["fault"] = fault
            if ctx.faults.plan.latency_s > 0:
                time.sleep(ctx.faults.plan.latency_s)  # the injected latency itself
            if fault == "drop":
                raise _Dropped
            response = self._process(ctx, entry, fault)
            if fault == "drop-after":
                raise _Dropped
            status = response.status
            body = response.body
            headers = dict(response.headers)
        except _Dropped:
            self._drop()
            entry.update(status=None, errorCode=None, durationMs=_ms(started))
            ctx.access_log.write(entry)
            return
        except ApiError as exc:
            status, error_code = exc.status, exc.error_code
            body = error_body(exc.error_code, exc.message, tracking_id)
            headers = {"x-ms-error-code": str(exc.error_code), **exc.headers}
        except Exception:
            log.exception("lab DPS: unexpected error (trackingId %s)", tracking_id)
            status, error_code = 500, codes.INTERNAL
            body = error_body(codes.INTERNAL, "Internal server error.", tracking_id)
            headers = {"x-ms-error-code": str(codes.INTERNAL)}
        headers["x-ms-request-id"] = tracking_id
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        entry.update(
            status=status,
            errorCode=error_code,
            durationMs=_ms(started),
            responseBytes=len(payload),
        )
        # Log before answering: a client that has its answer always finds the entry.
        ctx.access_log.write(entry)
        self._send(status, payload, headers, json_body=body is not None)
        if self._drain_after:
            self._drain(self._drain_after)

    def _process(self, ctx: ServerContext, entry: dict[str, Any], fault: str | None) -> ApiResponse:
        parts = urlsplit(self.path)
        raw = self._read_body(ctx, entry)
        route, params = _match_route(ctx.routes, self.command, unquote(parts.path))
        entry["operation"] = route.operation
        versions = parse_qs(parts.query).get("api-version", [])
        entry["apiVersion"] = versions[0] if versions else None
        if not versions:
            raise ApiError(codes.BAD_API_VERSION, "The api-version query parameter is required.")
        if versions[0] not in ctx.api_versions:
            raise ApiError(
                codes.BAD_API_VERSION,
                f"The api-version {versions[0]!r} is not supported; use one of "
                f"{', '.join(sorted(ctx.api_versions))}.",
            )
        headers = {name.lower(): value for name, value in self.headers.items()}
        # Both APIs behave by api-version: a device's csr and an enrollment's
        # credentialPolicyName count only under the versions that define them.
        params = {**params, "apiVersion": versions[0]}
        if route.permission == auth.DEVICE_ACCESS:
            return self._device(ctx, entry, route, params, headers, raw, fault)
        policy = auth.authenticate(
            headers.get("authorization"),
            policies=ctx.policies,
            audiences=ctx.audiences,
            path=unquote(parts.path),
            now=time.time(),
        )
        entry["policy"] = policy.name
        auth.require(policy, route.permission)
        wait = ctx.limiter.acquire()
        if wait > 0:
            raise ApiError(
                codes.THROTTLED,
                f"Too many requests: the service allows {ctx.limiter.limit} operations per minute.",
                headers=retry_after_headers(wait),
            )
        entry["billable"] = True
        if fault == "500":
            raise ApiError(codes.INTERNAL, "Internal server error (injected fault).")
        return route.handler(self._request(params, headers, raw))

    def _device(
        self,
        ctx: ServerContext,
        entry: dict[str, Any],
        route: Route,
        params: dict[str, str],
        headers: dict[str, str],
        raw: bytes,
        fault: str | None,
    ) -> ApiResponse:
        # Device operations are not service operations: no policy and no service-wide limiter
        # (polling has its own per-device limit in the device API), but registrations have
        # their own per-unit limit.
        entry["policy"] = "device"
        if route.operation == "device.register":
            take_registration(ctx.registrations)
        entry["billable"] = True
        if fault == "500":
            raise ApiError(codes.INTERNAL, "Internal server error (injected fault).")
        request = self._request(params, headers, raw)
        chain = peer_chain(self.connection)
        return route.handler(
            ApiRequest(request.params, request.headers, request.body, request.has_body, chain)
        )

    def _request(self, params: dict[str, str], headers: dict[str, str], raw: bytes) -> ApiRequest:
        body: Any = None
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if raw and media_type and not media_type.endswith(("/json", "+json")):
            raise ApiError(
                codes.UNSUPPORTED_MEDIA_TYPE,
                f"The content type {media_type!r} is not supported; send application/json.",
            )
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                # RecursionError: absurdly deep nesting, still the client's malformed body
                raise ApiError(codes.MALFORMED_BODY, "The request body is not valid JSON.") from exc
        return ApiRequest(params, headers, body, has_body=bool(raw))

    def _read_body(self, ctx: ServerContext, entry: dict[str, Any]) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ApiError(codes.MALFORMED_BODY, "Chunked request bodies are not supported.")
        length = self._content_length()
        entry["requestBytes"] = length
        if length > ctx.max_message_bytes:
            # answered before the body is read; the body is then read and dropped (within
            # DRAIN_LIMIT) so a client still sending it gets to read the answer
            self.close_connection = True
            self._drain_after = 0 if self._body_withheld else length
            raise ApiError(
                codes.MESSAGE_TOO_LARGE,
                f"The request body has {length} bytes; the maximum message size is "
                f"{ctx.max_message_bytes} bytes.",
            )
        data = self._read_exactly(length) if length else b""
        if len(data) != length:
            self.close_connection = True
            raise ApiError(codes.MALFORMED_BODY, "The request body is shorter than Content-Length.")
        return data

    def _read_exactly(self, length: int) -> bytes:
        """The announced body, or 408 when it stops arriving for BODY_TIMEOUT_S.

        A Content-Length larger than the body sent cannot be told from a slow client; like
        Kestrel's minimum body data rate, a body that stalls is refused instead of holding the
        connection for the whole keep-alive time-out.
        """
        self.connection.settimeout(BODY_TIMEOUT_S)
        try:
            return bytes(self.rfile.read(length))
        except TimeoutError as exc:
            self.close_connection = True  # the rest of the body may still come: never read on
            raise ApiError(
                codes.REQUEST_TIMEOUT,
                f"The request body stopped arriving before its {length} announced bytes.",
            ) from exc
        finally:
            self.connection.settimeout(CONNECTION_TIMEOUT_S)

    def _content_length(self) -> int:
        """The request's one Content-Length (0 without one); 400 at once when it is bad."""
        values = {value.strip() for value in self.headers.get_all("Content-Length") or ["0"]}
        if len(values) > 1:
            self.close_connection = True  # the body's end is unknown: never read on
            raise ApiError(codes.MALFORMED_BODY, "The request has conflicting Content-Lengths.")
        text = values.pop() or "0"
        if not text.isdigit():  # refuses "-1", "+5", "1e3", "0x10" and lists
            self.close_connection = True
            raise ApiError(codes.MALFORMED_BODY, "Content-Length is not a number.")
        return int(text)

    def handle_expect_100(self) -> bool:
        """Answer ``Expect: 100-continue``: an oversized body is refused before it is sent.

        No ``100 Continue`` then: the request goes on to :meth:`_handle`, which logs it and
        answers 413 without waiting for (or draining) a body the client will not send.
        """
        try:
            oversized = self._content_length() > self.server.context.max_message_bytes
        except ApiError:
            oversized = False  # the request handler answers the bad header itself
        if oversized:
            self._body_withheld = True
            return True
        return bool(super().handle_expect_100())

    def _drain(self, length: int) -> None:
        # Reading the rest lets the client finish sending and read our 413 instead of a reset.
        if length > DRAIN_LIMIT:
            return
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)

    def _send(
        self, status: int, payload: bytes, headers: Mapping[str, str], *, json_body: bool = True
    ) -> None:
        try:
            self.send_response(status)
            if json_body:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if payload and self.command != "HEAD":
                self.wfile.write(payload)
        except OSError:
            self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python would accept them and echo invalid JSON back.
    raise ValueError(f"{name} is not valid JSON")


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)


def _match_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]]:
    allowed: list[str] = []
    for route in routes:
        found = route.pattern.match(path)
        if found is None:
            continue
        if route.method == method:
            return route, found.groupdict()
        if route.method not in allowed:
            allowed.append(route.method)
    if allowed:
        raise ApiError(
            codes.METHOD_NOT_ALLOWED,
            f"The method {method} is not allowed on {path}.",
            headers={"Allow": ", ".join(allowed)},  # a 405 must name what is allowed (RFC 9110)
        )
    raise ApiError(codes.ROUTE_NOT_FOUND, f"There is no resource at {path}.")


class DpsHttpServer(ThreadingHTTPServer):
    """A threading HTTPS server whose connections are wrapped in TLS in their own thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], tls: ssl.SSLContext, context: ServerContext
    ) -> None:
        self.tls = tls
        self.context = context
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, DpsRequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Do the TLS handshake in the connection's thread, then serve HTTP on it."""
        request.settimeout(CONNECTION_TIMEOUT_S)
        # Headers and body go out in separate writes; without NODELAY, Nagle plus the client's
        # delayed ACK adds ~40 ms to every response.
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.debug("lab DPS: TLS handshake with %s failed: %s", client_address, exc)
            return
        with self._connections_lock:
            self._connections.add(wrapped)
        try:
            super().finish_request(wrapped, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(wrapped)
            with contextlib.suppress(OSError):
                wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log connection-level errors (client went away) without printing to stderr."""
        log.debug("lab DPS: connection error with %s", client_address, exc_info=True)

    def close_connections(self) -> None:
        """Shut down every open keep-alive connection so their threads end promptly."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
