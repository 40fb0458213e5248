"""Steps every flow ends with: the symmetric key (its flow's only step), DPS info, lock, record."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Protocol

import cbor2

from station.domain.audit import format_time
from station.domain.errors import ReadbackMismatchError
from station.domain.fleet import FleetIdentity
from station.domain.manifest import (
    Attestation,
    BoardInfo,
    DpsTarget,
    IdentityManifest,
    SymmetricKeyIdentity,
    X509Identity,
)
from station.domain.products import ProductAttestation
from station.domain.provision_events import Step
from station.domain.records import CertificateStatus
from station.domain.states import JobState
from station.services.identities import record_identity
from station.services.provision.context import (
    StepContext,
    read_optional,
)
from station.services.provision.model import Evidence

_ATTESTATION = {
    ProductAttestation.TPM: Attestation.TPM,
    ProductAttestation.X509: Attestation.X509,
    ProductAttestation.X509_INJECTED: Attestation.X509,
    ProductAttestation.SYMMETRIC_KEY: Attestation.SYMMETRIC_KEY,
}


@dataclass
class SymmetricState:
    """What the symmetric-key flow establishes: the group key the device key derives from."""

    identity: SymmetricKeyIdentity | None = None

    def evidence(self) -> Evidence:
        """The symmetric-key identity for the manifest."""
        if self.identity is None:
            raise RuntimeError("the symmetric-key flow ended before the key was written")
        return Evidence(symmetric=self.identity)

    def close(self) -> None:
        """Nothing to release: the derived key never outlives its step."""


def start_symmetric(ctx: StepContext) -> SymmetricState:
    """A fresh symmetric-key state for one run."""
    return SymmetricState()


def write_symmetric_key(ctx: StepContext, state: SymmetricState) -> str:
    """Derive the device key from the group key in the HSM, write it, check it by digest."""
    recipe, link = ctx.board.recipe, ctx.link
    key = ctx.ports.group_keys().derive(recipe.group_key, ctx.run.registration_id)
    digest = hashlib.sha256(key).digest()
    current = _secret_digest(ctx, "symkey")
    if current != digest:
        link.write("symkey", key)
        current = _secret_digest(ctx, "symkey")
    del key  # derived again whenever needed; never stored
    if current != digest:
        raise ReadbackMismatchError("the symmetric key on the board does not match the derived key")
    state.identity = SymmetricKeyIdentity(group_key=recipe.group_key)
    return "derived in the HSM, written, checked"


def _secret_digest(ctx: StepContext, name: str) -> bytes | None:
    found = read_optional(ctx.link, name)
    return found.sha256 if found else None


def write_dps(ctx: StepContext, state: object) -> str:
    """Write the DPS connection info (endpoint, ID scope, registration ID) and read it back."""
    dps = ctx.board.recipe.dps
    wanted = {
        "endpoint": dps.global_endpoint,
        "scope": dps.id_scope,
        "rid": ctx.run.registration_id,
    }
    current = _read_dps(ctx)
    if current != wanted:
        ctx.link.write("dps", cbor2.dumps(wanted, canonical=True))
        current = _read_dps(ctx)
    if current != wanted:
        raise ReadbackMismatchError(
            "the DPS connection info read back from the board differs from what was written",
            wanted=wanted,
            read=current,
        )
    return f"{wanted['endpoint']} {wanted['scope']}, read back"


def _read_dps(ctx: StepContext) -> object:
    found = read_optional(ctx.link, "dps")
    if found is None:
        return None
    try:
        return cbor2.loads(found.data or b"")
    except (ValueError, cbor2.CBORDecodeError):
        return None


class _Evidenced(Protocol):
    def evidence(self) -> Evidence: ...


def lock(ctx: StepContext, state: _Evidenced) -> str:
    """Ask the fleet ledger (online products), then take the board out of manufacturing mode."""
    note = fleet_check(ctx, state.evidence())
    ctx.link.lock()
    return f"left manufacturing mode; {note}" if note else "left manufacturing mode"


def fleet_check(ctx: StepContext, evidence: Evidence) -> str:
    """Claim the board's keys across the fleet; a duplicate stops it before it is locked.

    Raises:
        FleetDuplicateError: another station holds the serial, registration ID, EK or key.
        FleetQuotaError: the work order's fleet-wide quota is used up.
        FleetUnavailableError: the ledger is down and the product may not defer its check.
    """
    guard = ctx.ports.fleet
    if guard is None:
        return ""
    manifest = _manifest(ctx, evidence)
    return guard.check(
        FleetIdentity(
            station=ctx.station,
            product=manifest.product,
            batch=manifest.batch,
            registration_id=manifest.registration_id,
            serial=manifest.board.serial,
            operator=ctx.operator,
            ek_sha256=manifest.ek_sha256,
            device_key_sha256=evidence.spki_sha256,
        )
    )


def record(ctx: StepContext, evidence: Evidence) -> str:
    """Record the manifest, mark the certificate installed and the job passed, atomically.

    A recipe that does not lock its boards is checked across the fleet here instead.
    """
    if not ctx.board.recipe.lock:
        fleet_check(ctx, evidence)
    manifest = _manifest(ctx, evidence)
    store = ctx.store
    with store:
        record_identity(
            store, manifest, clock=ctx.clock, station=ctx.station, operator=ctx.operator
        )
        if evidence.certificate is not None:
            current = store.certificates.get(evidence.certificate.serial_number)
            assert current is not None  # the CA recorded it when it issued it
            store.certificates.save(replace(current, status=CertificateStatus.INSTALLED))
        if evidence.spki_sha256:
            store.devices.claim_key(evidence.spki_sha256, ctx.run.registration_id)
        ctx.advance(step=Step.RECORD, state=JobState.PASSED, phase="passed")
    return manifest.digest()[:12]


def _manifest(ctx: StepContext, evidence: Evidence) -> IdentityManifest:
    recipe, hello, run = ctx.board.recipe, ctx.board.hello, ctx.run
    x509 = None
    if evidence.certificate is not None:
        cert = evidence.certificate
        x509 = X509Identity(
            certificate_pem=cert.certificate_pem,
            thumbprint_sha256=cert.thumbprint_sha256.lower(),
            serial_number=cert.serial_number,
            not_before=cert.not_before,
            not_after=cert.not_after,
            issuer=ctx.ports.crypto.issuer(cert.certificate_pem),
            key_origin=(
                "injected"
                if recipe.attestation is ProductAttestation.X509_INJECTED
                else "secure-element"
            ),
        )
    return IdentityManifest(
        registration_id=run.registration_id,
        device_id=recipe.device_id_for(
            registration_id=run.registration_id, serial=hello.serial, model=hello.model
        ),
        attestation=_ATTESTATION[recipe.attestation],
        board=BoardInfo(
            serial=hello.serial,
            model=hello.model,
            hardware_revision=hello.hardware,
            firmware_version=hello.firmware,
        ),
        product=recipe.name,
        batch=run.request.batch,
        dps=DpsTarget(global_endpoint=recipe.dps.global_endpoint, id_scope=recipe.dps.id_scope),
        station=ctx.station,
        operator=ctx.operator,
        provisioned_at=format_time(ctx.clock.now()),
        tpm=evidence.tpm,
        x509=x509,
        symmetric_key=evidence.symmetric,
        operational_certificate=run.operational,
    )
