"""Reading a file the station takes in, with a size limit checked before the bytes are read.

Every input (CSR, manifest, certificates, config, templates) is untrusted: ``--csr /dev/zero``
must end in a clear error at once, not after eating the machine's memory. :func:`read_bounded`
reads at most ``limit + 1`` bytes, so a device file, a FIFO or a file that grows while read is
caught the same way as a large regular file.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Final

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


def _size(limit: int) -> str:
    if limit >= MIB:
        return f"{limit // MIB} MiB"
    if limit >= KIB:
        return f"{limit // KIB} KiB"
    return f"{limit} bytes"
