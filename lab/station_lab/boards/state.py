"""A virtual board's persistent state: identity, written objects, device key, lock flag.

Everything lives in one directory so unplug/replug and a lab restart keep the board's identity.
Each change is written to a temporary file and renamed into place, so a kill at any moment
leaves either the old or the new content, never a torn file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Identity:
    """What a board is: fixed at manufacture."""

    serial: str
    model: str
    hardware: str
    firmware: str
    kind: str  # tpm | se | nokey


@dataclass
class Persistent:
    """The mutable part: lock flag and per-object write generations."""

    locked: bool = False
    generations: dict[str, int] = field(default_factory=dict)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


class BoardState:
    """The files of one board under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects_dir = root / "objects"
        self.tpm_dir = root / "tpm"
        self.key_file = root / "device-key.pem"
        self.operational_key_file = root / "operational-key.pem"
        self._identity_file = root / "identity.json"
        self._state_file = root / "state.json"

    def create(self, identity: Identity) -> None:
        """Lay out a new board (does nothing if the board already exists)."""
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        if not self._identity_file.exists():
            atomic_write(self._identity_file, json.dumps(asdict(identity)).encode())

    def identity(self) -> Identity:
        """Load the board's identity."""
        return Identity(**json.loads(self._identity_file.read_text(encoding="utf-8")))

    def load(self) -> Persistent:
        """Load the lock flag and generations."""
        if not self._state_file.exists():
            return Persistent()
        raw = json.loads(self._state_file.read_text(encoding="utf-8"))
        return Persistent(locked=bool(raw["locked"]), generations=dict(raw["generations"]))

    def save(self, persistent: Persistent) -> None:
        """Store the lock flag and generations."""
        atomic_write(self._state_file, json.dumps(asdict(persistent)).encode())

    def object_path(self, name: str) -> Path:
        """Where object ``name`` is stored."""
        return self.objects_dir / f"{name}.bin"

    def erase(self) -> None:
        """Factory reset: forget objects, key and generations (identity and TPM stay)."""
        for path in self.objects_dir.glob("*.bin"):
            path.unlink()
        self.key_file.unlink(missing_ok=True)
        self.operational_key_file.unlink(missing_ok=True)
        (self.root / "operational-chain.pem").unlink(missing_ok=True)  # see poweron.py
        (self.root / "dps-assignment.json").unlink(missing_ok=True)  # see poweron.py
        self.save(Persistent())
