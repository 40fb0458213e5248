"""The :class:`~station.ports.ExportFiles` on a directory: streamed, atomic, never half-written."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from station.adapters.outputs import NOTHING_OWNED, OwnedPaths, write_outputs_with
from station.domain.errors import ExportError
from station.ports import ExportSink

_BUFFER = 1 << 20


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

        def produce(sinks: Mapping[str, ExportSink]) -> None:
            for chunk in chunks:
                sinks[name].write(chunk)

        return self.write_together([name], produce)[name]

    def write_together(
        self, names: Sequence[str], produce: Callable[[Mapping[str, ExportSink]], None]
    ) -> dict[str, Path]:
        """Write ``names`` in one pass of ``produce``; all are kept, or none (it raised).

        Raises:
            OutputRefusedError: a file exists (without ``force``) or is the station's own.
            ExportError: the folder cannot be written.
        """
        targets = [self.directory / name for name in names]

        def fill(partials: list[Path]) -> None:
            sinks = {name: _FileSink(path) for name, path in zip(names, partials, strict=True)}
            try:
                produce(sinks)
            finally:
                for sink in sinks.values():
                    sink.close()

        try:
            write_outputs_with(targets, fill, force=self._force, owned=self._owned)
        except OSError as exc:
            raise ExportError(
                f"cannot write to {self.directory}: {exc.strerror}",
                remedy="Choose a writable folder with --out, or free some disk space.",
                path=str(exc.filename or self.directory),
            ) from exc
        return dict(zip(names, targets, strict=True))


class _FileSink:
    """Text into one temporary file; :meth:`prepend` rewrites it once with the head in front."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._handle = path.open("w", encoding="utf-8", newline="", buffering=_BUFFER)

    def write(self, text: str) -> None:
        self._handle.write(text)

    def prepend(self, text: str) -> None:
        self._handle.close()
        body = self._path.with_name(self._path.name + ".body")
        self._path.replace(body)
        try:
            self._handle = self._path.open("w", encoding="utf-8", newline="", buffering=_BUFFER)
            self._handle.write(text)
            self._handle.flush()
            with body.open("rb") as source:
                shutil.copyfileobj(source, self._handle.buffer, _BUFFER)
        finally:
            body.unlink(missing_ok=True)

    def close(self) -> None:
        self._handle.close()
