"""A real software TPM (swtpm) for one virtual board.

swtpm runs as a child of the board process in ``chardev`` mode on a socketpair, so there are no
socket files or ports to collide. The EK certificate is made once per board by ``swtpm_setup``
with a local CA that belongs to the lab (:func:`ensure_local_ca`).
"""

from __future__ import annotations

import socket
import struct
import subprocess
from pathlib import Path

TPM_STATE_FILE = "tpm2-00.permall"
_CMD_SHUTDOWN = 3
_HEADER = 10


class TpmUnavailableError(RuntimeError):
    """swtpm could not be set up, started or reached."""


def ensure_local_ca(ca_dir: Path) -> Path:
    """Write the swtpm_setup config for a lab-local CA in ``ca_dir``; return the setup config.

    The CA key and certificates are created by ``swtpm_localca`` on the first ``swtpm_setup`` run
    (it locks its directory, so boards may be set up in parallel).
    """
    ca_dir = ca_dir.resolve()
    state = ca_dir / "ca"
    state.mkdir(parents=True, exist_ok=True)
    localca = ca_dir / "swtpm-localca.conf"
    options = ca_dir / "swtpm-localca.options"
    setup = ca_dir / "swtpm_setup.conf"
    if not setup.exists():
        localca.write_text(
            f"statedir = {state}\nsigningkey = {state}/signkey.pem\n"
            f"issuercert = {state}/issuercert.pem\ncertserial = {state}/certserial\n",
            encoding="utf-8",
        )
        options.write_text(
            "--platform-manufacturer StationLab\n--platform-version 1.0\n"
            "--platform-model VirtualBoard\n",
            encoding="utf-8",
        )
        tmp = setup.with_suffix(".tmp")
        tmp.write_text(
            "create_certs_tool = /usr/bin/swtpm_localca\n"
            f"create_certs_tool_config = {localca}\n"
            f"create_certs_tool_options = {options}\n"
            "active_pcr_banks = sha256\n",
            encoding="utf-8",
        )
        tmp.replace(setup)
    return setup


def manufacture(state_dir: Path, setup_config: Path, log_file: Path) -> None:
    """Create a TPM state with EKs, EK certificates and a platform certificate (once).

    Raises:
        TpmUnavailableError: swtpm_setup failed (its log names the reason).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    if (state_dir / TPM_STATE_FILE).exists():
        return
    result = subprocess.run(
        [
            "swtpm_setup",
            "--tpm2",
            "--tpmstate",
            str(state_dir),
            "--create-ek-cert",
            "--create-platform-cert",
            # Besides the RSA 2048 EK (0x81010001, certificate at 0x01c00002): an ECC P-384 EK
            # of the TCG high range (0x81010016, certificate at 0x01c00016), as TPMs that carry
            # several EKs do.
            "--ecc",
            "--overwrite",
            "--config",
            str(setup_config),
            "--logfile",
            str(log_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )
    if result.returncode != 0 or not (state_dir / TPM_STATE_FILE).exists():
        raise TpmUnavailableError(f"swtpm_setup failed ({result.returncode}); see {log_file}")


class Swtpm:
    """A running swtpm child on socketpairs: raw command bytes in, raw response bytes out."""

    def __init__(self, state_dir: Path, log_file: Path) -> None:
        data_parent, data_child = socket.socketpair()
        ctrl_parent, ctrl_child = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [
                    "swtpm",
                    "chardev",
                    "--tpm2",
                    "--tpmstate",
                    f"dir={state_dir}",
                    "--fd",
                    str(data_child.fileno()),
                    "--ctrl",
                    f"type=unixio,clientfd={ctrl_child.fileno()}",
                    "--flags",
                    "not-need-init,startup-clear",
                    "--log",
                    f"file={log_file},level=1",
                ],
                pass_fds=(data_child.fileno(), ctrl_child.fileno()),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            data_parent.close()
            ctrl_parent.close()
            raise TpmUnavailableError(f"cannot start swtpm: {exc}") from exc
        finally:
            data_child.close()
            ctrl_child.close()
        self._data = data_parent
        self._ctrl = ctrl_parent
        self._data.settimeout(60)

    @property
    def pid(self) -> int:
        """The swtpm process id."""
        return self.process.pid

    def transmit(self, command: bytes) -> bytes:
        """Send one TPM command; return the complete response.

        Raises:
            TpmUnavailableError: swtpm went away or answered a broken header.
        """
        try:
            self._data.sendall(command)
            header = self._recv_exact(_HEADER)
            (size,) = struct.unpack(">I", header[2:6])
            if not _HEADER <= size <= 8192:
                raise TpmUnavailableError(f"TPM response size {size} out of range")
            return header + self._recv_exact(size - _HEADER)
        except OSError as exc:
            raise TpmUnavailableError(f"TPM link failed: {exc}") from exc

    def _recv_exact(self, count: int) -> bytes:
        data = bytearray()
        while len(data) < count:
            chunk = self._data.recv(count - len(data))
            if not chunk:
                raise TpmUnavailableError("swtpm closed its data channel")
            data += chunk
        return bytes(data)

    def shutdown(self) -> None:
        """Save state and stop swtpm (CMD_SHUTDOWN), killing it if it does not exit."""
        try:
            self._ctrl.settimeout(5)
            self._ctrl.sendall(struct.pack(">I", _CMD_SHUTDOWN))
            self._ctrl.recv(4)
        except OSError:
            # swtpm already gone: nothing to save; wait() below reaps it.
            pass
        finally:
            self._data.close()
            self._ctrl.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def install_ek_certificate(state_dir: Path, index: int, der: bytes) -> None:
    """Put ``der`` into NV ``index`` of a stopped board's TPM, as a TPM vendor would.

    The index is (re)defined under the platform hierarchy with the EK-certificate attributes of
    the TCG EK Credential Profile (platform-written, readable by owner and by its own auth).
    Tests use it to give a lab board a vendor's certificate, a deviant one or a high-range one.

    Raises:
        TpmUnavailableError: swtpm could not be started on the state, or refused the write.
    """
    from tpm2_pytss import ESAPI, TCTILdr, TSS2_Exception
    from tpm2_pytss.constants import ESYS_TR, TPM2_ALG, TPMA_NV
    from tpm2_pytss.types import TPM2B_NV_PUBLIC, TPMS_NV_PUBLIC

    from station.domain.errors import TpmError
    from station_lab.swtpm import SocketSwtpm

    attributes = (
        TPMA_NV.PPWRITE
        | TPMA_NV.WRITEDEFINE
        | TPMA_NV.PPREAD
        | TPMA_NV.OWNERREAD
        | TPMA_NV.AUTHREAD
        | TPMA_NV.NO_DA
        | TPMA_NV.PLATFORMCREATE
    )
    try:
        with SocketSwtpm(state_dir) as tpm:
            ectx = ESAPI(TCTILdr("swtpm", tpm.tcti_conf))
            try:
                try:
                    old = ectx.tr_from_tpmpublic(index)
                    ectx.nv_undefine_space(old, ESYS_TR.PLATFORM)
                except TSS2_Exception:
                    pass  # not defined yet
                public = TPM2B_NV_PUBLIC(
                    nvPublic=TPMS_NV_PUBLIC(
                        nvIndex=index,
                        nameAlg=TPM2_ALG.SHA256,
                        attributes=attributes,
                        dataSize=len(der),
                    )
                )
                handle = ectx.nv_define_space(b"", public, ESYS_TR.PLATFORM)
                for offset in range(0, len(der), 512):
                    ectx.nv_write(handle, der[offset : offset + 512], offset, ESYS_TR.PLATFORM)
            finally:
                ectx.close()
    except (TSS2_Exception, TpmError) as exc:
        raise TpmUnavailableError(
            f"cannot install an EK certificate at {index:#010x}: {exc}"
        ) from exc
