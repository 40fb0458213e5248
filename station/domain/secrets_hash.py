"""Slow hashes for operator PINs and badges (scrypt), so a copied database does not give them away.

PINs use a random per-operator salt. Badges must be found by scanning, so their hash uses one
station-wide salt (kept in the database) and can be looked up by equality; it still costs an
attacker one scrypt per guess per station.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

# scrypt cost: about 30 ms on a workstation core, 16 MiB of memory.
_N, _R, _P = 2**14, 8, 1
_DKLEN = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_secret(secret: str, salt: bytes) -> str:
    """Return ``scrypt$N$r$p$salt$hash`` for ``secret`` with ``salt``."""
    digest = hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN, maxmem=64 * 1024 * 1024
    )
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """Check ``secret`` against a value from :func:`hash_secret` in constant time."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            secret.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)
