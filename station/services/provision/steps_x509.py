"""The X.509 flows' steps: a device key, its CSR, the certificate, the chain, proof of possession.

Two flows share them: the secure-element flow (the key is made on the board) and the
injected-key flow (the key is made in station memory, written to the board and wiped). A
certificate of a resumed job that is already on the board is kept: its steps pass as "kept".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from station.domain.certificates import SubjectContext
from station.domain.errors import (
    DuplicateIdentityError,
    ProofOfPossessionError,
    ReadbackMismatchError,
)
from station.domain.records import CertificateRecord
from station.ports import InjectedKey
from station.services.provision.context import StepContext
from station.services.provision.model import Evidence

_NONCE_BYTES = 32


@dataclass
class X509State:
    """What an X.509 flow builds: the CSR, the certificate and its chain, the device-key index."""

    kept: CertificateRecord | None  # a certificate of the resumed job that is on the board
    csr: bytes = b""
    certificate: CertificateRecord | None = None
    chain_pem: str = ""
    injected: InjectedKey | None = None  # injected-key flow: wiped once written
    spki_sha256: str = ""

    def issued(self) -> CertificateRecord:
        """The certificate issued (or kept) by the issue step."""
        if self.certificate is None:
            raise RuntimeError("an X.509 step ran before the certificate was issued")
        return self.certificate

    def evidence(self) -> Evidence:
        """The certificate and the device-key index entry for the manifest."""
        return Evidence(certificate=self.issued(), spki_sha256=self.spki_sha256)

    def close(self) -> None:
        """Wipe an injected key that is still held (the station keeps no copy of a device key)."""
        if self.injected is not None:
            self.injected.wipe()
            self.injected = None


def start(ctx: StepContext) -> X509State:
    """A fresh X.509 state for one run (with the certificate a resumed job left on the board)."""
    return X509State(kept=ctx.run.kept)


def check_device_key(ctx: StepContext, spki_sha256: str) -> None:
    """Refuse a device key already recorded for another identity (a cloned secure element)."""
    owner = ctx.store.devices.key_owner(spki_sha256)
    if owner and owner != ctx.run.registration_id:
        raise DuplicateIdentityError(
            f"this board's device key is already recorded for {owner}: a cloned secure element",
            remedy="Set the board aside for QA.",
            registration_id=ctx.run.registration_id,
            other=owner,
        )


def keygen(ctx: StepContext, state: X509State) -> str:
    """Make a fresh key in the board's secure element."""
    if state.kept is not None:
        return "kept: the certificate is already on the board"
    # a fresh key for every new attempt: a key from an abandoned attempt is never reused
    public = ctx.link.keygen(replace=True)
    check_device_key(ctx, hashlib.sha256(public).hexdigest())
    return "P-256 key made in the secure element"


def csr_from_board(ctx: StepContext, state: X509State) -> str:
    """Have the board sign a CSR for its registration ID."""
    if state.kept is not None:
        return "kept"
    state.csr = ctx.link.csr(ctx.run.registration_id)
    return f"{len(state.csr)} bytes"


def csr_in_station(ctx: StepContext, state: X509State) -> str:
    """Make the device key in station memory and its CSR (injected-key flow)."""
    if state.kept is not None:
        return "kept"
    state.injected = ctx.ports.crypto.new_injected_key()
    state.csr = state.injected.csr_der(ctx.run.registration_id)
    return "key made in station memory"


def issue(ctx: StepContext, state: X509State) -> str:
    """Issue the device certificate from the CA in the HSM (or keep the one on the board)."""
    if state.kept is not None:
        state.certificate = state.kept
        return f"kept {state.kept.serial_number}"
    recipe, batch = ctx.board.recipe, ctx.run.request.batch
    issued = ctx.ports.ca().issue(
        state.csr,
        ctx.run.registration_id,
        profile=recipe.certificate_profile,
        batch=batch,
        job_id=ctx.job.id,
        context=SubjectContext(product=recipe.name, batch=batch),
        operator=ctx.operator,
    )
    serial = issued.certificate.serial_hex
    record = ctx.store.certificates.get(serial)
    assert record is not None  # the CA logged it before returning
    state.certificate = record
    state.chain_pem = issued.chain_pem
    ctx.note(certificate=serial)
    return f"certificate {serial}"


def write_key(ctx: StepContext, state: X509State) -> str:
    """Write the injected private key to the board."""
    if state.kept is not None:
        return "kept"
    if state.injected is None:
        raise RuntimeError("the write-key step ran before the key was made")
    generation = ctx.link.write("privkey", state.injected.private_key_der())
    return f"generation {generation}"


def write_chain(ctx: StepContext, state: X509State) -> str:
    """Write the certificate chain and read it back."""
    try:
        if state.kept is not None:
            return "kept: already on the board"
        wanted = ctx.ports.crypto.chain_der(state.issued().certificate_pem + state.chain_pem)
        ctx.link.write("cert_chain", wanted)
        back = ctx.link.read("cert_chain").data or b""
        if back != wanted:
            raise ReadbackMismatchError(
                "the certificate chain read back from the board differs from what was written",
                written=len(wanted),
                read=len(back),
            )
        return f"{len(wanted)} bytes, read back"
    finally:
        state.close()  # written or not, the station keeps no copy of a device key


def proof_of_possession(ctx: StepContext, state: X509State) -> str:
    """The board signs a station nonce; the signature must verify with its certificate."""
    certificate = state.issued()
    crypto = ctx.ports.crypto
    nonce = ctx.ports.random_bytes(_NONCE_BYTES)
    signature = ctx.link.sign(nonce)
    if not crypto.verify_possession(certificate.certificate_pem, nonce, signature):
        raise ProofOfPossessionError(
            "the board's signature over the station nonce does not verify with its certificate",
            certificate=certificate.serial_number,
        )
    spki = crypto.public_key_sha256(certificate.certificate_pem)
    check_device_key(ctx, spki)
    state.spki_sha256 = spki
    return "signature verified"
