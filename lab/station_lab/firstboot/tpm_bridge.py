"""A board's TPM on loopback TCP, in the TPM simulator's socket protocol, for the Node device SDK.

The Node TPM security client (azure-iot-security-tpm) reaches a TPM through tss.js, which on
Linux opens ``/dev/tpm0`` or, in simulator mode, the Microsoft TPM simulator's two TCP ports: a
command port (handshake, then ``SEND_COMMAND`` frames) and the platform port next to it (power
and NV signals). A lab board's swtpm is a child of the board process on a socketpair, and only
that process may talk to it, so the board serves this small bridge for the SDK it runs: every
command frame goes to the board's own ``transmit``; platform signals are acknowledged (the
board's TPM is always powered).

Frames (big-endian): ``u32 command``; ``HANDSHAKE``: ``u32 client version`` -> ``u32 server
version, u32 TPM info, u32 0``; ``SEND_COMMAND``: ``u8 locality, u32 size, command`` -> ``u32 size,
response, u32 0``; ``SESSION_END``/``STOP`` end the connection. Listens on 127.0.0.1 only, for one
registration at a time.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import struct
import threading
from types import TracebackType
from typing import Final, Protocol

log = logging.getLogger(__name__)

SIGNAL_POWER_ON: Final = 1
SEND_COMMAND: Final = 8
SIGNAL_NV_ON: Final = 11
HANDSHAKE: Final = 15
SESSION_END: Final = 20
STOP: Final = 21
SERVER_VERSION: Final = 1
MAX_COMMAND_BYTES: Final = 4096
_TIMEOUT_S: Final = 60.0


class Transmit(Protocol):
    """A TPM that runs one raw command (the board's swtpm)."""

    def transmit(self, command: bytes) -> bytes:
        """Run one raw TPM command and return its response."""
        ...


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _u32(sock: socket.socket) -> int | None:
    data = _recv_exact(sock, 4)
    return None if data is None else int(struct.unpack(">I", data)[0])


class _CommandHandler(socketserver.BaseRequestHandler):
    server: _BridgeServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(_TIMEOUT_S)
        with contextlib.suppress(OSError):
            while (command := _u32(sock)) is not None:
                if command == HANDSHAKE:
                    if _u32(sock) is None:
                        return
                    sock.sendall(struct.pack(">III", SERVER_VERSION, 0, 0))
                elif command == SEND_COMMAND:
                    head = _recv_exact(sock, 5)
                    if head is None:
                        return
                    size = int(struct.unpack(">I", head[1:])[0])
                    if size > MAX_COMMAND_BYTES:
                        return
                    body = _recv_exact(sock, size)
                    if body is None:
                        return
                    with self.server.lock:  # one command at a time on the board's TPM
                        response = self.server.tpm.transmit(body)
                    sock.sendall(struct.pack(">I", len(response)) + response + b"\0\0\0\0")
                else:  # SESSION_END, STOP or anything this bridge does not serve
                    return


class _PlatformHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(_TIMEOUT_S)
        with contextlib.suppress(OSError):
            while (command := _u32(sock)) is not None:
                if command in (SESSION_END, STOP):
                    return
                sock.sendall(b"\0\0\0\0")  # power, NV and the other signals: acknowledged


class _BridgeServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = False  # the port pair must really be free

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[socketserver.BaseRequestHandler],
        tpm: Transmit,
        lock: threading.Lock,
    ) -> None:
        self.tpm = tpm
        self.lock = lock
        super().__init__(address, handler)


class TpmSimulatorBridge:
    """The bridge's two listening ports (``port`` and ``port + 1``); a context manager.

    Raises:
        OSError: no free pair of adjacent ports was found.
    """

    def __init__(self, tpm: Transmit, host: str = "127.0.0.1", attempts: int = 20) -> None:
        lock = threading.Lock()
        last: OSError | None = None
        for _ in range(attempts):
            command = _BridgeServer((host, 0), _CommandHandler, tpm, lock)
            port = int(command.server_address[1])
            try:
                platform = _BridgeServer((host, port + 1), _PlatformHandler, tpm, lock)
            except OSError as exc:  # the neighbour port is taken: try another pair
                command.server_close()
                last = exc
                continue
            self.host, self.port = host, port
            self._servers = (command, platform)
            self._threads = [
                threading.Thread(
                    target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
                )
                for s in self._servers
            ]
            for thread in self._threads:
                thread.start()
            return
        raise last or OSError("no free pair of adjacent ports for the TPM bridge")

    def close(self) -> None:
        """Stop listening."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> TpmSimulatorBridge:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
