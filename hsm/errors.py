"""Errors raised by :mod:`hsm`.

``hsm`` imports nothing from ``station``, so it has its own small hierarchy with the same shape as
the station's errors (``code``, one-sentence ``message``, plain-words ``remedy``, ``details``). The
station's CA adapter translates each class into a ``KeyCustodyError`` subclass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class HsmError(Exception):
    """Base class of every error :mod:`hsm` raises on purpose."""

    code: ClassVar[str] = "hsm.error"

    def __init__(self, message: str, *, remedy: str = "", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        self.details: Mapping[str, Any] = dict(details)

    def __str__(self) -> str:
        return self.message


class InvalidKeyUriError(HsmError):
    """A key URI cannot be parsed or names an unknown backend."""

    code = "hsm.invalid_uri"


class PinUnavailableError(HsmError):
    """No PIN or passphrase could be obtained (no source, unsafe PIN file, empty value)."""

    code = "hsm.pin_unavailable"


class WrongPinError(HsmError):
    """The token or key file refused the PIN or passphrase."""

    code = "hsm.wrong_pin"


class PinLockedError(HsmError):
    """The token locked the user PIN after too many wrong attempts."""

    code = "hsm.pin_locked"


class TokenNotFoundError(HsmError):
    """No token (or TPM, or key file) matches the URI."""

    code = "hsm.token_not_found"


class TokenRemovedError(HsmError):
    """The token went away while the station was using it."""

    code = "hsm.token_removed"


class KeyNotFoundError(HsmError):
    """The token is there but holds no key matching the URI."""

    code = "hsm.key_not_found"


class KeyExistsError(HsmError):
    """Generating a key would overwrite or duplicate an existing one."""

    code = "hsm.key_exists"


class UnsupportedKeyError(HsmError):
    """The key's type, curve or the requested algorithm is not supported."""

    code = "hsm.unsupported_key"


class KeyNotExtractableError(HsmError):
    """Someone asked for private key material, which never leaves its token."""

    code = "hsm.not_extractable"


class BackendError(HsmError):
    """The token, TPM or library failed in a way not covered by a more precise class."""

    code = "hsm.backend_failed"
