"""Where PINs and passphrases come from: a prompt, an environment variable or a 0600 file.

Never from the config file itself: the config may only say *where* the PIN file is.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hsm.errors import PinUnavailableError

DEFAULT_PIN_ENV = "STATION_PKCS11_PIN"
#: A PIN file holds one short line; anything bigger is not a PIN file.
MAX_PIN_FILE_BYTES = 4096


@dataclass(frozen=True)
class PinSource:
    """How to obtain a PIN, tried in order: the file, the environment variable, the prompt.

    Attributes:
        file: a file holding the PIN on its first line; it must be a regular file readable by its
            owner only (mode 0600 or 0400).
        env_var: an environment variable holding the PIN.
        prompt: called with a description ("PIN for token 'station-ca'") to ask a person.
        env: the environment to read (default ``os.environ``).
    """

    file: Path | None = None
    env_var: str = DEFAULT_PIN_ENV
    prompt: Callable[[str], str] | None = None
    # repr=False: a repr in a log or a traceback must not carry the PIN variable with it
    env: Mapping[str, str] | None = field(default=None, compare=False, repr=False)

    def resolve(self, what: str) -> str:
        """Return the PIN for ``what`` (a description used in prompts and errors).

        Raises:
            PinUnavailableError: the file is unsafe or unreadable, or no source yields a PIN.
        """
        if self.file is not None:
            return read_pin_file(self.file)
        env = os.environ if self.env is None else self.env
        if self.env_var and env.get(self.env_var):
            return env[self.env_var]
        if self.prompt is not None:
            value = self.prompt(what)
            if value:
                return value
        raise PinUnavailableError(
            f"no PIN available for {what}",
            remedy=f"Set the PIN file ([ca] pin_file, mode 0600) or ${self.env_var}, "
            "or run the command interactively.",
            what=what,
        )


def read_pin_file(path: Path) -> str:
    """Read a PIN file, refusing one that group or others could read.

    Raises:
        PinUnavailableError: missing, not a regular file, too permissive, too large, not UTF-8
            text, or empty.
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise PinUnavailableError(
                f"PIN file {path} is not a regular file", remedy="Point to a file.", file=str(path)
            )
        if info.st_mode & 0o077:
            raise PinUnavailableError(
                f"PIN file {path} is readable by other users (mode {info.st_mode & 0o777:o})",
                remedy=f"Run: chmod 600 {path}",
                file=str(path),
            )
        if info.st_size > MAX_PIN_FILE_BYTES:
            raise PinUnavailableError(
                f"PIN file {path} is {info.st_size} bytes; a PIN file holds one short line",
                remedy="Point [ca] pin_file at the file holding only the PIN.",
                file=str(path),
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_PIN_FILE_BYTES + 1)
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PinUnavailableError(
            f"PIN file {path} is not text (a binary file?)",
            remedy="Write the PIN as text on the file's first line.",
            file=str(path),
        ) from exc
    except OSError as exc:
        raise PinUnavailableError(
            f"cannot read PIN file {path}: {exc.strerror}",
            remedy="Check that the file exists and belongs to the station's user.",
            file=str(path),
        ) from exc
    pin = text.splitlines()[0].strip() if text.strip() else ""
    if not pin.isprintable():
        raise PinUnavailableError(
            f"PIN file {path} holds control characters, not a PIN",
            remedy="Write the PIN as text on the file's first line.",
            file=str(path),
        )
    if not pin:
        raise PinUnavailableError(f"PIN file {path} is empty", file=str(path))
    return pin
