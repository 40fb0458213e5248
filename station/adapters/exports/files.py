"""The :class:`~station.ports.ExportFiles` on a directory: streamed, atomic, never half-written."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from station.domain.errors import ExportError


class DirectoryExports:
    """Writes export files into one directory (created on first use)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, name: str, chunks: Iterable[str]) -> Path:
        """Stream ``chunks`` into ``name`` through a temporary file, then rename it into place."""
        target = self.directory / name
        partial = target.with_name(f".{name}.partial")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with partial.open("w", encoding="utf-8", newline="") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            partial.replace(target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ExportError(
                f"cannot write {target}: {exc.strerror}",
                remedy="Choose a writable folder with --out, or free some disk space.",
                path=str(target),
            ) from exc
        return target
