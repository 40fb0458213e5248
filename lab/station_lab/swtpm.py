"""A software TPM (swtpm) on a unix socket, for tests, benchmarks and the lab's station-side TPM.

Lab *boards* run their own swtpm behind the board link (lab/station_lab/boards/tpm.py); this is the
other case: a TPM reached directly through the swtpm TCTI (``TCTILdr("swtpm", tcti_conf)``), as
the station's own TPM (a ``tpm:`` CA key), a device's TPM at first boot, or a reference for
benchmarks.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from station.domain.errors import TpmError

_START_TIMEOUT_S = 30.0


class SocketSwtpm:
    """``swtpm socket --tpm2`` with a data and a control unix socket; a context manager.

    Args:
        state_dir: where the TPM keeps its state (a fresh temporary directory if ``None``; it is
            removed on stop). Socket paths must stay under ~100 characters, so the sockets live
            in a short directory under /tmp whatever ``state_dir`` is.
    """

    def __init__(self, state_dir: Path | None = None) -> None:
        self._own_state = state_dir is None
        self._sockets = Path(tempfile.mkdtemp(prefix="swtpm-", dir="/tmp"))
        self.state_dir = self._sockets if state_dir is None else state_dir
        self.socket = self._sockets / "tpm"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def tcti_conf(self) -> str:
        """The swtpm TCTI configuration (``path=...``; the control socket is ``path.ctrl``)."""
        return f"path={self.socket}"

    def start(self) -> SocketSwtpm:
        """Start swtpm and wait until both sockets exist.

        Raises:
            TpmError: swtpm is missing, exited, or did not listen within 30 s.
        """
        try:
            self._process = subprocess.Popen(
                [
                    "swtpm",
                    "socket",
                    "--tpm2",
                    "--tpmstate",
                    f"dir={self.state_dir}",
                    "--server",
                    f"type=unixio,path={self.socket}",
                    "--ctrl",
                    f"type=unixio,path={self.socket}.ctrl",
                    "--flags",
                    "not-need-init,startup-clear",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            raise TpmError(
                "swtpm is not installed",
                remedy="Run packaging/install-system-deps.sh.",
            ) from exc
        deadline = time.monotonic() + _START_TIMEOUT_S
        control = Path(f"{self.socket}.ctrl")
        while not (self.socket.exists() and control.exists()):
            if self._process.poll() is not None:
                self.stop()
                raise TpmError("swtpm exited while starting", state=str(self.state_dir))
            if time.monotonic() > deadline:
                self.stop()
                raise TpmError("swtpm did not start listening within 30 s")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop swtpm (SIGTERM, then SIGKILL) and remove the sockets (and a temporary state)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(self._sockets, ignore_errors=True)
        if self._own_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> SocketSwtpm:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
