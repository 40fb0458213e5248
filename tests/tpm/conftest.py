"""Fixtures for TPM identity tests: lab TPM boards on ptys, sessions, and direct swtpm access."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from station.adapters.board.session import BoardSession, open_session
from station.adapters.tpm.ek_certs import X509EkCertificateVerifier
from station.adapters.tpm.identity import BoardTpmIdentityReader
from station.bootstrap import SystemClock
from station.services.tpm_identity import TpmIdentityService
from station_lab.boards.runner import LabBoards

SHARED_TESTDATA = Path(__file__).resolve().parents[3] / "shared" / "testdata"
VENDOR_ROOTS = SHARED_TESTDATA / "tpm-vendor-roots"
EK_CERTS = SHARED_TESTDATA / "ek-certs"


@pytest.fixture(autouse=True)
def _quiet_tss(monkeypatch: pytest.MonkeyPatch) -> None:
    # NVReadEK probes optional template indices; the misses are logged by the TSS as errors.
    monkeypatch.setenv("TSS2_LOG", "all+none")


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LabBoards]:
    """A lab runner with an unpaced link; every board stops at teardown.

    Python boards unless parametrized indirectly with ``c`` (the C agent's host port).
    """
    runner = LabBoards(tmp_path / "lab", baud=0, firmware=getattr(request, "param", "python"))
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture
def connect() -> Iterator[Callable[..., BoardSession]]:
    """Open sessions to board ports; all are closed at teardown."""
    sessions: list[BoardSession] = []

    def _open(port: str, *, slow_timeout_s: float = 10.0, retries: int = 3) -> BoardSession:
        session = open_session(port, timeout_s=2.0, slow_timeout_s=slow_timeout_s, retries=retries)
        sessions.append(session)
        return session

    yield _open
    for session in sessions:
        session.close()


@pytest.fixture
def readers() -> Iterator[Callable[[BoardSession], BoardTpmIdentityReader]]:
    """Build TPM readers over sessions; all are closed at teardown."""
    made: list[BoardTpmIdentityReader] = []

    def _make(session: BoardSession) -> BoardTpmIdentityReader:
        reader = BoardTpmIdentityReader(session, port=session.port)
        made.append(reader)
        return reader

    yield _make
    for reader in made:
        reader.close()


def lab_ca_files(lab: LabBoards) -> list[Path]:
    """The lab's swtpm local CA certificates (root and issuer), never its keys."""
    ca = lab.lab_dir / "tpm-ca" / "ca"
    return [ca / "swtpm-localca-rootca-cert.pem", ca / "issuercert.pem"]


def service_trusting(paths: list[Path]) -> TpmIdentityService:
    """A TPM identity service whose anchors are ``paths`` (real clock: lab certs are new)."""
    return TpmIdentityService(X509EkCertificateVerifier.from_paths(paths), clock=SystemClock())


@contextmanager
def direct_swtpm(state_dir: Path) -> Iterator[str]:
    """Run swtpm on a (stopped) board's TPM state; yield the TCTI string for tpm2-tools.

    The socket lives in a short /tmp directory: swtpm's unix socket paths must stay short.
    """
    sock_dir = tempfile.mkdtemp(prefix="tpmt-", dir="/tmp")
    sock = os.path.join(sock_dir, "s")
    process = subprocess.Popen(
        [
            "swtpm",
            "socket",
            "--tpm2",
            "--tpmstate",
            f"dir={state_dir}",
            "--server",
            f"type=unixio,path={sock}",
            "--ctrl",
            f"type=unixio,path={sock}.ctrl",
            "--flags",
            "not-need-init,startup-clear",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (os.path.exists(sock) and os.path.exists(f"{sock}.ctrl")):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("swtpm did not start on the board's state")
            time.sleep(0.01)
        yield f"swtpm:path={sock}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(sock_dir, ignore_errors=True)


def tpm2_readpublic(tcti: str, handle: int, out: Path) -> bytes:
    """``tpm2_readpublic -c HANDLE -o OUT`` (TSS format: the marshaled TPM2B_PUBLIC)."""
    subprocess.run(
        ["tpm2_readpublic", "-T", tcti, "-c", f"{handle:#x}", "-o", str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out.read_bytes()


def put_in_lockout(tcti: str, work: Path) -> None:
    """Drive a TPM into real dictionary-attack lockout: one allowed failure, then a wrong PIN."""

    def tools(*argv: str, check: bool = True) -> None:
        subprocess.run(
            [argv[0], "-T", tcti, *argv[1:]], check=check, capture_output=True, timeout=60
        )

    tools("tpm2_dictionarylockout", "-s", "-n", "1", "-t", "86400", "-l", "86400")
    tools("tpm2_createprimary", "-C", "o", "-p", "secret", "-c", str(work / "p.ctx"), "-Q")
    tools(
        "tpm2_create",
        "-C",
        str(work / "p.ctx"),
        "-P",
        "wrong",
        "-G",
        "ecc",
        "-u",
        str(work / "k.pub"),
        "-r",
        str(work / "k.priv"),
        check=False,
    )
