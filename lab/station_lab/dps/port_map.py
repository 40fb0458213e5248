"""The lab's port map: an HTTP CONNECT proxy that puts DPS's fixed device ports on the lab's ports.

Device SDKs dial fixed ports: the Python device SDK connects MQTT to 8883 and MQTT over WebSocket
to 443 of the provisioning host, with no way to name another port. The lab DPS listens on free
ports (tests run side by side on one machine), so a device that must reach it unmodified goes
through this proxy, with the SDK's own proxy option (``ProxyOptions("HTTP", host, port)``), as a
device behind a factory proxy would. ``CONNECT localhost:8883`` reaches the lab's MQTT port and
``CONNECT localhost:443`` its HTTPS port; the device still does TLS end to end with the lab DPS
and checks its certificate against the host name it asked for.

Only the loopback names the lab's certificate carries are served (anything else: 403), so the
proxy cannot be used to reach anything but the lab DPS.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
from collections.abc import Mapping
from typing import Any, Final

log = logging.getLogger(__name__)

MQTT_PORT: Final = 8883
HTTPS_PORT: Final = 443
LAB_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_MAX_HEADER_BYTES: Final = 8192
_TIMEOUT_S: Final = 30.0


class _ConnectHandler(socketserver.BaseRequestHandler):
    server: PortMapProxy

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(_TIMEOUT_S)
        head = self._read_head(client)
        target = self.server.target(head)
        if isinstance(target, str):
            reply = f"HTTP/1.1 {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            with contextlib.suppress(OSError):
                client.sendall(reply.encode("ascii"))
            return
        try:
            upstream = socket.create_connection(target, timeout=_TIMEOUT_S)
        except OSError:
            with contextlib.suppress(OSError):
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            client.settimeout(None)
            upstream.settimeout(None)
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            back.start()
            _pipe(client, upstream)
            back.join(timeout=_TIMEOUT_S)

    @staticmethod
    def _read_head(client: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data and len(data) < _MAX_HEADER_BYTES:
            try:
                chunk = client.recv(1024)
            except OSError:
                return b""
            if not chunk:
                return b""
            data += chunk
        return data


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until EOF, then half-close ``sink``."""
    try:
        while True:
            chunk = source.recv(65536)
            if not chunk:
                break
            sink.sendall(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class PortMapProxy(socketserver.ThreadingTCPServer):
    """The proxy: ``CONNECT host:PORT`` to one of :data:`LAB_HOSTS` is relayed per ``ports``.

    Args:
        address: where the proxy listens (loopback, port 0 for any).
        upstream_host: the lab DPS's listening address.
        ports: the device ports it maps, e.g. ``{8883: mqtt_port, 443: https_port}``.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], upstream_host: str, ports: Mapping[int, int]
    ) -> None:
        self.upstream_host = upstream_host
        self.ports = dict(ports)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _ConnectHandler)

    def target(self, head: bytes) -> tuple[str, int] | str:
        """Where a request head goes: ``(host, port)``, or the HTTP status line to refuse with."""
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split()
        if len(parts) != 3 or parts[0] != "CONNECT":
            return "405 Method Not Allowed"
        host, _, port_text = parts[1].rpartition(":")
        if host.lower() not in LAB_HOSTS or not port_text.isdigit():
            return "403 Forbidden"
        mapped = self.ports.get(int(port_text))
        if mapped is None:
            return "403 Forbidden"
        return self.upstream_host, mapped

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log relay errors without printing to stderr."""
        log.debug("lab DPS port map: error with %s", client_address, exc_info=True)
