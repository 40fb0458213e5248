"""SoftHSM2 tokens for the lab and tests: a token directory, a config file, a fresh token.

SoftHSM2 reads ``SOFTHSM2_CONF`` and scans its token directory when the PKCS#11 module is
initialised; :func:`activate` points the variable at a directory and re-initialises the module if
this process already loaded it (which closes every open session of that module).

Not for production HSMs: the token PINs are passed to ``softhsm2-util`` on its command line.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from hsm.errors import BackendError
from hsm.pkcs11_backend import DEFAULT_MODULE, reload_module

SOFTHSM_UTIL = "softhsm2-util"


@dataclass(frozen=True)
class SoftHsmToken:
    """A SoftHSM2 token created by :func:`create_token`."""

    label: str
    pin: str
    conf: Path
    module: str = DEFAULT_MODULE

    def uri(self, label: str) -> str:
        """A ``pkcs11:`` URI for object ``label`` in this token."""
        return f"pkcs11:token={quote(self.label, safe='')};object={quote(label, safe='')}"


def write_config(directory: Path) -> Path:
    """Create ``directory/tokens`` and ``directory/softhsm2.conf``; return the config path."""
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
        "slots.mechanisms = ALL\n"
        "library.reset_on_fork = false\n",
        encoding="utf-8",
    )
    return conf


def create_token(directory: Path, label: str, *, pin: str = "") -> SoftHsmToken:
    """Initialise a token called ``label`` in ``directory`` (config written if missing).

    Args:
        directory: holds ``softhsm2.conf`` and ``tokens/``.
        label: the token label.
        pin: the user PIN (random when empty).

    Raises:
        BackendError: ``softhsm2-util`` is missing or failed.
    """
    conf = directory / "softhsm2.conf"
    if not conf.exists():
        write_config(directory)
    user_pin = pin or secrets.token_hex(8)
    tool = shutil.which(SOFTHSM_UTIL)
    if tool is None:
        raise BackendError(
            "softhsm2-util is not installed", remedy="Run packaging/install-system-deps.sh."
        )
    result = subprocess.run(
        [
            tool,
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            secrets.token_hex(8),
            "--pin",
            user_pin,
        ],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        raise BackendError(
            f"softhsm2-util could not create token {label!r}: {result.stderr.strip()}",
            remedy="Check that the token directory is writable.",
        )
    return SoftHsmToken(label=label, pin=user_pin, conf=conf)


def delete_token(token: SoftHsmToken) -> None:
    """Delete a token (as if it were unplugged). Open sessions fail from then on."""
    subprocess.run(
        [SOFTHSM_UTIL, "--delete-token", "--token", token.label],
        env={**os.environ, "SOFTHSM2_CONF": str(token.conf)},
        capture_output=True,
        check=True,
        timeout=60,
    )


def activate(conf: Path, module: str = DEFAULT_MODULE) -> None:
    """Make this process use ``conf`` (re-initialising the SoftHSM2 module if loaded)."""
    os.environ["SOFTHSM2_CONF"] = str(conf)
    reload_module(module)
