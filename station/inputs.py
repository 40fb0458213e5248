"""Reading a file the station takes in, with a size limit checked before the bytes are read.

Every input (CSR, manifest, certificates, config, templates) is untrusted: ``--csr /dev/zero``
must end in a clear error at once, not after eating the machine's memory. :func:`read_bounded`
reads at most ``limit + 1`` bytes, so a device file, a FIFO or a file that grows while read is
caught the same way as a large regular file.
"""

from __future__ import annotations

import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from station.domain.errors import StationError, ValidationError

KIB: Final = 1024
MIB: Final = 1024 * KIB
#: Limits per kind of input (generous for real files, far below what hurts).
MAX_CERTIFICATES: Final = 1 * MIB  # a PEM chain, a root, a signer certificate
MAX_EK_CERTIFICATE: Final = 64 * KIB
MAX_CONFIG: Final = 1 * MIB  # the station config, a template, a profile
MAX_MANIFEST: Final = 512 * MIB  # a signed batch manifest (about 1.5 KB per device)

ErrorFactory = Callable[..., StationError]


def read_bounded(
    path: Path, *, limit: int, what: str, error: ErrorFactory = ValidationError
) -> bytes:
    """Read ``path`` whole if it holds at most ``limit`` bytes.

    Args:
        path: the file.
        limit: the largest acceptable size in bytes.
        what: names the input in messages ("the CSR", "the manifest").
        error: the StationError subclass to raise.

    Raises:
        StationError: (of type ``error``) a folder, unreadable, or larger than ``limit``.
    """
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise error(
                f"cannot read {what} {path}: it is a folder, not a file",
                remedy="Name the file itself.",
                file=str(path),
            )
        if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
            raise error(
                f"cannot read {what} {path}: it is a device, not a file",
                remedy="Name a regular file.",
                file=str(path),
            )
        if info.st_size > limit:  # refused before a byte is read
            raise _too_large(path, limit, what, error)
        with path.open("rb") as handle:
            data = handle.read(limit + 1)  # a pipe or a growing file stops here too
    except OSError as exc:
        raise error(
            f"cannot read {what} {path}: {exc.strerror}",
            remedy="Check the path and the file's permissions.",
            file=str(path),
        ) from exc
    if len(data) > limit:
        raise _too_large(path, limit, what, error)
    return data


def _too_large(path: Path, limit: int, what: str, error: ErrorFactory) -> StationError:
    return error(
        f"{what} {path} is larger than {_size(limit)}; it cannot be one",
        remedy="Check that you named the right file.",
        file=str(path),
        limit=limit,
    )


def read_toml(
    path: Path, *, limit: int = MAX_CONFIG, what: str, error: ErrorFactory = ValidationError
) -> dict[str, Any]:
    """Read and parse a TOML file: size-limited, UTF-8, and no crash on hostile nesting.

    Raises:
        StationError: (of type ``error``) as :func:`read_bounded`, or not UTF-8, not TOML, or
            nested too deeply for the parser.
    """
    data = read_bounded(path, limit=limit, what=what, error=error)
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} {path} is not UTF-8 text",
            remedy="Save the file as UTF-8 text.",
            file=str(path),
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(
            f"{what} {path} is not valid TOML: {exc}",
            remedy="Fix the syntax error at the position shown.",
            file=str(path),
        ) from exc
    except RecursionError as exc:  # tomllib recurses per nesting level
        raise error(
            f"{what} {path} nests arrays or tables too deeply to be read",
            remedy="A station file nests a few levels at most; check that it is the right file.",
            file=str(path),
        ) from exc


def _size(limit: int) -> str:
    if limit >= MIB:
        return f"{limit // MIB} MiB"
    if limit >= KIB:
        return f"{limit // KIB} KiB"
    return f"{limit} bytes"
