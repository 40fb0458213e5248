"""The TPM flow's steps: read the endorsement key, check its certificate, the SRK, the residency.

The SRK comes before the residency proof because the proof's credential is bound to it: the TPM
then needs no throw-away object for the challenge (two TPM round trips less per board).

Each handler runs one :class:`~station.domain.provision_events.Step` and returns the short note
its ``StepPassed`` event carries; the runner persists and reports the step around it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, replace

from station.domain.errors import DuplicateIdentityError, WrongProductError
from station.domain.manifest import TpmIdentity
from station.domain.records import DeviceQuery
from station.domain.registration import tpm_registration_id
from station.domain.states import DeviceStatus
from station.ports import TpmIdentityReader
from station.services.provision.admission import check_registration_id
from station.services.provision.context import StepContext
from station.services.provision.model import Evidence
from station.services.tpm_identity import TpmIdentityService


@dataclass
class TpmState:
    """What the TPM flow learns about the board: its TPM session and its TPM identity."""

    ctx: StepContext
    reader: TpmIdentityReader | None = None
    identity: TpmIdentity | None = None
    service: TpmIdentityService | None = None

    def tpm(self) -> TpmIdentityReader:
        """The board's TPM, opened on first use."""
        if self.reader is None:
            if self.ctx.ports.tpm_reader is None:
                raise WrongProductError("this station has no TPM support configured")
            self.reader = self.ctx.ports.tpm_reader(self.ctx.link)
        return self.reader

    def trust(self) -> TpmIdentityService:
        """The station's EK-certificate trust, looked up once per run."""
        if self.service is None:
            if self.ctx.ports.tpm_identity is None:
                raise WrongProductError(
                    "this station has no EK-certificate trust anchors configured"
                )
            self.service = self.ctx.ports.tpm_identity()
        return self.service

    def known(self) -> TpmIdentity:
        """The TPM identity read by the endorsement-key step."""
        if self.identity is None:
            raise RuntimeError("a TPM step ran before the endorsement key was read")
        return self.identity

    def evidence(self) -> Evidence:
        """The TPM identity for the manifest."""
        return Evidence(tpm=self.known())

    def close(self) -> None:
        """Close the TPM session (once the flow ends, passed or not)."""
        if self.reader is not None:
            self.reader.close()
            self.reader = None


def start(ctx: StepContext) -> TpmState:
    """A fresh TPM state for one run."""
    return TpmState(ctx)


def endorsement_key(ctx: StepContext, state: TpmState) -> str:
    """Read (or create) the EK; refuse a cloned TPM; the EK forms the registration ID."""
    recipe, serial = ctx.board.recipe, ctx.board.hello.serial
    key = state.tpm().read_endorsement_key(
        template=recipe.ek_template, create_if_absent=recipe.create_ek_if_absent
    )
    ek_sha = hashlib.sha256(key.public).hexdigest()
    registration_id = tpm_registration_id(key.public)
    clones = [
        d
        for d in ctx.store.devices.find(DeviceQuery(ek_sha256=ek_sha, limit=5))
        if d.status != DeviceStatus.VOIDED and d.serial != serial
    ]
    if clones:
        other = clones[0]
        raise DuplicateIdentityError(
            f"this board's TPM endorsement key is already provisioned on "
            f"{other.created_at[:10]} in batch {other.batch} for board {other.serial}: "
            "a cloned TPM",
            remedy="Set the board aside for QA: two boards must never share a TPM.",
            serial=serial,
            other_serial=other.serial,
            batch=other.batch,
        )
    check_registration_id(ctx.store, ctx.jobs, registration_id, serial)
    ctx.run.registration_id = registration_id
    state.identity = TpmIdentity(
        endorsement_key=base64.b64encode(key.public).decode("ascii"),
        ek_sha256=ek_sha,
        ek_origin=str(key.origin),
    )
    ctx.note(registration_id=registration_id, ek_sha256=ek_sha)
    return f"EK {ek_sha[:12]} ({key.origin})"


def endorsement_certificate(ctx: StepContext, state: TpmState) -> str:
    """Find the best EK certificate and admit it under the recipe's trust policy."""
    recipe, identity = ctx.board.recipe, state.known()
    trust = state.trust()
    check = trust.best_certificate(
        state.tpm(),
        recipe.ek_template,
        base64.b64decode(identity.endorsement_key),
        evidence=recipe.evidence_eks,
    )
    trust.admit_certificate(check, recipe, registration_id=ctx.run.registration_id)
    state.identity = replace(
        identity, ek_certificate_status=str(check.status), ek_certificate_vendor=check.vendor
    )
    return check.summary()


def residency(ctx: StepContext, state: TpmState) -> str:
    """Prove the EK lives in this TPM (credential activation)."""
    state.trust().require_residency(
        state.tpm(),
        base64.b64decode(state.known().endorsement_key),
        registration_id=ctx.run.registration_id,
    )
    return "credential activated"


def storage_root_key(ctx: StepContext, state: TpmState) -> str:
    """Make sure the SRK is persisted and record its public part."""
    srk = state.tpm().ensure_storage_root_key()
    state.identity = replace(state.known(), storage_root_key=base64.b64encode(srk).decode("ascii"))
    return "SRK at 0x81000001"
