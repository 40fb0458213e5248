"""Byte transport to a board over any pyserial URL (/dev/tty*, socket://, loop://, rfc2217://)."""

from __future__ import annotations

import contextlib
import time

import serial

from station.domain.errors import BoardDisconnectedError

try:
    from termios import error as _TermiosError
except ImportError:  # not POSIX
    _TermiosError = OSError  # type: ignore[misc,assignment]

# What pyserial lets through when the device vanishes: its own errors, OS errors (EIO) and,
# from tcflush/tcsetattr on a hung-up tty, termios.error (not an OSError subclass).
_PORT_ERRORS = (serial.SerialException, OSError, _TermiosError)


class SerialTransport:
    """An open serial port; every pyserial failure becomes :class:`BoardDisconnectedError`.

    Args:
        url: a device path or pyserial URL.
        baud: line speed (8N1).
    """

    def __init__(self, url: str, baud: int = 115_200) -> None:
        self.url = url
        try:
            self._port = serial.serial_for_url(url, baudrate=baud, timeout=0.05, write_timeout=5)
        except (*_PORT_ERRORS, ValueError) as exc:
            raise BoardDisconnectedError(
                f"cannot open board port {url}: {exc}",
                remedy="Check that the board is plugged in and that no other program uses it.",
                port=url,
            ) from exc
        self.bytes_in = 0
        self.bytes_out = 0
        # Bytes a board sent after the previous user closed the port are stale: drop them.
        try:
            self.discard_input()
        except BoardDisconnectedError:
            self.close()
            raise

    def write(self, data: bytes) -> None:
        """Write all of ``data``."""
        try:
            self._port.write(data)
            self._port.flush()
        except _PORT_ERRORS as exc:
            raise self._gone(exc) from exc
        self.bytes_out += len(data)

    def read(self, deadline: float) -> bytes:
        """Return the bytes available now, waiting until ``deadline`` (monotonic) for the first."""
        try:
            while True:
                waiting = self._port.in_waiting
                if waiting:
                    data = bytes(self._port.read(waiting))
                else:
                    if time.monotonic() >= deadline:
                        return b""
                    # The port's fixed 50 ms timeout bounds how late a deadline is noticed.
                    data = bytes(self._port.read(1))
                if data:
                    self.bytes_in += len(data)
                    return data
        except _PORT_ERRORS as exc:
            raise self._gone(exc) from exc

    def discard_input(self) -> None:
        """Drop whatever the board sent that was not read yet (resync before a retry)."""
        try:
            self._port.reset_input_buffer()
        except _PORT_ERRORS as exc:
            raise self._gone(exc) from exc

    def close(self) -> None:
        """Close the port (idempotent)."""
        # Closing a port whose device vanished can fail; it is closed either way.
        with contextlib.suppress(*_PORT_ERRORS):
            self._port.close()

    def _gone(self, exc: BaseException) -> BoardDisconnectedError:
        return BoardDisconnectedError(
            f"board on {self.url} disconnected: {exc}",
            remedy="Check the cable and re-plug the board, then retry.",
            port=self.url,
        )
