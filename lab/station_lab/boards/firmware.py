"""The board firmware's request handler: protocol version 1 as docs/board-protocol.md states it.

:meth:`Firmware.handle` takes one frame payload and returns the response payload. It never
raises: a bad request becomes an error response, an unexpected failure becomes ``internal``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from station.protocol.framing import MAX_PAYLOAD
from station.protocol.messages import (
    PROTOCOL_VERSION,
    MessageError,
    Request,
    Response,
    Status,
    decode_request,
    encode_response,
)
from station.protocol.ops import (
    CURVE_P256,
    CURVE_P384,
    DEVICE_KEY,
    OBJECTS,
    OPERATIONAL_KEY,
    Capability,
    check_args,
)
from station_lab.boards.poweron import HUB_OBJECT, hub_object
from station_lab.boards.state import BoardState, Persistent, atomic_write

log = logging.getLogger(__name__)

CAPABILITIES: Mapping[str, tuple[Capability, ...]] = {
    "tpm": (Capability.TPM, Capability.SYMMETRIC_KEY),
    "se": (Capability.SECURE_ELEMENT, Capability.SYMMETRIC_KEY),
    "nokey": (Capability.INJECTED_KEY, Capability.SYMMETRIC_KEY),
}

# Seconds a slow discrete TPM takes per command code (scaled by the slow_tpm fault).
SLOW_TPM_PROFILE: Mapping[int, float] = {
    0x131: 2.0,  # CreatePrimary (RSA key generation dominates)
    0x153: 1.5,  # Create
    0x191: 1.5,  # CreateLoaded
    0x147: 0.5,  # ActivateCredential
    0x15D: 0.3,  # Sign
}
SLOW_TPM_DEFAULT = 0.02


class TpmLink(Protocol):
    """What the firmware needs from its TPM."""

    def transmit(self, command: bytes) -> bytes:
        """Run one raw TPM command."""
        ...


class Refusal(Exception):
    """An operation refused with a status code (becomes an error response)."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Firmware:
    """One board's firmware.

    Args:
        state: the board's persistent state (created beforehand).
        tpm: the board's TPM, for ``tpm`` kind boards.
        tpm_slowdown: multiplies :data:`SLOW_TPM_PROFILE` (0 = answer at swtpm speed).
        report_serial: False for a board whose serial is only printed on it (hello says "").
        stuck_key: a counterfeit secure element: ``keygen`` keeps and returns the key it holds.
        no_p384: a secure element that makes P-256 keys only (``keygen`` of P-384 unsupported).
        csr_cn: a faulty firmware: CSRs name this CN instead of the one asked for.
        bad_csr_sig: a faulty secure element: CSR signatures come out damaged.
        sleep: how to wait (injected so tests of the profile need not sleep).
    """

    def __init__(
        self,
        state: BoardState,
        tpm: TpmLink | None = None,
        *,
        tpm_slowdown: float = 0.0,
        report_serial: bool = True,
        stuck_key: bool = False,
        no_p384: bool = False,
        csr_cn: str = "",
        bad_csr_sig: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.state = state
        self.identity = state.identity()
        self.tpm = tpm
        self.tpm_slowdown = tpm_slowdown
        self.report_serial = report_serial
        self.stuck_key = stuck_key
        self.no_p384 = no_p384
        self.csr_cn = csr_cn
        self.bad_csr_sig = bad_csr_sig
        self._sleep = sleep
        self.persistent: Persistent = state.load()
        self.capabilities = CAPABILITIES[self.identity.kind]
        self._last: tuple[bytes, bytes] | None = None  # (request payload, response payload)

    # ------------------------------------------------------------------ entry point
    def handle(self, payload: bytes) -> bytes:
        """Answer one request payload (CRC already checked); never raises."""
        if self._last is not None and self._last[0] == payload:
            return self._last[1]  # a retry: replay, do not apply again
        try:
            request = decode_request(payload)
        except MessageError as exc:
            return encode_response(Response(seq=0, status=exc.status, message=exc.reason))
        try:
            check_args(request.op, request.args)
            result = self._dispatch(request)
            response = Response(seq=request.seq, status=Status.OK, result=result)
        except MessageError as exc:
            response = Response(seq=request.seq, status=exc.status, message=exc.reason)
        except Refusal as exc:
            response = Response(seq=request.seq, status=exc.status, message=exc.message)
        except Exception:
            log.exception("internal error handling %s", request.op)
            response = Response(seq=request.seq, status=Status.INTERNAL, message="internal error")
        encoded = encode_response(response)
        self._last = (payload, encoded)
        return encoded

    def _dispatch(self, request: Request) -> dict[str, Any]:
        handler: Callable[[Mapping[str, Any]], dict[str, Any]] = getattr(self, f"_op_{request.op}")
        return handler(request.args)

    # ------------------------------------------------------------------ helpers
    def _has(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def _require(self, *capabilities: Capability) -> None:
        if not any(self._has(c) for c in capabilities):
            names = " or ".join(c.value for c in capabilities)
            raise Refusal(Status.UNSUPPORTED, f"this board has no {names}")

    def _unlocked(self) -> None:
        if self.persistent.locked:
            raise Refusal(Status.LOCKED, "board is locked")

    def _key_file(self, args: Mapping[str, Any]) -> Path:
        """The file behind the key slot ``args['key']`` (``device`` or ``operational``)."""
        slot = args.get("key", DEVICE_KEY)
        if slot == DEVICE_KEY:
            return self.state.key_file
        if slot == OPERATIONAL_KEY and self._has(Capability.SECURE_ELEMENT):
            return self.state.operational_key_file
        raise Refusal(Status.NOT_FOUND, f"no key slot '{slot}'")

    def _device_key(self, path: Path | None = None) -> ec.EllipticCurvePrivateKey:
        path = path or self.state.key_file
        if not path.exists():
            raise Refusal(Status.NOT_FOUND, f"no {_slot_name(self.state, path)} key yet")
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise Refusal(Status.INTERNAL, "stored device key is not an EC key")
        return key

    def _store_key(self, key: ec.EllipticCurvePrivateKey, path: Path | None = None) -> None:
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        atomic_write(path or self.state.key_file, pem, mode=0o600)

    def _curve(self, args: Mapping[str, Any], path: Path) -> ec.EllipticCurve:
        """The slot's curve (P-256 device, P-384 operational); another is unsupported."""
        operational = path == self.state.operational_key_file
        wanted = CURVE_P384 if operational else CURVE_P256
        name = args.get("curve", wanted)
        if name != wanted:
            raise Refusal(
                Status.UNSUPPORTED, f"this secure element cannot make '{name}' keys in that slot"
            )
        if operational and self.no_p384:
            raise Refusal(Status.UNSUPPORTED, "this secure element cannot make 'p384' keys")
        return ec.SECP384R1() if operational else ec.SECP256R1()

    # ------------------------------------------------------------------ operations
    def _op_hello(self, args: Mapping[str, Any]) -> dict[str, Any]:
        identity = self.identity
        return {
            "serial": identity.serial if self.report_serial else "",
            "model": identity.model,
            "hw": identity.hardware,
            "fw": identity.firmware,
            "proto": PROTOCOL_VERSION,
            "caps": [c.value for c in self.capabilities],
            "locked": self.persistent.locked,
            "max": MAX_PAYLOAD,
        }

    def _op_tpm(self, args: Mapping[str, Any]) -> dict[str, Any]:
        self._require(Capability.TPM)
        command: bytes = args["cmd"]
        if len(command) < 10 or int.from_bytes(command[2:6], "big") != len(command):
            raise Refusal(Status.BAD_ARGS, "TPM command header size does not match its length")
        if self.tpm is None:
            raise Refusal(Status.TPM_FAILURE, "TPM not running")
        if self.tpm_slowdown > 0:
            code = int.from_bytes(command[6:10], "big")
            self._sleep(SLOW_TPM_PROFILE.get(code, SLOW_TPM_DEFAULT) * self.tpm_slowdown)
        try:
            return {"rsp": self.tpm.transmit(command)}
        except (RuntimeError, OSError) as exc:
            raise Refusal(Status.TPM_FAILURE, str(exc)[:100]) from exc

    def _op_keygen(self, args: Mapping[str, Any]) -> dict[str, Any]:
        self._require(Capability.SECURE_ELEMENT)
        path = self._key_file(args)
        self._unlocked()
        curve = self._curve(args, path)
        if path.exists() and not args.get("replace", False):
            raise Refusal(Status.EXISTS, "the key exists; pass replace to make a new one")
        if self.stuck_key and path.exists():
            return {"pub": _spki(self._device_key(path))}
        key = ec.generate_private_key(curve)
        self._store_key(key, path)
        return {"pub": _spki(key)}

    def _op_csr(self, args: Mapping[str, Any]) -> dict[str, Any]:
        self._require(Capability.SECURE_ELEMENT, Capability.INJECTED_KEY)
        key = self._device_key(self._key_file(args))
        try:
            cn = self.csr_cn or args["cn"]
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        except ValueError as exc:
            raise Refusal(Status.BAD_ARGS, f"bad common name: {exc}") from exc
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, _hash(key))
        der = csr.public_bytes(serialization.Encoding.DER)
        if self.bad_csr_sig:  # the signature's last byte is part of s: flip one of its bits
            der = der[:-1] + bytes([der[-1] ^ 0x01])
        return {"csr": der}

    def _op_sign(self, args: Mapping[str, Any]) -> dict[str, Any]:
        self._require(Capability.SECURE_ELEMENT, Capability.INJECTED_KEY)
        key = self._device_key(self._key_file(args))
        return {"sig": key.sign(args["nonce"], ec.ECDSA(_hash(key)))}

    def _op_write(self, args: Mapping[str, Any]) -> dict[str, Any]:
        name: str = args["name"]
        data: bytes = args["data"]
        spec = OBJECTS.get(name)
        if spec is None:
            raise Refusal(Status.BAD_ARGS, f"unknown object '{name}'")
        if spec.needs is not None:
            self._require(spec.needs)
        self._unlocked()
        if len(data) > spec.max_size:
            raise Refusal(Status.TOO_LARGE, f"'{name}' holds at most {spec.max_size} bytes")
        _validate_object(name, data)
        if name == "privkey":
            self._store_key(_load_injected_key(data))
        atomic_write(self.state.object_path(name), data, mode=0o600 if spec.secret else 0o644)
        generations = self.persistent.generations
        generations[name] = generations.get(name, 0) + 1
        self.state.save(self.persistent)
        return {"gen": generations[name]}

    def _op_read(self, args: Mapping[str, Any]) -> dict[str, Any]:
        name: str = args["name"]
        if name == HUB_OBJECT:
            return self._read_hub()
        spec = OBJECTS.get(name)
        if spec is None:
            raise Refusal(Status.BAD_ARGS, f"unknown object '{name}'")
        path = self.state.object_path(name)
        if not path.exists():
            raise Refusal(Status.NOT_FOUND, f"'{name}' was never written")
        data = path.read_bytes()
        generation = self.persistent.generations.get(name, 0)
        if spec.secret:
            return {"gen": generation, "sha256": hashlib.sha256(data).digest()}
        return {"gen": generation, "data": data}

    def _read_hub(self) -> dict[str, Any]:
        # Read-only: the firmware writes it at first power-on (lab extension, see poweron.py).
        data = hub_object(self.state)
        if data is None:
            raise Refusal(Status.NOT_FOUND, "'hub' is set at first power-on; not powered on yet")
        return {"gen": 1, "data": data}

    def _op_lock(self, args: Mapping[str, Any]) -> dict[str, Any]:
        if not self.persistent.locked:
            self.persistent.locked = True
            self.state.save(self.persistent)
        return {"locked": True}

    def _op_reset(self, args: Mapping[str, Any]) -> dict[str, Any]:
        if args.get("factory", False):
            self._unlocked()
            self.state.erase()
            self.persistent = self.state.load()
        self._last = None
        return {}


def _hash(key: ec.EllipticCurvePrivateKey) -> hashes.SHA256 | hashes.SHA384:
    """The signature hash that goes with the key's curve: SHA-384 for P-384, else SHA-256."""
    return hashes.SHA384() if key.curve.name == "secp384r1" else hashes.SHA256()


def _slot_name(state: BoardState, path: Path) -> str:
    return OPERATIONAL_KEY if path == state.operational_key_file else DEVICE_KEY


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _load_injected_key(data: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_der_private_key(data, None)
    except (ValueError, TypeError) as exc:
        raise Refusal(Status.BAD_ARGS, "privkey must be an unencrypted PKCS#8 DER key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise Refusal(Status.BAD_ARGS, "privkey must be a P-256 key")
    return key


def _validate_object(name: str, data: bytes) -> None:
    if name == "symkey" and not 16 <= len(data) <= 64:
        raise Refusal(Status.BAD_ARGS, "symkey must be 16..64 bytes")
    if name == "dps":
        try:
            value = cbor2.loads(data)
        except (cbor2.CBORError, ValueError, TypeError, OverflowError, LookupError) as exc:
            raise Refusal(Status.BAD_ARGS, "dps must be a CBOR map") from exc
        fields = ("endpoint", "scope", "rid")
        if not isinstance(value, dict) or not all(isinstance(value.get(f), str) for f in fields):
            raise Refusal(Status.BAD_ARGS, "dps must map endpoint, scope and rid to text")
