"""Operations of the board protocol: argument and result shapes, objects, capabilities.

Both ends validate with the same tables: the board checks request ``args`` with
:func:`check_args` (answering ``bad_args`` on failure) and the station checks each successful
``res`` with :func:`check_result` (a board answering the wrong shape is a protocol error).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from station.protocol.messages import MessageError, Status


class Op(StrEnum):
    """Every operation of protocol version 1."""

    HELLO = "hello"
    TPM = "tpm"
    KEYGEN = "keygen"
    CSR = "csr"
    SIGN = "sign"
    WRITE = "write"
    READ = "read"
    LOCK = "lock"
    RESET = "reset"


class Capability(StrEnum):
    """What a board can do, announced by ``hello``."""

    TPM = "tpm"  # the `tpm` passthrough reaches a TPM 2.0
    SECURE_ELEMENT = "se"  # `keygen`/`csr`/`sign` with keys made inside the board
    SYMMETRIC_KEY = "symkey"  # accepts the `symkey` object
    INJECTED_KEY = "privkey"  # accepts the `privkey` object; `sign`/`csr` then use it


@dataclass(frozen=True)
class ObjectSpec:
    """A named object the station can write: its maximum size and whether it reads back."""

    name: str
    max_size: int
    secret: bool  # secret objects never read back: `read` answers their SHA-256 only
    needs: Capability | None = None


OBJECTS: Mapping[str, ObjectSpec] = {
    spec.name: spec
    for spec in (
        ObjectSpec("cert_chain", 6144, secret=False),
        ObjectSpec("dps", 1024, secret=False),
        ObjectSpec("symkey", 64, secret=True, needs=Capability.SYMMETRIC_KEY),
        ObjectSpec("privkey", 2048, secret=True, needs=Capability.INJECTED_KEY),
    )
}

#: Name of the device key used by keygen/csr/sign: the onboarding key of X.509 attestation.
DEVICE_KEY = "device"
#: The key slot of the operational key that DPS certificate management certifies (EC P-384).
OPERATIONAL_KEY = "operational"
#: Curves `keygen` may be asked for; P-256 is the default.
CURVE_P256 = "p256"
CURVE_P384 = "p384"
CURVES = (CURVE_P256, CURVE_P384)
MAX_TPM_COMMAND = 4096
MAX_NONCE = 64
MAX_CN = 64

# field -> (python type, required, max length for bytes/text or None)
_Spec = Mapping[str, tuple[type, bool, int | None]]

ARGS: Mapping[str, _Spec] = {
    Op.HELLO: {"proto": (int, False, None)},
    Op.TPM: {"cmd": (bytes, True, MAX_TPM_COMMAND)},
    Op.KEYGEN: {"key": (str, False, 32), "replace": (bool, False, None), "curve": (str, False, 8)},
    Op.CSR: {"key": (str, False, 32), "cn": (str, True, MAX_CN)},
    Op.SIGN: {"key": (str, False, 32), "nonce": (bytes, True, MAX_NONCE)},
    Op.WRITE: {"name": (str, True, 32), "data": (bytes, True, 6144)},
    Op.READ: {"name": (str, True, 32)},
    Op.LOCK: {},
    Op.RESET: {"factory": (bool, False, None)},
}

RESULTS: Mapping[str, _Spec] = {
    Op.HELLO: {
        "serial": (str, True, 64),
        "model": (str, True, 64),
        "hw": (str, True, 32),
        "fw": (str, True, 32),
        "proto": (int, True, None),
        "caps": (list, True, 16),
        "locked": (bool, True, None),
        "max": (int, True, None),
    },
    Op.TPM: {"rsp": (bytes, True, MAX_TPM_COMMAND)},
    Op.KEYGEN: {"pub": (bytes, True, 512)},
    Op.CSR: {"csr": (bytes, True, 2048)},
    Op.SIGN: {"sig": (bytes, True, 160)},
    Op.WRITE: {"gen": (int, True, None)},
    Op.READ: {
        "gen": (int, True, None),
        "data": (bytes, False, 6144),
        "sha256": (bytes, False, 32),
    },
    Op.LOCK: {"locked": (bool, True, None)},
    Op.RESET: {},
}


def check_args(op: str, args: Mapping[str, Any]) -> None:
    """Check a request's arguments against the op's table.

    Raises:
        MessageError: unknown op (``unknown_op``) or wrong arguments (``bad_args``).
    """
    spec = ARGS.get(op)
    if spec is None:
        raise MessageError(f"unknown op '{op}'", Status.UNKNOWN_OP)
    _check(spec, args, "argument")


def check_result(op: str, result: Mapping[str, Any]) -> None:
    """Check a success result against the op's table.

    Raises:
        MessageError: a field is missing, unknown or of the wrong type or size.
    """
    _check(RESULTS[op], result, "result field")


_SIZED = (bytes, str, list)


def _check(spec: _Spec, values: Mapping[str, Any], what: str) -> None:
    for key, value in values.items():
        if key not in spec:
            raise MessageError(f"unknown {what} '{key}'", Status.BAD_ARGS)
        kind, _, limit = spec[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise MessageError(f"{what} '{key}' must be {kind.__name__}", Status.BAD_ARGS)
        if limit is not None and isinstance(value, _SIZED) and len(value) > limit:
            raise MessageError(f"{what} '{key}' longer than {limit}", Status.BAD_ARGS)
    for key, (_, required, _) in spec.items():
        if required and key not in values:
            raise MessageError(f"missing {what} '{key}'", Status.BAD_ARGS)


@dataclass(frozen=True)
class BoardInfo:
    """What ``hello`` tells about a board."""

    serial: str
    model: str
    hardware: str
    firmware: str
    protocol: int
    capabilities: tuple[str, ...]
    locked: bool
    max_payload: int

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> BoardInfo:
        """Build from a checked ``hello`` result."""
        caps = result["caps"]
        if not all(isinstance(c, str) for c in caps):
            raise MessageError("'caps' must be a list of text", Status.BAD_ARGS)
        return cls(
            serial=result["serial"],
            model=result["model"],
            hardware=result["hw"],
            firmware=result["fw"],
            protocol=result["proto"],
            capabilities=tuple(caps),
            locked=result["locked"],
            max_payload=result["max"],
        )

    def has(self, capability: Capability) -> bool:
        """True if the board announced ``capability``."""
        return capability.value in self.capabilities


@dataclass(frozen=True)
class ObjectState:
    """What ``read`` returns: the write generation and the data (or its SHA-256 if secret)."""

    name: str
    generation: int
    data: bytes | None
    sha256: bytes | None
