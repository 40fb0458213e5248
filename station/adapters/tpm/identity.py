"""A board's TPM identity through the board link: EK, SRK, EK certificates, residency proof.

One :class:`BoardTpmIdentityReader` per slot, used only from the thread that created it (the
slot's worker). It sends each TPM command as one ``tpm`` request of the board protocol, built
and parsed by :mod:`~station.adapters.tpm.commands` (no ESAPI: it cost most of the station's
time per TPM board, see docs/performance.md). The station uses only password and unbound
policy sessions, so there is no session secret to keep; what the reader remembers between
operations (the EKs it read, the SRK's name, the TPM's NV buffer size) is forgotten after a
failure below the TPM (link timeout, unplug, a response that cannot be decoded).
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, Protocol

from station.adapters.tpm.commands import TpmCommands, TpmResponseError
from station.adapters.tpm.credential import make_credential
from station.adapters.tpm.public import USER_WITH_AUTH, PublicArea, parse_public
from station.adapters.tpm.wire import (
    PASSWORD,
    PT_NV_BUFFER_MAX,
    RH_ENDORSEMENT,
    RH_NULL,
    RH_OWNER,
    Session,
    WireError,
    check_response,
)
from station.domain.ek_templates import EK_TEMPLATES, EkTemplate
from station.domain.errors import (
    BoardError,
    TpmEkAbsentError,
    TpmError,
    TpmFailureModeError,
    TpmLockoutError,
    TpmMalformedResponseError,
    TpmNonsenseError,
    TpmUnreachableError,
)
from station.domain.tpm import SRK_HANDLE, EkOrigin, EndorsementKey

log = logging.getLogger(__name__)

#: The SRK the Azure device SDKs create (RSA-2048 storage key, AES-128-CFB).
SRK_TEMPLATE = "rsa2048:aes128cfb"
SRK_ATTRIBUTES = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt"
#: The throw-away object a residency challenge is bound to (its name feeds MakeCredential).
CHALLENGE_ATTRIBUTES = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|sign"

_RC_FAILURE = 0x101
_RC_LOCKOUT = 0x921
_RC_HANDLE = 0x08B  # format-one: the handle does not exist
_RC_TOO_LARGE = (0x04, 0x15)  # format-one error numbers: TPM_RC_VALUE, TPM_RC_SIZE
_EK_NV_RANGE = (0x01C00000, 0x01C07FFF)  # TCG: EK certificates and templates
# Bounds on what a TPM may answer: a broken or lying TPM must not keep a slot busy for ever.
MAX_CAPABILITY_PAGES = 16  # the EK range holds a few dozen indices; 64 per page
MAX_EK_CERTIFICATE_BYTES = 16384  # EK certificates are 0.5-2 KB
NV_CHUNK_BOUNDS = (64, 2048)  # what TPM_PT_NV_BUFFER_MAX may sensibly say
#: Seconds one reader operation (read the EK, the certificates, prove residency) may take in
#: all, TPM commands and link retries included: far above a slow discrete TPM's worst case.
OPERATION_DEADLINE_S = 180.0
_NONSENSE_REMEDY = (
    "Reject the board and set it aside: its TPM (or the firmware relaying it) is faulty or "
    "tampered with. Note the message for the TPM vendor."
)
_MALFORMED_REMEDY = "Retry; if it keeps happening, the board firmware or TPM is faulty."


class TpmPassthrough(Protocol):
    """What the reader needs: a board link with the ``tpm`` operation."""

    def tpm(self, command: bytes) -> bytes:
        """Run one raw TPM command on the board; return the raw response."""
        ...


def _is_absent(rc: int) -> bool:
    return bool(rc & 0x80) and (rc & 0xBF) == _RC_HANDLE


def _is_too_large(rc: int) -> bool:
    """Whether the TPM refused a parameter as too large (TPM_RC_VALUE or TPM_RC_SIZE)."""
    return bool(rc & 0x80) and (rc & 0x3F) in _RC_TOO_LARGE


@cache
def _srk_template() -> bytes:
    from tpm2_pytss.types import TPM2B_PUBLIC

    return bytes(TPM2B_PUBLIC.parse(SRK_TEMPLATE, objectAttributes=SRK_ATTRIBUTES).marshal())


def _challenge_template() -> bytes:
    from tpm2_pytss.types import TPM2B_PUBLIC

    template = TPM2B_PUBLIC.parse("hmac:sha256", objectAttributes=CHALLENGE_ATTRIBUTES)
    template.publicArea.unique.keyedHash = secrets.token_bytes(32)
    return bytes(template.marshal())


def _template(name: str) -> EkTemplate:
    try:
        return EK_TEMPLATES[name]
    except KeyError:
        raise TpmError(f"unknown EK template {name!r}", template=name) from None


class BoardTpmIdentityReader:
    """Implements :class:`station.ports.TpmIdentityReader` over a board link.

    Args:
        link: the board session (its ``tpm`` operation carries the TPM commands).
        port: the port name, for messages.
        deadline_s: how long one operation may take in all.
    """

    def __init__(
        self, link: TpmPassthrough, *, port: str = "", deadline_s: float = OPERATION_DEADLINE_S
    ) -> None:
        self._link = link
        self.port = port
        self._deadline_s = deadline_s
        self._deadline = (time.monotonic() + deadline_s, "use the TPM")
        self._owner = threading.get_ident()
        self._tpm = TpmCommands(self._transmit)
        self._link_failed = False  # the current operation lost the link or got garbage
        self._nv_buffer_max = 0
        self._eks: dict[str, PublicArea] = {}  # per EK template, as read in this session
        self._srk_name: bytes | None = None  # the persistent SRK's name, once ensured
        self.rebuilds = 0  # how many times the reader forgot its state after a failure

    # ------------------------------------------------------------------ link
    def _transmit(self, command: bytes) -> bytes:
        """Send one command within the operation's deadline; return its well-framed answer."""
        until, what = self._deadline
        if time.monotonic() > until:
            raise TpmNonsenseError(
                f"TPM answered nonsense: it was still busy when the time allowed to {what} ran out",
                remedy="Retry once; a TPM that is this slow again is faulty: reject the board.",
                port=self.port,
            )
        code = int.from_bytes(command[6:10], "big")
        log.debug("TPM command %#x over the board link", code)
        try:
            response = self._link.tpm(command)
        except BoardError:
            self._link_failed = True
            raise
        problem = check_response(response)
        if problem:
            self._link_failed = True
            raise WireError(f"malformed TPM response to command {code:#x}: {problem}")
        return response

    def _forget(self) -> None:
        """Forget what was learned about the TPM: after a failure below it, nothing is sure."""
        self.rebuilds += 1
        self.close()

    def close(self) -> None:
        """Forget the session's state (the board link is the caller's)."""
        self._nv_buffer_max = 0
        self._eks = {}
        self._srk_name = None

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Run one operation within its deadline; translate failures into TpmError subclasses."""
        if threading.get_ident() != self._owner:
            raise RuntimeError("a TPM reader belongs to the thread that created it")
        self._deadline = (time.monotonic() + self._deadline_s, what)
        self._link_failed = False
        details: dict[str, Any] = {"port": self.port, "step": what}
        try:
            yield
        except TpmResponseError as exc:
            raise self._refused(exc.rc, what) from exc
        except WireError as exc:
            self._forget()
            log.warning("malformed TPM response on %s during %s: %s", self.port, what, exc)
            raise TpmMalformedResponseError(
                f"the TPM on {self.port} sent a response that cannot be decoded (while trying "
                f"to {what}): {exc}",
                remedy=_MALFORMED_REMEDY,
                **details,
            ) from exc
        except BoardError as exc:
            self._forget()
            log.warning("TPM %s on %s failed on the board link: %s", what, self.port, exc)
            raise TpmUnreachableError(
                f"cannot {what}: {exc.message}",
                remedy=exc.remedy or "Check the board's cable and power, then retry.",
                cause=exc.code,
                **details,
            ) from exc
        except KeyboardInterrupt:
            self._forget()  # the interrupted command's effect on the TPM is unknown
            raise

    def _nonsense(self, what: str) -> TpmNonsenseError:
        return TpmNonsenseError(
            f"TPM answered nonsense: {what}", remedy=_NONSENSE_REMEDY, port=self.port
        )

    def _refused(self, rc: int, what: str) -> TpmError:
        details: dict[str, Any] = {"port": self.port, "rc": f"{rc:#x}", "step": what}
        if rc == _RC_FAILURE:
            return TpmFailureModeError(
                f"the TPM on {self.port} is in failure mode (while trying to {what})",
                remedy="Power-cycle the board; if the TPM stays in failure mode, reject the board.",
                **details,
            )
        if rc == _RC_LOCKOUT:
            return TpmLockoutError(
                f"the TPM on {self.port} is in dictionary-attack lockout (while trying to {what})",
                remedy="Set the board aside until the lockout expires, or have the TPM owner "
                "reset it with the lockout password.",
                **details,
            )
        return TpmError(
            f"the TPM on {self.port} refused to {what} (TPM response code {rc:#x})",
            remedy="Retry once; if it fails again, reject the board and note the error code.",
            **details,
        )

    def _flush_quietly(self, handle: int | None) -> None:
        # Cleanup after a failure must not hide the failure itself, nor wait on a dead link.
        if handle is None or self._link_failed:
            return
        try:
            self._tpm.flush_context(handle)
        except (TpmResponseError, WireError, TpmError, BoardError):
            log.debug("flushing a transient TPM object failed", exc_info=True)

    # ------------------------------------------------------------------ keys
    def _checked(self, public: PublicArea, name: bytes) -> PublicArea:
        if public.name != name:
            raise TpmMalformedResponseError(
                f"the TPM on {self.port} returned a key whose name does not match its public area",
                remedy=_MALFORMED_REMEDY,
                port=self.port,
            )
        return public

    def _read_public(self, handle: int) -> PublicArea | None:
        """The public area of a persistent key (``None`` when there is none at ``handle``)."""
        try:
            return self._checked(*self._tpm.read_public(handle))
        except TpmResponseError as exc:
            if _is_absent(exc.rc):
                return None
            raise

    def _create_persistent(self, hierarchy: int, template: bytes, persistent: int) -> PublicArea:
        transient, public, name = self._tpm.create_primary(hierarchy, template)
        try:
            self._tpm.evict_control(transient, persistent)
        finally:
            self._flush_quietly(transient)
        return self._checked(public, name)

    def read_endorsement_key(self, *, template: str, create_if_absent: bool) -> EndorsementKey:
        """See :meth:`station.ports.TpmIdentityReader.read_endorsement_key`."""
        spec = _template(template)
        with self._guard("read the endorsement key"):
            public = self._read_public(spec.handle)
            origin = EkOrigin.FOUND
            if public is None:
                if not create_if_absent:
                    raise TpmEkAbsentError(
                        f"the TPM on {self.port} has no {template} endorsement key at "
                        f"{spec.handle:#010x}",
                        remedy="This product does not allow the station to create one: check "
                        "the board's TPM provisioning, or set create_ek_if_absent in the recipe.",
                        port=self.port,
                        template=template,
                    )
                public = self._create_ek(spec)
                origin = EkOrigin.CREATED
            if public.template != template:
                raise TpmError(
                    f"the key at {spec.handle:#010x} on {self.port} is a {public.template} "
                    f"key, not the {template} EK the product expects",
                    remedy="Check the product's ek_template against the board's TPM; if they "
                    "match, the TPM's provisioning is wrong: reject the board.",
                    port=self.port,
                )
            self._eks[template] = public
        return EndorsementKey(public=public.marshal(), template=template, origin=origin)

    def _create_ek(self, spec: EkTemplate) -> PublicArea:
        # The TCG default template, or the one the manufacturer stored in NV (EK profile). High
        # range templates need their certificate in NV (tpm2-pytss raises ValueError without).
        from tpm2_pytss.utils import create_ek_template

        try:
            _, ek_template = create_ek_template(spec.tcg_name, self._nv_reader())
        except ValueError as exc:
            raise TpmEkAbsentError(
                f"the TPM on {self.port} cannot make a {spec.name} EK: {exc}",
                remedy="High-range EKs are only made for TPMs that carry their certificate: "
                "check the product's ek_template.",
                port=self.port,
            ) from exc
        public = self._create_persistent(RH_ENDORSEMENT, bytes(ek_template.marshal()), spec.handle)
        log.info("created and persisted an EK (%s) on %s", spec.name, self.port)
        return public

    def _nv_reader(self) -> Callable[[int], bytes]:
        """NV reads for create_ek_template, within this reader's bounds.

        tpm2-pytss's own reader loops until the index is read: an NV_Read answered with zero
        bytes would keep it going for ever.
        """
        from tpm2_pytss.utils import NoSuchIndex

        def read(index: int) -> bytes:
            try:
                size = self._tpm.nv_read_public(int(index)).data_size
            except TpmResponseError as exc:
                if _is_absent(exc.rc):
                    raise NoSuchIndex(index) from exc
                raise
            return self._nv_read(int(index), size)

        return read

    def ensure_storage_root_key(self) -> bytes:
        """See :meth:`station.ports.TpmIdentityReader.ensure_storage_root_key`."""
        with self._guard("read or create the storage root key"):
            public = self._read_public(SRK_HANDLE)
            if public is None:
                public = self._create_persistent(RH_OWNER, _srk_template(), SRK_HANDLE)
            self._srk_name = public.name
        return public.marshal()

    # ------------------------------------------------------------------ EK certificates
    def read_ek_certificates(self, template: str) -> list[tuple[int, bytes]]:
        """See :meth:`station.ports.TpmIdentityReader.read_ek_certificates`."""
        found = []
        with self._guard("read the EK certificate"):
            present = self._nv_indices()
            for index in _template(template).cert_indices:
                if index in present:
                    size = self._tpm.nv_read_public(index).data_size
                    found.append((index, self._nv_read(index, size)))
        return found

    def _nv_indices(self) -> set[int]:
        # One GetCapability lists the defined EK-credential indices, instead of probing each
        # candidate index and getting an error back for the absent ones. Each page must move
        # forward, and there are only so many pages.
        present: set[int] = set()
        first = _EK_NV_RANGE[0]
        for _ in range(MAX_CAPABILITY_PAGES):
            more, handles = self._tpm.handles(first, 64)
            if any(h < first for h in handles) or handles != sorted(set(handles)):
                raise self._nonsense(
                    f"GetCapability(handles from {first:#010x}) listed "
                    f"{', '.join(f'{h:#010x}' for h in handles[:4])}, not ascending from there"
                )
            present.update(h for h in handles if h <= _EK_NV_RANGE[1])
            if not more or not handles or handles[-1] >= _EK_NV_RANGE[1]:
                return present
            first = handles[-1] + 1
        raise self._nonsense(
            f"GetCapability still had more NV handles after {MAX_CAPABILITY_PAGES} pages"
        )

    def _nv_read(self, index: int, size: int) -> bytes:
        if not 0 < size <= MAX_EK_CERTIFICATE_BYTES:
            raise self._nonsense(
                f"NV index {index:#010x} says it holds {size} bytes; an EK certificate has "
                f"1 to {MAX_EK_CERTIFICATE_BYTES}"
            )
        # First ask for as much as a TPM's NV buffer may sensibly hold: most TPMs hand over an
        # EK certificate in one NV_Read. One whose buffer is smaller refuses the size (a TPM
        # error); only then is its buffer size asked for.
        chunk = self._nv_buffer_max or NV_CHUNK_BOUNDS[1]
        data = bytearray()
        # NV_Read returns exactly the bytes asked for, so the loop ends after size/chunk reads.
        while len(data) < size:
            want = min(chunk, size - len(data))
            try:
                part = self._tpm.nv_read(index, want, len(data))
            except TpmResponseError as exc:
                if self._nv_buffer_max or not _is_too_large(exc.rc):
                    raise
                chunk = self._buffer_max()
                continue
            if len(part) != want:
                raise self._nonsense(
                    f"NV_Read of {index:#010x} at offset {len(data)} asked for {want} bytes and "
                    f"returned {len(part)}"
                )
            data += part
        return bytes(data)

    def _buffer_max(self) -> int:
        if not self._nv_buffer_max:
            value = self._tpm.property(PT_NV_BUFFER_MAX)
            low, high = NV_CHUNK_BOUNDS
            self._nv_buffer_max = min(max(value, low), high) if value else 512
        return self._nv_buffer_max

    # ------------------------------------------------------------------ residency
    def _in_failure_mode(self, handle: int) -> bool:
        """Whether the TPM refuses a harmless command too, as a TPM in failure mode does.

        swtpm (libtpms) answers an ActivateCredential whose seed it cannot decrypt (a credential
        made for another EK) with TPM_RC_FAILURE, yet keeps working: that answer is a refusal,
        unless the TPM also refuses to read a public area.
        """
        try:
            self._tpm.read_public(handle)
        except TpmResponseError as exc:
            return exc.rc == _RC_FAILURE
        return False

    def prove_residency(self, ek: bytes) -> bool:
        """See :meth:`station.ports.TpmIdentityReader.prove_residency`.

        MakeCredential runs here, in software, against the EK the board *presented*; only the
        TPM that holds that EK's private key can recover the secret with ActivateCredential.

        The credential is bound to an object loaded in the TPM: the SRK when
        :meth:`ensure_storage_root_key` ran first (the provisioning flow's order), else a
        throw-away primary made for it and flushed after (two TPM commands more). Either way
        the secret is fresh and only the EK's private key opens it.
        """
        try:
            ek_public = parse_public(ek)
        except WireError as exc:
            raise TpmError(
                "the recorded endorsement key is not a TPM2B_PUBLIC", reason=str(exc)
            ) from exc
        secret = secrets.token_bytes(32)
        with self._guard("prove the endorsement key is resident"):
            ek_handle = _template(ek_public.template).handle
            if ek_public.template not in self._eks and self._read_public(ek_handle) is None:
                return False
            made = session = None  # a throw-away challenge object; the policy session
            challenge, challenge_name = SRK_HANDLE, self._srk_name
            try:
                if challenge_name is None:
                    made, public, name = self._tpm.create_primary(RH_NULL, _challenge_template())
                    challenge, challenge_name = made, self._checked(public, name).name
                try:
                    credential, encrypted_seed = make_credential(ek_public, secret, challenge_name)
                except ValueError as exc:
                    raise TpmError(
                        f"the endorsement key cannot take a credential: {exc}",
                        remedy="Check the product's ek_template; this EK is not a TCG EK.",
                        port=self.port,
                    ) from exc
                if ek_public.attributes & USER_WITH_AUTH:
                    # High-range EK templates allow user actions with the (empty) EK auth.
                    key_auth = PASSWORD
                else:
                    policy = self._tpm.start_policy_session()
                    session = policy.handle
                    self._tpm.policy_secret_endorsement(policy)
                    # The TPM ends the session with the command that uses it: one flush less.
                    key_auth = Session(policy.handle, os.urandom(32), attributes=0)
                try:
                    recovered = self._tpm.activate_credential(
                        challenge, ek_handle, key_auth, credential, encrypted_seed
                    )
                    session = None
                except TpmResponseError as exc:
                    if exc.rc == _RC_LOCKOUT or (
                        exc.rc == _RC_FAILURE and self._in_failure_mode(ek_handle)
                    ):
                        raise
                    log.warning(
                        "TPM on %s could not activate the credential (rc %#x): EK not resident",
                        self.port,
                        exc.rc,
                    )
                    return False
            finally:
                for handle in (session, made):
                    self._flush_quietly(handle)
        return hmac.compare_digest(recovered, secret)
