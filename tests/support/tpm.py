"""TPM helpers for tests: the lab's swtpm CA, a service trusting given anchors, a swtpm of one's
own with tpm2-tools, and a TPM put into dictionary-attack lockout."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from station.adapters.tpm.ek_certs import X509EkCertificateVerifier
from station.bootstrap import SystemClock
from station.services.tpm_identity import TpmIdentityService
from station_lab.boards.runner import LabBoards
from tests.support.deviant_certs import DeviantSet, build


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


@pytest.fixture(scope="module")
def deviant(tmp_path_factory: pytest.TempPathFactory) -> DeviantSet:
    """The deviant EK certificates (tests/support/deviant_certs.py), built once per module."""
    return build(tmp_path_factory.mktemp("deviant"))
