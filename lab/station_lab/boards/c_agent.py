"""Where the C board agent's host port is (``make agent`` builds it) and how a lab board runs it.

The lab runs C boards (``station lab boards --firmware c``) with the same kinds, registry and
fault switches as the Python boards, where the switches make sense for a firmware built from
the spec: see :data:`UNSUPPORTED_FAULTS` and docs/agent-porting.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from station.domain.errors import LabBoardError
from station_lab.boards.faults import Faults

#: Environment variable that points at another build of the host port.
BINARY_ENV = "STATION_C_AGENT"
#: Where ``make agent`` puts the host port, relative to the repository root.
BUILD_PATH = Path("build/agent/host/ports/host/station-agent-host")
#: Lab faults the C host port does not have: ``lie_ek`` forges another TPM's EK answer, a lab
#: trick of the Python board's TPM wrapper, not something firmware does.
UNSUPPORTED_FAULTS = ("lie_ek", "csr_cn", "bad_csr_sig")
FIRMWARES = ("python", "c")
#: Where a C board keeps its device key in its state folder: the PSA persistent key 0x00010001
#: in mbedTLS's file-based trusted storage (the lab's stand-in for a secure element).
DEVICE_KEY_FILE = "0000000000010001.psa_its"


def agent_binary() -> Path:
    """The host port's executable.

    Raises:
        LabBoardError: it has not been built.
    """
    configured = os.environ.get(BINARY_ENV)
    path = Path(configured) if configured else Path(__file__).resolve().parents[3] / BUILD_PATH
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise LabBoardError(
            f"the C board agent is not built ({path})",
            remedy="Run 'make agent' in the repository (needs cmake, gcc and libmbedtls-dev).",
            path=str(path),
        )
    return path


def check_faults(faults: Faults) -> None:
    """Refuse faults a C board cannot inject.

    Raises:
        LabBoardError: a fault in :data:`UNSUPPORTED_FAULTS` is set.
    """
    unsupported = [name for name in UNSUPPORTED_FAULTS if getattr(faults, name)]
    if unsupported:
        raise LabBoardError(
            f"C boards cannot inject {', '.join(unsupported)}",
            remedy="Use --firmware python for this fault.",
            faults=faults.render(),
        )


def command(
    binary: Path,
    *,
    state_dir: Path,
    kind: str,
    serial: str,
    model: str,
    baud: int,
    faults: Faults,
    tpm_setup: Path | None,
) -> list[str]:
    """The command line of one C board (same contract as ``station_lab.boards.process``)."""
    argv = [
        str(binary),
        "--state",
        str(state_dir),
        "--kind",
        kind,
        "--serial",
        serial,
        "--model",
        model,
        "--baud",
        str(baud),
        "--faults",
        faults.render(),
    ]
    if tpm_setup is not None:
        argv += ["--tpm-setup", str(tpm_setup)]
    return argv
