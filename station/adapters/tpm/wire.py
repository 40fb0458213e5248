"""TPM 2.0 commands on the wire: marshalling the few the station sends and parsing their answers.

The station needs eleven TPM commands per board, all with plain password or policy sessions (no
HMAC, no parameter encryption), so it builds them itself instead of going through ESAPI: ESAPI
(tpm2-tss 3.2) spends several milliseconds of CPU per command on session bookkeeping and on
OpenSSL contexts it creates for every hash, which is most of the station's time per TPM board.

Everything read from a response goes through :class:`Cursor`, which never reads past the bytes
that arrived: a short or padded answer is a :class:`WireError`, never an index error or a
silently truncated value. Structures follow TPM 2.0 Part 2 (Structures); command layouts follow
Part 3 (Commands).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

TAG_NO_SESSIONS = 0x8001
TAG_SESSIONS = 0x8002
TAG_TPM12_ERROR = 0x00C4  # a TPM 1.2-style error header some TPMs answer malformed commands with
RESPONSE_TAGS = (TAG_NO_SESSIONS, TAG_SESSIONS, TAG_TPM12_ERROR)
HEADER_SIZE = 10

# Permanent handles (Part 2, 7.4).
RH_OWNER = 0x40000001
RH_NULL = 0x40000007
RS_PW = 0x40000009
RH_ENDORSEMENT = 0x4000000B

# Command codes (Part 2, 6.5.2).
CC_EVICT_CONTROL = 0x120
CC_CREATE_PRIMARY = 0x131
CC_ACTIVATE_CREDENTIAL = 0x147
CC_NV_READ = 0x14E
CC_POLICY_SECRET = 0x151
CC_FLUSH_CONTEXT = 0x165
CC_NV_READ_PUBLIC = 0x169
CC_READ_PUBLIC = 0x173
CC_START_AUTH_SESSION = 0x176
CC_GET_CAPABILITY = 0x17A

# Algorithm IDs (Part 2, 6.3).
ALG_RSA = 0x0001
ALG_SHA1 = 0x0004
ALG_HMAC = 0x0005
ALG_AES = 0x0006
ALG_KEYEDHASH = 0x0008
ALG_XOR = 0x000A
ALG_SHA256 = 0x000B
ALG_SHA384 = 0x000C
ALG_SHA512 = 0x000D
ALG_NULL = 0x0010
ALG_ECDAA = 0x001A
ALG_ECC = 0x0023
ALG_SYMCIPHER = 0x0025
ALG_CFB = 0x0043

SE_POLICY = 0x01
CAP_HANDLES = 0x00000001
CAP_TPM_PROPERTIES = 0x00000006
PT_NV_BUFFER_MAX = 0x0000012C

# Response codes: the warnings a caller resubmits on (Part 2, 6.6.3), as ESAPI does.
RC_SUCCESS = 0
RC_RESUBMIT = frozenset({0x908, 0x90A, 0x922})  # YIELDED, TESTING, RETRY
MAX_SUBMISSIONS = 5

#: Session attribute continueSession: the session stays loaded after the command.
CONTINUE_SESSION = 0x01


class WireError(Exception):
    """A response that does not parse as the structure the command returns."""


class Cursor:
    """Reads big-endian TPM structures from a byte string, never past its end."""

    __slots__ = ("_at", "_data", "_end")

    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self._data = data
        self._at = start
        self._end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        """How many bytes are left."""
        return self._end - self._at

    def take(self, size: int, what: str) -> bytes:
        """The next ``size`` bytes."""
        if size > self._end - self._at:
            raise WireError(f"{what}: needs {size} bytes, {self._end - self._at} left")
        start = self._at
        self._at += size
        return self._data[start : self._at]

    def u8(self, what: str) -> int:
        """The next byte."""
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        """The next UINT16."""
        return int.from_bytes(self.take(2, what), "big")

    def u32(self, what: str) -> int:
        """The next UINT32."""
        return int.from_bytes(self.take(4, what), "big")

    def sized(self, what: str) -> bytes:
        """The body of the next TPM2B (a UINT16 size, then that many bytes)."""
        return self.take(self.u16(what), what)

    def sized_whole(self, what: str) -> bytes:
        """The next TPM2B including its size field."""
        start = self._at
        self.sized(what)
        return self._data[start : self._at]

    def done(self, what: str) -> None:
        """Require that every byte was read."""
        if self._at != self._end:
            raise WireError(f"{what}: {self._end - self._at} unexpected bytes at the end")


def sized(body: bytes) -> bytes:
    """``body`` as a TPM2B."""
    return struct.pack(">H", len(body)) + body


EMPTY = sized(b"")


@dataclass(frozen=True)
class Session:
    """One authorization in a command's authorization area (Part 1, 18.6)."""

    handle: int
    nonce: bytes = b""
    attributes: int = CONTINUE_SESSION
    hmac: bytes = b""  # the password for a password session; empty for an unbound policy

    def marshal(self) -> bytes:
        """The TPMS_AUTH_COMMAND."""
        return (
            struct.pack(">I", self.handle)
            + sized(self.nonce)
            + bytes([self.attributes])
            + sized(self.hmac)
        )


#: The empty-password authorization (hierarchy auth and EK-certificate indices are empty).
PASSWORD = Session(RS_PW)


def command(code: int, handles: tuple[int, ...], parameters: bytes, *sessions: Session) -> bytes:
    """A whole command: header, handle area, authorization area (if any), parameters."""
    body = b"".join(struct.pack(">I", h) for h in handles)
    if sessions:
        area = b"".join(s.marshal() for s in sessions)
        body += struct.pack(">I", len(area)) + area
    body += parameters
    tag = TAG_SESSIONS if sessions else TAG_NO_SESSIONS
    return struct.pack(">HII", tag, HEADER_SIZE + len(body), code) + body


def response_code(response: bytes) -> int:
    """The response code of a response whose header was already checked."""
    return int.from_bytes(response[6:10], "big")


def check_response(response: bytes) -> str:
    """Why ``response`` is not a well-framed TPM response ("" when it is)."""
    if len(response) < HEADER_SIZE:
        return f"{len(response)} bytes, shorter than a response header"
    tag, size = struct.unpack(">HI", response[:6])
    if tag not in RESPONSE_TAGS:
        return f"unknown response tag {tag:#06x}"
    if size != len(response):
        return f"header announces {size} bytes, {len(response)} arrived"
    return ""


def parameters(response: bytes, handles: int, *, sessions: bool) -> tuple[tuple[int, ...], Cursor]:
    """The response handles of a successful response and a cursor over its parameters.

    With sessions the parameter area has a size of its own and the authorization area follows;
    the authorization area is not checked (the station uses no HMAC session, so there is nothing
    in it to verify).
    """
    tag = int.from_bytes(response[:2], "big")
    if tag != (TAG_SESSIONS if sessions else TAG_NO_SESSIONS):
        raise WireError(f"a successful response tagged {tag:#06x}")
    cursor = Cursor(response, HEADER_SIZE)
    found = tuple(cursor.u32("response handle") for _ in range(handles))
    if not sessions:
        return found, cursor
    size = cursor.u32("parameter size")
    start = len(response) - cursor.remaining
    if size > cursor.remaining:
        raise WireError(f"parameter size {size} with {cursor.remaining} bytes left")
    return found, Cursor(response, start, start + size)
