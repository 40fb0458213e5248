"""The TPM commands the station sends, each marshalled, sent and its answer parsed.

:class:`TpmCommands` knows the commands' layouts (TPM 2.0 Part 3) and nothing of the board
link: it hands each command's bytes to a ``transmit`` function and parses what comes back. A
TPM error answer is a :class:`TpmResponseError` carrying the response code; the resubmit
warnings (RETRY, YIELDED, TESTING) are resubmitted a few times first, as ESAPI does.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

from station.adapters.tpm.public import NvPublic, PublicArea, read_nv_public, read_public
from station.adapters.tpm.wire import (
    ALG_NULL,
    ALG_SHA256,
    CAP_HANDLES,
    CAP_TPM_PROPERTIES,
    CC_ACTIVATE_CREDENTIAL,
    CC_CREATE_PRIMARY,
    CC_EVICT_CONTROL,
    CC_FLUSH_CONTEXT,
    CC_GET_CAPABILITY,
    CC_NV_READ,
    CC_NV_READ_PUBLIC,
    CC_POLICY_SECRET,
    CC_READ_PUBLIC,
    CC_START_AUTH_SESSION,
    EMPTY,
    MAX_SUBMISSIONS,
    PASSWORD,
    RC_RESUBMIT,
    RC_SUCCESS,
    RH_ENDORSEMENT,
    RH_NULL,
    RH_OWNER,
    SE_POLICY,
    Cursor,
    Session,
    WireError,
    command,
    parameters,
    response_code,
    sized,
)

#: The TPM2B_SENSITIVE_CREATE of a primary key with an empty auth value and no data.
_EMPTY_SENSITIVE = sized(EMPTY + EMPTY)
#: Capability lists the station reads are short; a longer count is a broken answer.
_MAX_LIST = 1024


class TpmResponseError(Exception):
    """The TPM answered a command with an error response code."""

    def __init__(self, rc: int, command_code: int) -> None:
        super().__init__(f"TPM response code {rc:#x} to command {command_code:#x}")
        self.rc = rc
        self.command_code = command_code


@dataclass(frozen=True)
class PolicySession:
    """A policy session the TPM started: its handle and the TPM's nonce."""

    handle: int
    nonce_tpm: bytes


class TpmCommands:
    """The station's TPM commands over ``transmit`` (command bytes in, response bytes out).

    ``transmit`` returns a well-framed response (header checked) or raises; this class parses
    the rest and raises :class:`~station.adapters.tpm.wire.WireError` when it does not parse.
    """

    def __init__(self, transmit: Callable[[bytes], bytes]) -> None:
        self._transmit = transmit

    def _run(self, code: int, handles: tuple[int, ...], params: bytes, *sessions: Session) -> bytes:
        request = command(code, handles, params, *sessions)
        for _ in range(MAX_SUBMISSIONS):
            response = self._transmit(request)
            rc = response_code(response)
            if rc not in RC_RESUBMIT:
                break
        if rc != RC_SUCCESS:
            raise TpmResponseError(rc, code)
        return response

    def read_public(self, handle: int) -> tuple[PublicArea, bytes]:
        """TPM2_ReadPublic: a loaded key's public area and the name the TPM gives it."""
        _, c = parameters(self._run(CC_READ_PUBLIC, (handle,), b""), 0, sessions=False)
        public = read_public(c)
        name = c.sized("name")
        c.sized("qualified name")
        c.done("ReadPublic response")
        return public, name

    def get_capability(self, capability: int, first: int, count: int) -> tuple[bool, Cursor]:
        """TPM2_GetCapability: whether there is more, and a cursor at the list's count."""
        params = struct.pack(">III", capability, first, count)
        _, c = parameters(self._run(CC_GET_CAPABILITY, (), params), 0, sessions=False)
        more = c.u8("moreData")
        if more > 1:
            raise WireError(f"moreData is {more}, not a TPMI_YES_NO")
        answered = c.u32("capability")
        if answered != capability:
            raise WireError(f"asked for capability {capability:#x}, answered {answered:#x}")
        return bool(more), c

    def handles(self, first: int, count: int) -> tuple[bool, list[int]]:
        """The handles from ``first`` on (up to ``count``), and whether there are more."""
        more, c = self.get_capability(CAP_HANDLES, first, count)
        found = [c.u32("handle") for _ in range(_list_size(c))]
        c.done("GetCapability(handles) response")
        return more, found

    def property(self, prop: int) -> int | None:
        """One TPM property's value (``None`` when the TPM does not list it)."""
        _, c = self.get_capability(CAP_TPM_PROPERTIES, prop, 1)
        listed = {}
        for _ in range(_list_size(c)):
            key = c.u32("property")
            listed[key] = c.u32("property value")
        c.done("GetCapability(properties) response")
        return listed.get(prop)

    def nv_read_public(self, index: int) -> NvPublic:
        """TPM2_NV_ReadPublic, with the index's name checked against its public area."""
        _, c = parameters(self._run(CC_NV_READ_PUBLIC, (index,), b""), 0, sessions=False)
        public = read_nv_public(c)
        name = c.sized("NV name")
        c.done("NV_ReadPublic response")
        if public.name != name or public.index != index:
            raise WireError(f"NV index {index:#010x}: the name does not match its public area")
        return public

    def nv_read(self, index: int, size: int, offset: int) -> bytes:
        """TPM2_NV_Read of ``size`` bytes at ``offset``, authorized by the index's own auth."""
        params = struct.pack(">HH", size, offset)
        response = self._run(CC_NV_READ, (index, index), params, PASSWORD)
        _, c = parameters(response, 0, sessions=True)
        data = c.sized("NV data")
        c.done("NV_Read response")
        return data

    def create_primary(self, hierarchy: int, template: bytes) -> tuple[int, PublicArea, bytes]:
        """TPM2_CreatePrimary under ``hierarchy`` from a TPM2B_PUBLIC template.

        Returns the transient handle, the public area and the name the TPM gave it.
        """
        params = _EMPTY_SENSITIVE + template + EMPTY + struct.pack(">I", 0)
        response = self._run(CC_CREATE_PRIMARY, (hierarchy,), params, PASSWORD)
        (handle,), c = parameters(response, 1, sessions=True)
        public = read_public(c)
        c.sized("creation data")
        c.sized("creation hash")
        c.take(6, "creation ticket")
        c.sized("creation ticket digest")
        name = c.sized("name")
        c.done("CreatePrimary response")
        return handle, public, name

    def evict_control(self, transient: int, persistent: int) -> None:
        """TPM2_EvictControl: make the owner-hierarchy object ``transient`` persistent."""
        params = struct.pack(">I", persistent)
        response = self._run(CC_EVICT_CONTROL, (RH_OWNER, transient), params, PASSWORD)
        parameters(response, 0, sessions=True)[1].done("EvictControl response")

    def flush_context(self, handle: int) -> None:
        """TPM2_FlushContext: unload a transient object or a session."""
        response = self._run(CC_FLUSH_CONTEXT, (), struct.pack(">I", handle))
        parameters(response, 0, sessions=False)[1].done("FlushContext response")

    def start_policy_session(self) -> PolicySession:
        """TPM2_StartAuthSession: an unbound, unsalted SHA-256 policy session."""
        params = (
            sized(os.urandom(32))  # nonceCaller
            + EMPTY  # encryptedSalt: unsalted
            + bytes([SE_POLICY])
            + struct.pack(">HH", ALG_NULL, ALG_SHA256)  # no parameter encryption; SHA-256
        )
        response = self._run(CC_START_AUTH_SESSION, (RH_NULL, RH_NULL), params)
        (handle,), c = parameters(response, 1, sessions=False)
        nonce = c.sized("nonceTPM")
        c.done("StartAuthSession response")
        return PolicySession(handle, nonce)

    def policy_secret_endorsement(self, session: PolicySession) -> None:
        """TPM2_PolicySecret with the endorsement hierarchy's (empty) auth: the EK's policy."""
        params = EMPTY + EMPTY + EMPTY + struct.pack(">i", 0)
        handles = (RH_ENDORSEMENT, session.handle)
        response = self._run(CC_POLICY_SECRET, handles, params, PASSWORD)
        _, c = parameters(response, 0, sessions=True)
        c.sized("timeout")
        c.take(6, "policy ticket")
        c.sized("policy ticket digest")
        c.done("PolicySecret response")

    def activate_credential(
        self,
        activate: int,
        key: int,
        key_session: Session,
        credential: bytes,
        secret: bytes,
    ) -> bytes:
        """TPM2_ActivateCredential: the secret of a credential made for ``key``'s EK.

        ``activate`` is authorized by its empty password, ``key`` by ``key_session``.
        """
        response = self._run(
            CC_ACTIVATE_CREDENTIAL, (activate, key), credential + secret, PASSWORD, key_session
        )
        _, c = parameters(response, 0, sessions=True)
        recovered = c.sized("certInfo")
        c.done("ActivateCredential response")
        return recovered


def _list_size(c: Cursor) -> int:
    count = c.u32("list count")
    if count > _MAX_LIST:
        raise WireError(f"a capability list of {count} entries")
    return count
