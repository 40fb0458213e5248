"""The :class:`~station.ports.ExportFiles` on a directory: streamed, atomic, never half-written."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from station.adapters.outputs import NOTHING_OWNED, OwnedPaths, write_output_with
from station.domain.errors import ExportError


class DirectoryExports:
    """Writes export files into one directory (created on first use).

    An existing export is replaced only with ``force``; a file the station owns never is.
    """

    def __init__(
        self, directory: Path, *, force: bool = False, owned: OwnedPaths = NOTHING_OWNED
    ) -> None:
        self.directory = directory
        self._force = force
        self._owned = owned

    def write(self, name: str, chunks: Iterable[str]) -> Path:
        """Stream ``chunks`` into ``name`` through a temporary file, then rename it into place.

        Raises:
            OutputRefusedError: the file exists (without ``force``) or is the station's own.
            ExportError: the folder cannot be written.
        """
        target = self.directory / name

        def produce(partial: Path) -> None:
            with partial.open("w", encoding="utf-8", newline="") as handle:
                for chunk in chunks:
                    handle.write(chunk)

        try:
            return write_output_with(target, produce, force=self._force, owned=self._owned)
        except OSError as exc:
            raise ExportError(
                f"cannot write {target}: {exc.strerror}",
                remedy="Choose a writable folder with --out, or free some disk space.",
                path=str(target),
            ) from exc
