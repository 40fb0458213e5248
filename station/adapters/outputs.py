"""Writing an output file without destroying anything: the station's own files are off limits.

Every file a command writes on request (``--out``, ``db backup PATH``, exports) goes through
:func:`write_output`: it refuses a target that is (or, through a symlink, points at) a file the
station owns (database, WAL, config, PIN file, CA files, manifest chain) or an existing file in a
folder the station owns (backups, CA), refuses to replace any existing file unless ``force``,
and writes a temporary file in the same folder that is renamed into place only when complete.
Without ``force`` the final step is a hard link, which fails if the name appeared meanwhile, so
an existing file is never replaced even by a race.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from station.domain.errors import OutputRefusedError


@dataclass(frozen=True)
class OwnedPaths:
    """What the station owns: files never written over, folders whose files are never replaced."""

    files: tuple[tuple[Path, str], ...] = ()  # (path, what it is)
    folders: tuple[tuple[Path, str], ...] = ()

    def owner_of(self, target: Path) -> str:
        """What ``target`` is to the station (``""``: nothing it owns)."""
        real = _real(target)
        for path, what in self.files:
            if real == _real(path):
                return what
        if target.exists() or target.is_symlink():
            for folder, what in self.folders:
                if _real(folder) in real.parents:
                    return f"a file in {what}"
        return ""


NOTHING_OWNED = OwnedPaths()


def check_output(target: Path, *, force: bool, owned: OwnedPaths) -> None:
    """Refuse a target that is the station's own, a folder, or an existing file (unless forced).

    Raises:
        OutputRefusedError: naming the target and why.
    """
    what = owned.owner_of(target)
    if what:
        raise OutputRefusedError(
            f"refusing to write {target}: it is {what}",
            remedy="Choose another file name; the station never writes over its own files.",
            path=str(target),
        )
    if target.is_dir():
        raise OutputRefusedError(
            f"refusing to write {target}: it is a folder", remedy="Name a file.", path=str(target)
        )
    if not force and (target.exists() or target.is_symlink()):
        raise OutputRefusedError(
            f"refusing to replace {target}: the file exists",
            remedy="Choose another name, or pass --force to replace it.",
            path=str(target),
        )


def write_output(
    target: Path,
    data: bytes,
    *,
    force: bool = False,
    owned: OwnedPaths = NOTHING_OWNED,
    mode: int = 0o644,
) -> Path:
    """Write ``data`` to ``target`` through a temporary file and a rename (see the module doc).

    Raises:
        OutputRefusedError: the target is refused (:func:`check_output`), or appeared meanwhile.
        OSError: the folder cannot be written.
    """
    return write_output_with(
        target, lambda path: path.write_bytes(data), force=force, owned=owned, mode=mode
    )


def write_output_with(
    target: Path,
    produce: Callable[[Path], object],
    *,
    force: bool = False,
    owned: OwnedPaths = NOTHING_OWNED,
    mode: int = 0o644,
) -> Path:
    """Like :func:`write_output`, but ``produce(temporary_path)`` writes the content itself.

    Raises:
        OutputRefusedError: the target is refused, or appeared meanwhile.
        OSError: the folder cannot be written.
    """
    return write_outputs_with(
        [target], lambda paths: produce(paths[0]), force=force, owned=owned, mode=mode
    )[0]


def write_outputs_with(
    targets: Sequence[Path],
    produce: Callable[[list[Path]], object],
    *,
    force: bool = False,
    owned: OwnedPaths = NOTHING_OWNED,
    mode: int = 0o644,
) -> list[Path]:
    """:func:`write_output_with` for several files written by one ``produce(temporary_paths)``.

    Every target is checked before anything is written; if ``produce`` raises, none is kept.

    Raises:
        OutputRefusedError: a target is refused, or appeared meanwhile.
        OSError: a folder cannot be written.
    """
    for target in targets:
        check_output(target, force=force, owned=owned)
    partials: list[Path] = []
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".part", dir=target.parent
            )
            partials.append(Path(name))
            os.fchmod(fd, mode)
            os.close(fd)
        produce(partials)
        for partial in partials:
            with partial.open("rb") as handle:
                os.fsync(handle.fileno())
        for target in targets:
            check_output(target, force=force, owned=owned)  # produce may have taken a while
        for target, partial in zip(targets, partials, strict=True):
            _put_in_place(partial, target, force=force)
    finally:
        for partial in partials:
            partial.unlink(missing_ok=True)
    return list(targets)


def _put_in_place(partial: Path, target: Path, *, force: bool) -> None:
    if force:
        partial.replace(target)
        return
    try:
        os.link(partial, target)
    except FileExistsError as exc:
        raise OutputRefusedError(
            f"refusing to replace {target}: the file appeared while it was written",
            remedy="Choose another name, or pass --force to replace it.",
            path=str(target),
        ) from exc


def unique_name(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/stem+suffix``, or ``stem-2``, ``stem-3``... when that name is taken."""
    candidate = folder / f"{stem}{suffix}"
    number = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = folder / f"{stem}-{number}{suffix}"
        number += 1
    return candidate


def owned_paths(
    files: Iterable[tuple[Path | None, str]], folders: Iterable[tuple[Path | None, str]]
) -> OwnedPaths:
    """Build :class:`OwnedPaths`, leaving out settings that are not set."""
    return OwnedPaths(
        files=tuple((path, what) for path, what in files if path is not None),
        folders=tuple((path, what) for path, what in folders if path is not None),
    )


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))
