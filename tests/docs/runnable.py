"""Runnable shell blocks of the project's Markdown docs (issue 21: docs that cannot rot).

A fenced block whose info string is ``sh runnable`` is run by tests/docs: every runnable block of
one document, in order, in one ``bash -euo pipefail`` script, in a fresh home (``$HOME`` and the
XDG folders in a new temporary folder, no ``STATION_*`` or ``SOFTHSM2_CONF`` from outside), with
the station of this checkout first on ``PATH``. See docs/architecture.md, "Docs that are tested".
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

MARKER = "sh runnable"
_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    """One runnable block: where it starts (1-based line of its fence) and its text."""

    path: Path
    line: int
    text: str


def runnable_blocks(path: Path) -> list[Block]:
    """The ``sh runnable`` blocks of a Markdown file, in order."""
    source = path.read_text(encoding="utf-8")
    return [
        Block(path, source.count("\n", 0, match.start()) + 1, match.group(2))
        for match in _FENCE.finditer(source)
        if match.group(1).strip() == MARKER
    ]


def script(blocks: list[Block]) -> str:
    """One bash script running ``blocks`` in order; each announces its file and line first."""
    parts = ["set -euo pipefail"]
    for block in blocks:
        parts.append(f"echo '### {block.path.name}:{block.line}' >&2")
        parts.append(block.text)
    return "\n".join(parts) + "\n"


def fresh_home_env(root: Path) -> dict[str, str]:
    """The environment of a newcomer's shell: a new home, this checkout's station on PATH."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STATION_", "XDG_")) and key not in ("SOFTHSM2_CONF", "PWD")
    }
    home = root / "home"
    env |= {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "QT_QPA_PLATFORM": "offscreen",
    }
    home.mkdir(parents=True)
    return env
