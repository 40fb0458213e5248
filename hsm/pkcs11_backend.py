"""``pkcs11:`` keys through python-pkcs11: SoftHSM2, a network HSM, a YubiHSM or a Nitrokey.

Keys are generated inside the token as sensitive, non-extractable objects. Signing hashes on the
host and asks the token for a raw ``CKM_ECDSA`` signature, because SoftHSM2 (and several HSMs) do
not implement ``CKM_ECDSA_SHA256``; the host-side hash is public data, the private key never
leaves the token.

python-pkcs11 loads each module once per process, and SoftHSM2 reads ``SOFTHSM2_CONF`` when it is
first loaded, so that variable must be set before the first key is opened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path
from typing import Any, NoReturn

import pkcs11
import pkcs11.exceptions as p11e
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.utils import Buffer
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from hsm.errors import (
    BackendError,
    HsmError,
    KeyExistsError,
    KeyNotFoundError,
    PinLockedError,
    TokenNotFoundError,
    TokenRemovedError,
    UnsupportedKeyError,
    WrongPinError,
)
from hsm.keys import (
    KeyAlgorithm,
    KeyCustody,
    NonExtractableEcKey,
    NonExtractableRsaKey,
    algorithm_of,
)
from hsm.pin import PinSource
from hsm.uri import Pkcs11Uri

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
MODULE_ENV = "STATION_PKCS11_MODULE"

_libs: dict[str, Any] = {}
_libs_lock = threading.Lock()

_REMOVED = (
    p11e.DeviceRemoved,
    p11e.TokenNotPresent,
    p11e.SessionHandleInvalid,
    p11e.SessionClosed,
    p11e.ObjectHandleInvalid,
    p11e.KeyHandleInvalid,
    p11e.DeviceError,
)
_HASH_MECHANISMS = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}


def module_path(uri: Pkcs11Uri) -> str:
    """The PKCS#11 module for ``uri``: its ``module-path``, ``$STATION_PKCS11_MODULE``, SoftHSM2."""
    return uri.module_path or os.environ.get(MODULE_ENV) or DEFAULT_MODULE


def _lib(path: str) -> Any:
    with _libs_lock:
        if path not in _libs:
            if not Path(path).is_file():
                raise TokenNotFoundError(
                    f"PKCS#11 module {path} does not exist",
                    remedy="Install the HSM's PKCS#11 module or fix module-path in the key URI.",
                    module=path,
                )
            try:
                _libs[path] = pkcs11.lib(path)
            except (p11e.PKCS11Error, RuntimeError, OSError) as exc:
                raise BackendError(
                    f"cannot load PKCS#11 module {path}: {exc}",
                    remedy="Check that the module matches this machine and its config is readable.",
                    module=path,
                ) from exc
        return _libs[path]


def reload_module(path: str = DEFAULT_MODULE) -> None:
    """Re-initialise a loaded module so it sees tokens created since (closes all its sessions).

    SoftHSM2 scans its token directory only when initialised; an admin who creates a token while
    the station runs needs this. Does nothing if the module is not loaded.
    """
    with _module_lock(path), _libs_lock, _logins_lock:
        lib = _libs.get(path)
        if lib is not None:
            # re-initialising closes every session and login of the module
            for key in [key for key in _logins if key[0] == path]:
                del _logins[key]
            try:
                lib.reinitialize()
            except p11e.PKCS11Error as exc:
                raise BackendError(f"cannot re-initialise PKCS#11 module {path}: {exc}") from exc


def raise_translated(exc: Exception, uri: Pkcs11Uri) -> NoReturn:
    """Raise the :mod:`hsm` error that matches a python-pkcs11 exception (``from exc``)."""
    where = uri.describe()
    if isinstance(exc, p11e.PinIncorrect):
        raise WrongPinError(
            f"the token refused the PIN for {where}",
            remedy="Check the PIN file or $STATION_PKCS11_PIN; after a few wrong tries the "
            "token locks the PIN.",
            token=uri.token,
        ) from exc
    if isinstance(exc, p11e.PinLocked):
        raise PinLockedError(
            f"the user PIN of {where} is locked",
            remedy="The security officer must unlock it (softhsm2-util / the HSM's admin tool).",
            token=uri.token,
        ) from exc
    if isinstance(exc, p11e.NoSuchToken | p11e.MultipleTokensReturned | p11e.SlotIDInvalid):
        many = isinstance(exc, p11e.MultipleTokensReturned)
        raise TokenNotFoundError(
            f"{'several tokens match' if many else 'no token matches'} {where}",
            remedy="Plug in the HSM, or check the token label in the key URI ([ca] key_uri).",
            token=uri.token,
        ) from exc
    if isinstance(exc, _REMOVED):
        raise TokenRemovedError(
            f"the token for {where} was removed or reset while in use",
            remedy="Reconnect the HSM and retry; nothing was signed by the failed operation.",
            token=uri.token,
            error=type(exc).__name__,
        ) from exc
    if isinstance(exc, p11e.NoSuchKey | p11e.MultipleObjectsReturned):
        many = isinstance(exc, p11e.MultipleObjectsReturned)
        raise KeyNotFoundError(
            f"{'several keys match' if many else 'no key matches'} {where}",
            remedy="Check object= and id= in the key URI, or run 'station ca init' first.",
            token=uri.token,
            object=uri.object,
        ) from exc
    if isinstance(exc, p11e.MechanismInvalid | p11e.KeyTypeInconsistent):
        raise UnsupportedKeyError(
            f"the token cannot do what was asked with {where}: {type(exc).__name__}",
            token=uri.token,
        ) from exc
    raise BackendError(
        f"the PKCS#11 token failed for {where}: {type(exc).__name__} {exc}".rstrip(),
        remedy="Check the HSM's status and logs.",
        token=uri.token,
        error=type(exc).__name__,
    ) from exc


_PIN_TAG_KEY = secrets.token_bytes(32)


@dataclasses.dataclass
class _Login:
    """This process's login to one token, shared by every session open on it.

    PKCS#11 login is per application and token, and closing the session that logged in logs
    every session of the process out: a background task that opened the CA first and then
    closed would break every slot's signing key ("removed or reset while in use"). So the
    session that logged in (``holder``) stays open until the last session on the token closes;
    the others never log in or out themselves.
    """

    holder: Any  # the python-pkcs11 Session that logged in (None: logged in outside this module)
    pin_tag: bytes  # keyed digest of that PIN (never the PIN itself)
    users: int = 0


_logins: dict[tuple[str, str, bytes], _Login] = {}  # (module, token label, serial) -> login
_logins_lock = threading.Lock()
_module_locks: dict[str, threading.RLock] = {}
_module_locks_guard = threading.Lock()


def _module_lock(path: str) -> threading.RLock:
    """The HSM lock of one PKCS#11 module: every call into the module, on any token, holds it.

    python-pkcs11 initialises a module with ``C_Initialize(NULL_PTR)``, which tells it that the
    application will not call it from several threads at once; SoftHSM2 then switches its own
    mutexes off, so two slot workers opening sessions or signing at the same time corrupt its
    session table ("token not present", CKR_OPERATION_ACTIVE). Serialising here, inside hsm/,
    covers every caller (slot workers, a push deriving device keys, an export signing its
    manifest). A token is reached through one module, so this is the lock of every token that
    module serves; tokens behind another module (a second HSM) never wait for it. Re-entrant,
    because opening a key finds objects and reads attributes under the same lock.
    """
    with _module_locks_guard:
        return _module_locks.setdefault(path, threading.RLock())


def _pin_tag(pin: str) -> bytes:
    return hmac.new(_PIN_TAG_KEY, pin.encode("utf-8"), hashlib.sha256).digest()


# Errors that, while *opening* a token, mean it is not there (SoftHSM2 answers GeneralError when
# its token directory vanished; real HSMs answer TokenNotPresent or DeviceRemoved).
_ABSENT = (
    p11e.GeneralError,
    p11e.TokenNotPresent,
    p11e.TokenNotRecognised,
    p11e.DeviceRemoved,
    p11e.DeviceError,
)


def _absent(uri: Pkcs11Uri) -> TokenNotFoundError:
    return TokenNotFoundError(
        f"the token for {uri.describe()} is not present or cannot be read",
        remedy="Reconnect the HSM (or restore the token) and retry.",
        token=uri.token,
    )


class _Session:
    """One logged-in session on one token, shared by the key objects opened through it.

    ``lock`` is its module's lock (:func:`_module_lock`): hold it for every call into the session.
    """

    def __init__(self, uri: Pkcs11Uri, pin_source: PinSource, *, rw: bool) -> None:
        self.uri = uri
        self.lock = _module_lock(module_path(uri))
        with self.lock:
            self._open(pin_source, rw=rw)
        self._closed = False

    def _open(self, pin_source: PinSource, *, rw: bool) -> None:
        uri = self.uri
        lib = _lib(module_path(uri))
        query: dict[str, str] = {}
        if uri.token:
            query["token_label"] = uri.token
        if uri.serial:
            query["token_serial"] = uri.serial
        if uri.manufacturer:
            query["manufacturer_id"] = uri.manufacturer
        if uri.model:
            query["model"] = uri.model
        try:
            token = lib.get_token(**query)
        except _ABSENT as exc:
            raise _absent(uri) from exc
        except p11e.PKCS11Error as exc:
            raise_translated(exc, uri)
        source = PinSource(file=Path(uri.pin_source)) if uri.pin_source else pin_source
        pin = source.resolve(f"the PIN of {uri.describe()}")
        self._login_key = (module_path(uri), token.label, getattr(token, "serial", b""))
        with _logins_lock:
            login = _logins.get(self._login_key)
            try:
                if login is None:
                    self.session, login = self._log_in(token, pin, rw=rw)
                    _logins[self._login_key] = login
                else:
                    if not hmac.compare_digest(login.pin_tag, _pin_tag(pin)):
                        # the token cannot check the PIN again while logged in: compare
                        raise_translated(p11e.PinIncorrect(), uri)
                    self.session = token.open(rw=rw)
            except _ABSENT as exc:
                raise _absent(uri) from exc
            except p11e.PKCS11Error as exc:
                raise_translated(exc, uri)
            login.users += 1

    @staticmethod
    def _log_in(token: Any, pin: str, *, rw: bool) -> tuple[Any, _Login]:
        try:
            session = token.open(user_pin=pin, rw=rw)
            return session, _Login(holder=session, pin_tag=_pin_tag(pin))
        except p11e.UserAlreadyLoggedIn:
            # logged in by other code in this process: share it, never log it out
            return token.open(rw=rw), _Login(holder=None, pin_tag=_pin_tag(pin))

    def find(self, object_class: ObjectClass, *, required: bool = True) -> Any:
        """Return the one object of ``object_class`` matching the URI's label and id."""
        attrs: dict[Attribute, Any] = {Attribute.CLASS: object_class}
        if self.uri.object:
            attrs[Attribute.LABEL] = self.uri.object
        if self.uri.id:
            attrs[Attribute.ID] = self.uri.id
        try:
            with self.lock:
                found = list(self.session.get_objects(attrs))
        except p11e.PKCS11Error as exc:
            raise_translated(exc, self.uri)
        if len(found) == 1:
            return found[0]
        if not found and not required:
            return None
        raise_translated(p11e.MultipleObjectsReturned() if found else p11e.NoSuchKey(), self.uri)

    def close(self) -> None:
        """Close this session; the last one on the token also logs the process out."""
        if self._closed:
            return
        self._closed = True
        with self.lock, _logins_lock:
            login = _logins.get(self._login_key)
            last = login is None or login.users <= 1
            # a removed token has nothing left to release
            with contextlib.suppress(p11e.PKCS11Error):
                if login is None or self.session is not login.holder:
                    self.session.close()
                if last and login is not None and login.holder is not None:
                    login.holder.close()  # logs out: no other session of ours is left
            if login is not None:
                login.users -= 1
                if last:
                    del _logins[self._login_key]


def _public_key(session: _Session, private: Any) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    try:
        with session.lock:
            key_type = private[Attribute.KEY_TYPE]
            if key_type == KeyType.EC:
                encoded = encode_ec_public_key(session.find(ObjectClass.PUBLIC_KEY))
            elif key_type == KeyType.RSA:
                modulus = int.from_bytes(private[Attribute.MODULUS], "big")
                exponent = int.from_bytes(private[Attribute.PUBLIC_EXPONENT], "big")
            else:
                raise UnsupportedKeyError(
                    f"key {session.uri.describe()} is neither EC nor RSA", token=session.uri.token
                )
    except p11e.PKCS11Error as exc:
        raise_translated(exc, session.uri)
    if key_type == KeyType.EC:
        loaded = serialization.load_der_public_key(encoded)
    else:
        loaded = rsa.RSAPublicNumbers(exponent, modulus).public_key()
    if not isinstance(loaded, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise UnsupportedKeyError(f"key {session.uri.describe()} has an unsupported public key")
    return loaded


def _custody(session: _Session, private: Any, algorithm: KeyAlgorithm) -> KeyCustody:
    try:
        with session.lock:
            sensitive = bool(private[Attribute.SENSITIVE])
            extractable = bool(private[Attribute.EXTRACTABLE])
            local = bool(private[Attribute.LOCAL])
    except p11e.PKCS11Error as exc:
        raise_translated(exc, session.uri)
    return KeyCustody(
        backend="pkcs11",
        location=session.uri.describe(),
        algorithm=str(algorithm),
        sensitive=sensitive,
        extractable=extractable,
        generated_on_device=local,
    )


class Pkcs11EcKey(NonExtractableEcKey):
    """An EC private key inside a PKCS#11 token, usable wherever cryptography wants a key."""

    def __init__(self, session: _Session, private: Any, public: ec.EllipticCurvePublicKey) -> None:
        self._session = session
        self._private = private
        self._public = public

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        """Sign ``data`` (ECDSA only): hash here, raw ECDSA in the token, DER-encode r and s."""
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise UnsupportedKeyError("only ECDSA signatures are supported")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, utils.Prehashed):
            digest = data
        else:
            hasher = hashes.Hash(algorithm)
            hasher.update(data)
            digest = hasher.finalize()
        try:
            with self._session.lock:
                raw = self._private.sign(digest, mechanism=Mechanism.ECDSA)
        except p11e.PKCS11Error as exc:
            raise_translated(exc, self._session.uri)
        half = len(raw) // 2
        r = int.from_bytes(raw[:half], "big")
        s = int.from_bytes(raw[half:], "big")
        return utils.encode_dss_signature(r, s)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half."""
        return self._public

    @property
    def key_id(self) -> bytes:
        """The key's CKA_ID (how the URI names exactly this key)."""
        return self._session.uri.id

    def location(self) -> str:
        """The token and key, for messages."""
        return self._session.uri.describe()

    def custody(self) -> KeyCustody:
        """Where the key lives and its token attributes."""
        return _custody(self._session, self._private, algorithm_of(self._public))

    def close(self) -> None:
        """Close the token session."""
        self._session.close()


class Pkcs11RsaKey(NonExtractableRsaKey):
    """An RSA private key inside a PKCS#11 token (PKCS#1 v1.5 signatures)."""

    def __init__(self, session: _Session, private: Any, public: rsa.RSAPublicKey) -> None:
        self._session = session
        self._private = private
        self._public = public

    def sign(
        self,
        data: Buffer,
        padding: padding.AsymmetricPadding,
        algorithm: utils.Prehashed | hashes.HashAlgorithm | utils.NoDigestInfo,
    ) -> bytes:
        """Sign with PKCS#1 v1.5 and SHA-256/384/512, inside the token."""
        if padding.name != "EMSA-PKCS1-v1_5" or not isinstance(algorithm, hashes.HashAlgorithm):
            raise UnsupportedKeyError("the token key signs PKCS#1 v1.5 over unhashed data only")
        mechanism = _HASH_MECHANISMS.get(algorithm.name)
        if mechanism is None:
            raise UnsupportedKeyError(f"hash {algorithm.name} is not supported for RSA")
        try:
            with self._session.lock:
                return bytes(self._private.sign(bytes(data), mechanism=mechanism))
        except p11e.PKCS11Error as exc:
            raise_translated(exc, self._session.uri)

    def public_key(self) -> rsa.RSAPublicKey:
        """The public half."""
        return self._public

    @property
    def key_id(self) -> bytes:
        """The key's CKA_ID (how the URI names exactly this key)."""
        return self._session.uri.id

    def location(self) -> str:
        """The token and key, for messages."""
        return self._session.uri.describe()

    def custody(self) -> KeyCustody:
        """Where the key lives and its token attributes."""
        return _custody(self._session, self._private, algorithm_of(self._public))

    def close(self) -> None:
        """Close the token session."""
        self._session.close()


def open_pkcs11_signer(uri: Pkcs11Uri, pin_source: PinSource) -> Pkcs11EcKey | Pkcs11RsaKey:
    """Open the private key ``uri`` names (see :func:`hsm.open_signer`)."""
    session = _Session(uri, pin_source, rw=False)
    try:
        private = session.find(ObjectClass.PRIVATE_KEY)
        public = _public_key(session, private)
        algorithm_of(public)
    except HsmError:
        session.close()
        raise
    if isinstance(public, ec.EllipticCurvePublicKey):
        return Pkcs11EcKey(session, private, public)
    return Pkcs11RsaKey(session, private, public)


def generate_pkcs11_key(
    uri: Pkcs11Uri, algorithm: KeyAlgorithm, pin_source: PinSource
) -> Pkcs11EcKey | Pkcs11RsaKey:
    """Generate a key pair inside the token (sensitive, non-extractable) and open it."""
    if not uri.object:
        raise KeyExistsError(
            f"key URI {uri.describe()} has no object= label for the new key",
            remedy="Add ;object=<label> to the key URI.",
        )
    session = _Session(uri, pin_source, rw=True)
    try:
        if session.find(ObjectClass.PRIVATE_KEY, required=False) is not None:
            raise KeyExistsError(
                f"the token already holds a key matching {uri.describe()}",
                remedy="Pick another object= label, or use the existing key.",
                token=uri.token,
                object=uri.object,
            )
        key_id = uri.id or os.urandom(8)
        private_template = {
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        public_template = {Attribute.VERIFY: True, Attribute.ENCRYPT: False, Attribute.WRAP: False}
        try:
            with session.lock:
                curve = algorithm.curve
                if curve is not None:
                    params = session.session.create_domain_parameters(
                        KeyType.EC,
                        {Attribute.EC_PARAMS: encode_named_curve_parameters(curve.name)},
                        local=True,
                    )
                    params.generate_keypair(
                        store=True,
                        label=uri.object,
                        id=key_id,
                        private_template=private_template,
                        public_template=public_template,
                    )
                else:
                    session.session.generate_keypair(
                        KeyType.RSA,
                        3072,
                        store=True,
                        label=uri.object,
                        id=key_id,
                        private_template=private_template,
                        public_template=public_template,
                    )
        except p11e.PKCS11Error as exc:
            raise_translated(exc, uri)
    finally:
        session.close()
    return open_pkcs11_signer(Pkcs11Uri(**{**_fields(uri), "id": key_id}), pin_source)


def _fields(uri: Pkcs11Uri) -> dict[str, Any]:
    return {name: getattr(uri, name) for name in uri.__dataclass_fields__}


class Pkcs11GroupKey:
    """A symmetric enrollment-group key held in a token; device keys are derived inside it."""

    def __init__(self, session: _Session, secret: Any) -> None:
        self._session = session
        self._secret = secret

    def derive(self, registration_id: str) -> bytes:
        """Return HMAC-SHA256(group key, registration ID), computed inside the token."""
        try:
            with self._session.lock:
                return bytes(
                    self._secret.sign(
                        registration_id.encode("utf-8"), mechanism=Mechanism.SHA256_HMAC
                    )
                )
        except p11e.PKCS11Error as exc:
            raise_translated(exc, self._session.uri)

    def custody(self) -> KeyCustody:
        """Where the group key lives."""
        try:
            with self._session.lock:
                sensitive = bool(self._secret[Attribute.SENSITIVE])
                extractable = bool(self._secret[Attribute.EXTRACTABLE])
        except p11e.PKCS11Error as exc:
            raise_translated(exc, self._session.uri)
        return KeyCustody(
            backend="pkcs11",
            location=self._session.uri.describe(),
            algorithm="hmac-sha256",
            sensitive=sensitive,
            extractable=extractable,
            generated_on_device=False,
        )

    def close(self) -> None:
        """Close the token session."""
        self._session.close()


def import_pkcs11_group_key(uri: Pkcs11Uri, key: bytes, pin_source: PinSource) -> None:
    """Store ``key`` in the token as a sensitive, non-extractable HMAC secret."""
    if not uri.object:
        raise KeyExistsError(
            "the group-key URI has no object= label", remedy="Add ;object=<label> to the URI."
        )
    session = _Session(uri, pin_source, rw=True)
    try:
        if session.find(ObjectClass.SECRET_KEY, required=False) is not None:
            raise KeyExistsError(
                f"the token already holds a group key matching {uri.describe()}",
                remedy="Pick another object= label.",
                token=uri.token,
                object=uri.object,
            )
        try:
            with session.lock:
                session.session.create_object(
                    {
                        Attribute.CLASS: ObjectClass.SECRET_KEY,
                        Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
                        Attribute.VALUE: key,
                        Attribute.TOKEN: True,
                        Attribute.PRIVATE: True,
                        Attribute.SENSITIVE: True,
                        Attribute.EXTRACTABLE: False,
                        Attribute.SIGN: True,
                        Attribute.VERIFY: True,
                        Attribute.ENCRYPT: False,
                        Attribute.DECRYPT: False,
                        Attribute.WRAP: False,
                        Attribute.UNWRAP: False,
                        Attribute.DERIVE: False,
                        Attribute.LABEL: uri.object,
                        Attribute.ID: uri.id or os.urandom(8),
                    }
                )
        except p11e.PKCS11Error as exc:
            raise_translated(exc, uri)
    finally:
        session.close()


def open_pkcs11_group_key(uri: Pkcs11Uri, pin_source: PinSource) -> Pkcs11GroupKey:
    """Open the group key ``uri`` names."""
    session = _Session(uri, pin_source, rw=False)
    try:
        secret = session.find(ObjectClass.SECRET_KEY)
    except HsmError:
        session.close()
        raise
    return Pkcs11GroupKey(session, secret)
