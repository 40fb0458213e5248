"""First power-on of a virtual board: its firmware registers with DPS and keeps the assigned hub.

The firmware runs **inside the board process** (a lab-control hook), because only that process
has what a real device has at first boot: its swtpm (a second swtpm over the same state would
fight over the state file), its secure element key and the objects the station wrote. The
station is not involved: nothing here reads the station's database, HSM or configuration.

The hook, lab-only and not part of the board protocol:

1. the lab operator (``station lab power-on``, :meth:`LabBoards.power_on`) writes
   ``<state>/power-on/request.json`` ``{id, endpoint, port_map, ca_bundle, timeout_s}`` (where
   the lab DPS listens instead of the global endpoint, the lab's port map for SDKs that dial
   DPS's fixed ports, and the lab's CA bundle) and sends ``SIGUSR1`` to the board process;
2. the board's loop runs :func:`first_boot` between two frames: it reads its ``dps`` object,
   picks the credential the station gave it (symmetric key, certificate chain + secure-element or
   injected key, or its TPM), registers and stores the assignment
   (``<state>/dps-assignment.json``, readable over the link as the object ``hub``). Boards
   register with Microsoft's device SDKs, as a device maker's firmware would: symmetric-key and
   X.509 boards with the Python SDK over MQTT, TPM boards with the Node SDK over HTTPS (DPS
   offers TPM over HTTPS and AMQP only; the Python SDK has no TPM). The result names the SDK;
3. it answers ``<state>/power-on/result.json`` with the request's ``id``.

A board that holds an **operational key** (a product whose operational certificates come from
DPS certificate management) sends a CSR for it with its registration: the device SDKs know
neither api-version 2026-04-01 nor 2025-07-01-preview, so such a board registers with the lab's
own HTTPS client (``station_lab.firstboot.DeviceRegistrationClient``), which puts ``csr`` in the
register body.
The issued chain goes to ``<state>/operational-chain.pem`` (leaf, issuing CA, root); the result
names its issuer and expiry.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from station.domain.errors import LabBoardError, StationError
from station_lab.boards.process_alive import pid_alive
from station_lab.boards.state import BoardState, atomic_write

log = logging.getLogger(__name__)

CONTROL_DIR: Final = "power-on"
REQUEST_FILE: Final = "request.json"
RESULT_FILE: Final = "result.json"
ASSIGNMENT_FILE: Final = "dps-assignment.json"
OPERATIONAL_CHAIN_FILE: Final = "operational-chain.pem"
HUB_OBJECT: Final = "hub"  # read-only object name the firmware answers after power-on
POWER_ON_SIGNAL: Final = signal.SIGUSR1
_SETTLE_S: Final = 30.0  # beyond the registration timeout: TPM work and process wake-up


@dataclass(frozen=True)
class PowerOnResult:
    """What one board's first boot ended with (no secrets in it).

    ``status`` is ``assigned`` or ``error``; ``error_code`` is DPS's code when DPS refused
    (``401003`` disabled, ``404201`` not enrolled, ...), or a lab code such as
    ``not-provisioned``.
    """

    board: str
    serial: str
    status: str
    registration_id: str = ""
    attestation: str = ""
    assigned_hub: str = ""
    device_id: str = ""
    substatus: str = ""
    error: str = ""
    error_code: str = ""
    remedy: str = ""
    client: str = ""  # the device client that registered (or tried to): SDK and transport
    operational_issuer: str = ""  # the DPS-issued operational certificate's issuer, if any
    operational_not_after: str = ""  # and its expiry (UTC, ISO 8601)

    @property
    def assigned(self) -> bool:
        """True when DPS assigned the board to a hub."""
        return self.status == "assigned"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PowerOnResult:
        """Read back :meth:`to_json` (unknown keys are ignored)."""
        names = cls.__dataclass_fields__
        return cls(**{k: str(v) for k, v in raw.items() if k in names})


# --------------------------------------------------------------------------- firmware side
class PowerOnHook:
    """The board process's side of the hook: armed by ``SIGUSR1``, served by the board loop."""

    def __init__(self, state: BoardState) -> None:
        self.state = state
        self.pending = False

    def install(self) -> None:
        """Arm the signal handler (call from the main thread)."""
        signal.signal(POWER_ON_SIGNAL, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.pending = True

    def serve(self, tpm: Any = None) -> None:
        """If asked, run the first boot and answer; never raises (a board must keep serving)."""
        if not self.pending:
            return
        self.pending = False
        control = self.state.root / CONTROL_DIR
        try:
            request = json.loads((control / REQUEST_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("power-on signalled without a readable request")
            return
        result = first_boot(
            self.state,
            tpm,
            endpoint=str(request.get("endpoint", "")),
            port_map=str(request.get("port_map", "")) or None,
            ca_bundle=Path(str(request["ca_bundle"])) if request.get("ca_bundle") else None,
            timeout_s=float(request.get("timeout_s", 60.0)),
        )
        answer = {"id": request.get("id"), "result": result.to_json()}
        atomic_write(control / RESULT_FILE, json.dumps(answer).encode())


def first_boot(
    state: BoardState,
    tpm: Any,
    *,
    endpoint: str,
    ca_bundle: Path | None,
    timeout_s: float = 60.0,
    port_map: str | None = None,
) -> PowerOnResult:
    """Register the board with DPS as its firmware does at first boot; store the assigned hub.

    Args:
        state: the board's own state directory (objects the station wrote, its key).
        tpm: the board's TPM link (``transmit(bytes) -> bytes``), for TPM boards.
        endpoint: ``host:port`` to register at instead of the global endpoint in the ``dps``
            object (the lab DPS plays the global device endpoint).
        ca_bundle: the lab's CA bundle, to trust the lab DPS's TLS certificate.
        timeout_s: the whole registration's time limit.
        port_map: ``host:port`` of the lab's port map, through which the Python device SDK
            reaches the lab DPS's MQTT port (None: the SDK dials the host's port 8883).

    Returns:
        The outcome; failures are reported in it, never raised.
    """
    identity = state.identity()
    board = state.root.name
    dps_file = state.object_path("dps")
    if not dps_file.exists():
        return PowerOnResult(
            board=board,
            serial=identity.serial,
            status="error",
            error="the board holds no DPS info: the station did not provision it",
            error_code="not-provisioned",
            remedy="Provision the board at the station first, then power it on.",
        )
    attestation = ""
    registration_id = ""
    client_name = ""
    try:
        dps_object = _dps_object(dps_file.read_bytes())
        registration_id = str(dps_object.get("rid", ""))
        from station_lab.firstboot import DpsEndpoint

        dps_endpoint = DpsEndpoint.from_board(
            dps_object, ca_bundle=ca_bundle, endpoint_override=endpoint or None
        )
        attestation, credential, closer = _credential(state, tpm, registration_id)
        try:
            registration_id = credential.registration_id
            if state.operational_key_file.exists():
                client_name, register = _csr_client(state, dps_endpoint, credential, timeout_s)
            else:
                client_name, register = _client(dps_endpoint, credential, tpm, port_map, timeout_s)
            assignment = register()
        finally:
            closer()
    except StationError as exc:
        code = exc.details.get("error_code")
        return PowerOnResult(
            board=board,
            serial=identity.serial,
            status="error",
            registration_id=registration_id,
            attestation=attestation,
            error=exc.message,
            error_code="" if code is None else str(code),
            remedy=exc.remedy,
            client=client_name,
        )
    operational = _store_operational_chain(state, assignment.issued_chain)
    stored = {
        **({"operationalCertificate": operational} if operational else {}),
        "registrationId": assignment.registration_id,
        "assignedHub": assignment.assigned_hub,
        "deviceId": assignment.device_id,
        "substatus": assignment.substatus,
        "etag": assignment.etag,
        "attestation": attestation,
        "assignedAt": time.time(),
    }
    atomic_write(state.root / ASSIGNMENT_FILE, json.dumps(stored).encode())
    return PowerOnResult(
        board=board,
        serial=identity.serial,
        status="assigned",
        registration_id=assignment.registration_id,
        attestation=attestation,
        assigned_hub=assignment.assigned_hub,
        device_id=assignment.device_id,
        substatus=assignment.substatus,
        client=client_name,
        operational_issuer=operational.get("issuer", ""),
        operational_not_after=operational.get("notAfter", ""),
    )


def _csr_client(
    state: BoardState, endpoint: Any, credential: Any, timeout_s: float
) -> tuple[str, Callable[[], Any]]:
    """The lab's HTTPS client with a CSR of the operational key (the SDKs lack the preview)."""
    from station_lab.firstboot import DeviceRegistrationClient
    from station_lab.firstboot.client import CSR_API_VERSION

    key = serialization.load_pem_private_key(state.operational_key_file.read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise LabBoardError("the operational key is not an EC key", remedy="Provision again.")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, credential.registration_id)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA384())
    der = csr.public_bytes(serialization.Encoding.DER)
    client = DeviceRegistrationClient(endpoint, timeout_s=timeout_s)
    name = f"station-lab firstboot (HTTPS, {CSR_API_VERSION}, csr)"
    return name, lambda: client.register(credential, csr=der)


def _store_operational_chain(state: BoardState, chain: tuple[bytes, ...]) -> dict[str, str]:
    """Keep the DPS-issued chain as the device would (PEM, leaf first); its leaf's facts."""
    if not chain:
        return {}
    certificates = [x509.load_der_x509_certificate(der) for der in chain]
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)
    atomic_write(state.root / OPERATIONAL_CHAIN_FILE, pem)
    leaf = certificates[0]
    return {
        "issuer": leaf.issuer.rfc4514_string(),
        "notAfter": leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "thumbprint": leaf.fingerprint(hashes.SHA256()).hex().upper(),
    }


def _client(
    endpoint: Any, credential: Any, tpm: Any, port_map: str | None, timeout_s: float
) -> tuple[str, Callable[[], Any]]:
    """The official device SDK a board of this attestation uses: (its name, register())."""
    from station_lab.firstboot import TpmCredential, node_sdk, python_sdk

    if isinstance(credential, TpmCredential):
        return node_sdk.sdk_name(), lambda: node_sdk.register_with_node_sdk(
            endpoint, tpm, timeout_s=timeout_s
        )
    route = python_sdk.SdkRoute(proxy=port_map)
    return python_sdk.sdk_name(), lambda: python_sdk.register_with_python_sdk(
        endpoint, credential, route
    )


def stored_assignment(state: BoardState) -> dict[str, Any] | None:
    """The assignment the firmware kept after its last power-on, if any."""
    path = state.root / ASSIGNMENT_FILE
    if not path.exists():
        return None
    value = json.loads(path.read_text(encoding="utf-8"))
    return value if isinstance(value, dict) else None


def hub_object(state: BoardState) -> bytes | None:
    """The ``hub`` object a station reads over the link: CBOR ``{hub, deviceId, rid}``."""
    stored = stored_assignment(state)
    if stored is None:
        return None
    return cbor2.dumps(
        {
            "hub": stored.get("assignedHub", ""),
            "deviceId": stored.get("deviceId", ""),
            "rid": stored.get("registrationId", ""),
        },
        canonical=True,
    )


def _dps_object(data: bytes) -> dict[str, Any]:
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, LookupError) as exc:
        raise LabBoardError(
            "the board's DPS object is not CBOR", remedy="Provision the board again."
        ) from exc
    if not isinstance(value, dict):
        raise LabBoardError("the board's DPS object is not a map", remedy="Provision it again.")
    return value


def _credential(state: BoardState, tpm: Any, registration_id: str) -> tuple[str, Any, Any]:
    """Pick the credential from what the station wrote: (attestation, credential, closer)."""
    from station_lab.firstboot import SymmetricKeyCredential, TpmCredential, X509Credential

    symkey = state.object_path("symkey")
    if symkey.exists():
        credential = SymmetricKeyCredential.from_key_bytes(registration_id, symkey.read_bytes())
        return "symmetricKey", credential, lambda: None
    chain = state.object_path("cert_chain")
    if chain.exists():
        if not state.key_file.exists():
            raise LabBoardError(
                "the board holds a certificate chain but no private key",
                remedy="Provision the board again (keygen or key injection).",
            )
        pem_file = state.root / CONTROL_DIR / "chain.pem"
        pem_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(pem_file, _pem_chain(chain.read_bytes()))
        x509_credential = X509Credential(registration_id, pem_file, state.key_file)
        return "x509", x509_credential, lambda: None
    if tpm is not None:
        from station_lab.boards.tpm_tcti import open_device_tpm

        device_tpm = open_device_tpm(tpm)
        return "tpm", TpmCredential(device_tpm), device_tpm.close
    raise LabBoardError(
        "the board holds DPS info but no credential (no key, certificate or TPM)",
        remedy="Provision the board again.",
    )


def _pem_chain(der_chain: bytes) -> bytes:
    """Concatenated DER certificates (the ``cert_chain`` object) as a PEM chain, leaf first."""
    out = bytearray()
    offset = 0
    while offset < len(der_chain):
        if der_chain[offset] != 0x30 or offset + 2 > len(der_chain):
            raise LabBoardError("the board's certificate chain is not DER", remedy="Reprovision.")
        first = der_chain[offset + 1]
        if first < 0x80:
            length, header = first, 2
        else:
            count = first & 0x7F
            length = int.from_bytes(der_chain[offset + 2 : offset + 2 + count], "big")
            header = 2 + count
        end = offset + header + length
        try:
            cert = x509.load_der_x509_certificate(der_chain[offset:end])
        except ValueError as exc:
            raise LabBoardError(
                "the board's certificate chain cannot be parsed", remedy="Reprovision."
            ) from exc
        out += cert.public_bytes(serialization.Encoding.PEM)
        offset = end
    return bytes(out)


# --------------------------------------------------------------------------- lab operator side
def power_on(
    pid: int,
    state_dir: Path,
    *,
    endpoint: str,
    ca_bundle: Path | None,
    timeout_s: float = 60.0,
    port_map: str = "",
) -> PowerOnResult:
    """Ask the running board process ``pid`` to do its first boot; wait for its answer.

    Args:
        pid: the board process (from the lab registry or :class:`LabBoards`).
        state_dir: the board's state directory (where the hook's files live).
        endpoint: ``host:port`` of the lab DPS (overrides the global endpoint).
        ca_bundle: the lab DPS's CA bundle.
        timeout_s: the registration's time limit inside the board.
        port_map: ``host:port`` of the lab DPS's port map (``LocalDps.port_map``), for the
            Python device SDK; empty: the SDK dials port 8883 of the endpoint's host.

    Raises:
        LabBoardError: the board is not running or did not answer in time.
    """
    control = state_dir / CONTROL_DIR
    control.mkdir(parents=True, exist_ok=True)
    request_id = secrets.token_hex(8)
    request = {
        "id": request_id,
        "endpoint": endpoint,
        "port_map": port_map,
        "ca_bundle": str(ca_bundle) if ca_bundle else "",
        "timeout_s": timeout_s,
    }
    atomic_write(control / REQUEST_FILE, json.dumps(request).encode())
    try:
        os.kill(pid, POWER_ON_SIGNAL)
    except ProcessLookupError as exc:
        raise LabBoardError(
            f"board process {pid} is not running",
            remedy="Start the lab boards ('station lab boards') and try again.",
            pid=pid,
        ) from exc
    deadline = time.monotonic() + timeout_s + _SETTLE_S
    result_file = control / RESULT_FILE
    while time.monotonic() < deadline:
        answer = _read_answer(result_file)
        if answer is not None and answer.get("id") == request_id:
            return PowerOnResult.from_json(answer.get("result") or {})
        if not pid_alive(pid):
            break
        time.sleep(0.05)
    raise LabBoardError(
        f"board {state_dir.name} did not answer the power-on",
        remedy=f"Read {state_dir / 'board.log'} for the reason.",
        pid=pid,
    )


def _read_answer(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
