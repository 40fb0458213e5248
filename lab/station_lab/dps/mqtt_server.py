"""MQTT transports of the lab DPS: MQTT over TLS on its own port, MQTT over WebSocket on HTTPS.

* :class:`DpsMqttServer`: a threading TCP server (real DPS: port 8883). TLS is wrapped in the
  connection's own thread with the same context as HTTPS, so X.509 devices are verified up to an
  enrolled certificate exactly as over HTTPS, and a client that never finishes its handshake
  holds only its own thread until the connect timeout.
* :func:`websocket_upgrade`: the hook the HTTPS server calls for ``GET /$iothub/websocket``
  (subprotocol ``mqtt``); the WebSocket framing is the ``websockets`` library's sans-I/O
  protocol, driven over the connection the HTTPS server already holds.

Both hand the connection's bytes to :class:`~station_lab.dps.mqtt_session.DpsMqttSession`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import ssl
import threading
import time
from typing import Any, Final
from urllib.parse import urlsplit

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from station_lab.dps import errors as codes
from station_lab.dps.mqtt_session import (
    PACKET_SLACK,
    DpsMqttSession,
    MqttEndpoint,
    access_entry,
)
from station_lab.dps.server import peer_chain

log = logging.getLogger(__name__)

WEBSOCKET_PATH: Final = "/$iothub/websocket"
WEBSOCKET_SUBPROTOCOL: Final = Subprotocol("mqtt")
_RECV_BYTES: Final = 65536


class _SocketStream:
    """:class:`~station_lab.dps.mqtt_codec.ByteStream` over a (TLS) socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def read(self, size: int) -> bytes:
        return self._sock.recv(min(size, _RECV_BYTES))

    def write(self, data: bytes) -> None:
        self._sock.sendall(data)


class DpsMqttServer(socketserver.ThreadingTCPServer):
    """MQTT 3.1.1 over TLS, one thread per connection."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], tls: ssl.SSLContext, endpoint: MqttEndpoint
    ) -> None:
        self.tls = tls
        self.endpoint = endpoint
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, socketserver.BaseRequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Do the TLS handshake in the connection's thread, then serve the MQTT session."""
        started = time.monotonic()
        sock: socket.socket = request
        with self._lock:
            self._connections.add(sock)
        try:
            sock.settimeout(self.endpoint.connect_timeout_s)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                wrapped = self.tls.wrap_socket(sock, server_side=True)
            except ssl.SSLError as exc:
                self._log_handshake(exc, started)
                return
            except OSError as exc:  # timeout, or the client hung up mid-handshake
                log.debug("lab DPS MQTT: no TLS handshake with %s: %s", client_address, exc)
                return
            with self._lock:
                self._connections.add(wrapped)
            try:
                DpsMqttSession(
                    self.endpoint,
                    _SocketStream(wrapped),
                    set_timeout=wrapped.settimeout,
                    transport="mqtt",
                    client_chain=peer_chain(wrapped),
                    peer=str(client_address),
                ).run()
            finally:
                with self._lock:
                    self._connections.discard(wrapped)
                with contextlib.suppress(OSError):
                    wrapped.close()
        finally:
            with self._lock:
                self._connections.discard(sock)

    def _log_handshake(self, exc: ssl.SSLError, started: float) -> None:
        """A refused client certificate is a device refusal: it goes to the access log."""
        verify = isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in (
            str(exc)
        )
        entry = access_entry(
            "mqtt",
            "TLS",
            "mqtt.tls",
            status=401 if verify else None,
            errorCode=codes.UNAUTHORIZED if verify else None,
            message=(
                "Invalid certificate: its chain ends at no enrolled certificate."
                if verify
                else f"TLS handshake failed: {exc.reason or exc}"
            ),
            durationMs=round((time.monotonic() - started) * 1000, 3),
        )
        self.endpoint.access_log.write(entry)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log connection-level errors without printing to stderr."""
        log.debug("lab DPS MQTT: connection error with %s", client_address, exc_info=True)

    def close_connections(self) -> None:
        """Shut down every open connection so their threads end promptly."""
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


# --------------------------------------------------------------------------- WebSocket
class _WebSocketStream:
    """:class:`~station_lab.dps.mqtt_codec.ByteStream` over the payload of WebSocket frames.

    MQTT over WebSocket is a byte stream cut into binary messages anywhere (MQTT 3.1.1 §6), so
    frames are concatenated in order, whatever their boundaries.
    """

    def __init__(self, protocol: ServerProtocol, rfile: Any, sock: socket.socket) -> None:
        self._protocol = protocol
        self._rfile = rfile
        self._sock = sock
        self._buffer = bytearray()

    def read(self, size: int) -> bytes:
        while not self._buffer:
            if self._protocol.state is State.CLOSED:
                return b""
            data = self._rfile.read1(_RECV_BYTES)
            if data:
                self._protocol.receive_data(data)
            else:
                self._protocol.receive_eof()
            for event in self._protocol.events_received():
                if isinstance(event, Frame) and event.opcode in (
                    Opcode.BINARY,
                    Opcode.TEXT,
                    Opcode.CONT,
                ):
                    self._buffer += event.data
            self._flush()  # pongs and the closing handshake
            if not data and not self._buffer:
                return b""
        chunk = bytes(self._buffer[:size])
        del self._buffer[:size]
        return chunk

    def write(self, data: bytes) -> None:
        self._protocol.send_binary(data)
        self._flush()

    def close(self) -> None:
        if self._protocol.state is State.OPEN:
            self._protocol.send_close()
            with contextlib.suppress(OSError):
                self._flush()

    def _flush(self) -> None:
        for chunk in self._protocol.data_to_send():
            if chunk:  # an empty chunk means "close the TCP connection": the caller does that
                self._sock.sendall(chunk)


def is_websocket_upgrade(path: str, headers: Any) -> bool:
    """Whether a GET is the MQTT-over-WebSocket upgrade (``/$iothub/websocket``)."""
    return (
        urlsplit(path).path.lower() == WEBSOCKET_PATH.lower()
        and str(headers.get("Upgrade", "")).lower() == "websocket"
    )


def websocket_upgrade(endpoint: MqttEndpoint, handler: Any) -> bool:
    """Take over an HTTPS connection that asks for MQTT over WebSocket; False if it does not.

    Args:
        endpoint: the stand-in's shared MQTT state.
        handler: the HTTPS server's request handler (``path``, ``headers``, ``rfile``,
            ``connection``).
    """
    if not is_websocket_upgrade(handler.path, handler.headers):
        return False
    protocol = ServerProtocol(
        subprotocols=[WEBSOCKET_SUBPROTOCOL],
        max_size=endpoint.max_message_bytes + PACKET_SLACK,
    )
    # The HTTPS server has parsed the request already; it is handed to the protocol as the bytes
    # it arrived as, so the protocol's own parser moves on to frames after the handshake.
    head = handler.requestline + "\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in handler.headers.items())
    protocol.receive_data((head + "\r\n").encode("latin-1"))
    request = next(
        (event for event in protocol.events_received() if isinstance(event, Request)), None
    )
    if request is None:
        return False  # not a request the protocol can parse: the HTTPS server answers it
    response = protocol.accept(request)
    protocol.send_response(response)
    sock: socket.socket = handler.connection
    stream = _WebSocketStream(protocol, handler.rfile, sock)
    try:
        stream._flush()
    except OSError:
        return True
    if response.status_code != 101:
        reason = protocol.handshake_exc
        endpoint.access_log.write(
            access_entry(
                "mqtt-ws",
                "GET",
                "mqtt.websocket",
                path=WEBSOCKET_PATH,
                status=response.status_code,
                errorCode=None,
                message=f"WebSocket upgrade refused: {reason}",
            )
        )
        return True
    try:
        DpsMqttSession(
            endpoint,
            stream,
            set_timeout=sock.settimeout,
            transport="mqtt-ws",
            client_chain=peer_chain(sock),
            peer=str(handler.client_address),
        ).run()
    finally:
        stream.close()
    return True


# --------------------------------------------------------------------------- lifecycle
class MqttTransports:
    """The MQTT listener and the lab's port map of one running stand-in.

    Args:
        host: the loopback address the stand-in listens on.
        mqtt_port: the MQTT-over-TLS port (0: any free port; real DPS: 8883).
        https_port: the stand-in's HTTPS port, which also serves MQTT over WebSocket.
        tls: the stand-in's TLS server context (shared with HTTPS).
        endpoint: the shared MQTT state.

    Raises:
        OSError: a port cannot be bound.
    """

    def __init__(
        self,
        host: str,
        mqtt_port: int,
        https_port: int,
        tls: ssl.SSLContext,
        endpoint: MqttEndpoint,
    ) -> None:
        from station_lab.dps.port_map import HTTPS_PORT, MQTT_PORT, PortMapProxy

        self.endpoint = endpoint
        self.mqtt = DpsMqttServer((host, mqtt_port), tls, endpoint)
        try:
            self.port_map = PortMapProxy(
                (host, 0), host, {MQTT_PORT: self.mqtt_port, HTTPS_PORT: https_port}
            )
        except OSError:
            self.mqtt.server_close()
            raise
        self._threads = [
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=name,
                daemon=True,
            )
            for name, server in (("lab-dps-mqtt", self.mqtt), ("lab-dps-port-map", self.port_map))
        ]
        self._started = False

    @property
    def mqtt_port(self) -> int:
        """The bound MQTT-over-TLS port."""
        return int(self.mqtt.server_address[1])

    @property
    def port_map_port(self) -> int:
        """The bound port of the port-map proxy."""
        return int(self.port_map.server_address[1])

    def upgrade(self, handler: Any) -> bool:
        """The HTTPS server's hook for ``GET /$iothub/websocket``."""
        return websocket_upgrade(self.endpoint, handler)

    def start(self) -> None:
        """Serve in background threads."""
        for thread in self._threads:
            thread.start()
        self._started = True

    def stop(self) -> None:
        """Stop serving and close open connections. Idempotent."""
        for server in (self.mqtt, self.port_map):
            if self._started:  # shutdown() waits for a serve_forever that must have started
                server.shutdown()
            server.server_close()
        self._started = False
        self.mqtt.close_connections()
        for thread in self._threads:
            thread.join(timeout=10)
