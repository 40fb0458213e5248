"""Real key stores for tests: SoftHSM2 tokens and swtpm processes (shared by tests/hsm, tests/ca)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hsm.softhsm import SoftHsmToken, activate, create_token


def fresh_token(directory: Path, monkeypatch: pytest.MonkeyPatch) -> SoftHsmToken:
    """A new token in ``directory`` (its own token dir); this process switches to it."""
    token = create_token(directory, f"t-{uuid.uuid4().hex[:8]}", pin="1234")
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    activate(token.conf)
    return token


@contextmanager
def swtpm_process() -> Iterator[str]:
    """Run swtpm on a unix socket; yield its TCTI string; always stop it."""
    # pytest's tmp_path can exceed swtpm's ~100-character socket path limit: use /tmp directly
    state = Path(tempfile.mkdtemp(prefix="swtpm-", dir="/tmp"))
    sock = state / "s"
    proc = subprocess.Popen(
        [
            "swtpm",
            "socket",
            "--tpm2",
            "--tpmstate",
            f"dir={state}",
            "--server",
            f"type=unixio,path={sock}",
            "--ctrl",
            f"type=unixio,path={sock}.ctrl",
            "--flags",
            "not-need-init,startup-clear",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        # swtpm creates both sockets before it accepts commands
        while not (sock.exists() and Path(f"{sock}.ctrl").exists()):
            if proc.poll() is not None:
                pytest.fail(f"swtpm exited with {proc.returncode}")
            if time.monotonic() > deadline:
                pytest.fail("swtpm did not start listening within 30 s")
            time.sleep(0.01)
        yield f"swtpm:path={sock}"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(state, ignore_errors=True)
