"""Byte transport to a board over any pyserial URL (/dev/tty*, socket://, loop://, rfc2217://).

pyserial opens and configures the port. On a POSIX device (a tty or pty) the bytes then go
straight through its file descriptor: one ``poll`` and one ``read`` per chunk of an answer, where
pyserial's own read asks for the byte count with an ioctl and selects again for every chunk, and
a write that does not wait on ``select`` first. Other URLs (sockets, loop://) go through
pyserial.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
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
#: bytes asked for per read: more than the largest encoded frame, so an answer comes in one read
_READ_SIZE = 16_384
#: how long a write may wait for a board that does not drain its input (as pyserial's timeout)
_WRITE_TIMEOUT_S = 5.0


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
        # pyserial's POSIX port holds a non-blocking descriptor: read and write it directly
        # (a POSIX tty only: sockets, loop:// and Windows ports have no such descriptor)
        fd = getattr(self._port, "fd", None) if isinstance(self._port, serial.Serial) else None
        self._fd: int | None = None
        if isinstance(fd, int) and hasattr(select, "poll"):
            self._fd = fd
            self._poll = select.poll()
            self._poll.register(fd, select.POLLIN)
        # Bytes a board sent after the previous user closed the port are stale: drop them.
        try:
            self.discard_input()
        except BoardDisconnectedError:
            self.close()
            raise

    def write(self, data: bytes) -> None:
        """Write all of ``data``."""
        try:
            if self._fd is None:
                self._port.write(data)
            else:
                self._write_fd(self._fd, data)
            # tcdrain on a tty: on a slow UART the answer's timeout starts once the request is
            # out, not while it is still being sent (a no-op on a pty)
            self._port.flush()
        except _PORT_ERRORS as exc:
            raise self._gone(exc) from exc
        self.bytes_out += len(data)

    def read(self, deadline: float) -> bytes:
        """Return the bytes available now, waiting until ``deadline`` (monotonic) for the first."""
        try:
            fd = self._fd
            data = self._read_port(deadline) if fd is None else self._read_fd(fd, deadline)
        except _PORT_ERRORS as exc:
            raise self._gone(exc) from exc
        self.bytes_in += len(data)
        return data

    def _read_fd(self, fd: int, deadline: float) -> bytes:
        left = max(0.0, deadline - time.monotonic())
        if not self._poll.poll(math.ceil(left * 1000)):
            return b""
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:  # another reader took the bytes: nothing for us yet
            return b""
        if not data:
            # readable with nothing to read: the other end hung up (as pyserial reports it)
            raise serial.SerialException("device reports readiness to read but returned no data")
        return data

    @staticmethod
    def _write_fd(fd: int, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + _WRITE_TIMEOUT_S
        poll: select.poll | None = None
        while view:
            try:
                view = view[os.write(fd, view) :]
                continue
            except BlockingIOError:  # the board's input is full: wait until it drains
                pass
            if poll is None:
                poll = select.poll()
                poll.register(fd, select.POLLOUT)
            left = deadline - time.monotonic()
            if left <= 0 or not poll.poll(math.ceil(left * 1000)):
                raise serial.SerialTimeoutException("Write timeout")

    def _read_port(self, deadline: float) -> bytes:
        if not self._port.is_open:  # in_waiting on a closed port fails with a TypeError
            raise serial.PortNotOpenError()
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
                return data

    def discard_input(self) -> None:
        """Drop whatever the board sent that was not read yet (resync before a retry)."""
        try:
            self._port.reset_input_buffer()
        except _PORT_ERRORS as exc:
            raise self._gone(exc) from exc

    def close(self) -> None:
        """Close the port (idempotent)."""
        self._fd = None  # the descriptor's number may be reused once pyserial closes it
        # Closing a port whose device vanished can fail; it is closed either way.
        with contextlib.suppress(*_PORT_ERRORS):
            self._port.close()

    def _gone(self, exc: BaseException) -> BoardDisconnectedError:
        return BoardDisconnectedError(
            f"board on {self.url} disconnected: {exc}",
            remedy="Check the cable and re-plug the board, then retry.",
            port=self.url,
        )
