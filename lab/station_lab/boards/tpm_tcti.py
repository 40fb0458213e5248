"""The board firmware's own way to its TPM: ESAPI over a PyTCTI that calls the swtpm directly.

At first boot the firmware talks to its TPM like the Azure device SDKs do, through tpm2-pytss,
but inside the board process (no board link involved).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from tpm2_pytss import ESAPI
from tpm2_pytss.TCTI import PyTCTI

if TYPE_CHECKING:
    from station_lab.firstboot import DeviceTpm


class TpmTransmit(Protocol):
    """A TPM that runs one raw command (the board's swtpm)."""

    def transmit(self, command: bytes) -> bytes:
        """Run one raw TPM command and return its response."""
        ...


class DirectTcti(PyTCTI):  # type: ignore[misc]
    """PyTCTI over ``transmit`` (one outstanding command at a time)."""

    def __init__(self, tpm: TpmTransmit, max_size: int = 4096) -> None:
        super().__init__(max_size=max_size, magic=b"LABBOARD")
        self._tpm = tpm
        self._response: bytes | None = None

    def do_transmit(self, command: bytes) -> None:
        """Run the command now and keep the response for :meth:`do_receive`."""
        self._response = self._tpm.transmit(bytes(command))

    def do_receive(self, timeout: int) -> bytes:
        """Return the response of the last command."""
        if self._response is None:
            raise RuntimeError("no TPM response pending")
        response, self._response = self._response, None
        return response


def open_device_tpm(tpm: TpmTransmit) -> DeviceTpm:
    """A :class:`DeviceTpm` on the board's own TPM (close it when done)."""
    from station_lab.firstboot import DeviceTpm

    return DeviceTpm(ESAPI(DirectTcti(tpm)))
