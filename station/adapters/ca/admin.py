"""The CA's files and key custody: ``ca init``, ``ca import``, ``ca status`` and the lab root.

Layout under the CA directory (``<data_dir>/ca`` by default):

* ``key.uri``: the key URI recorded by ``ca init`` (used when ``[ca] key_uri`` is empty);
* ``intermediate.csr``: the CSR for the offline root;
* ``chain.pem`` / ``root.pem``: the installed intermediate(s) and root (``[ca] chain_file`` /
  ``root_file`` override the paths).
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import hsm
from hsm.uri import Pkcs11Uri, format_pkcs11_uri, parse_key_uri
from station.adapters.ca.authority import X509Authority
from station.adapters.ca.builder import ca_certificate, name_of, signed_certificate
from station.adapters.ca.keys import describe, generate, open_signer, translate
from station.adapters.ca.x509_facts import (
    certificate_facts,
    csr_facts,
    load_certificates,
    load_csr,
    spki,
)
from station.domain.certificates import (
    LAB_ROOT_MARK,
    CertificateFacts,
    ChainFacts,
    CsrFacts,
    IssuancePlan,
    KeyDescription,
    OwnRootFacts,
    SignedCertificate,
)
from station.domain.errors import CaError, CaNotReadyError

LAB_ROOT_LABEL = "station-lab-root"
LAB_ROOT_SUBJECT = (("CN", f"Station Lab Root CA - {LAB_ROOT_MARK}"), ("O", "station lab"))


class FileCaAdministration:
    """Implements :class:`station.ports.CaAdministration` with files in one directory.

    Args:
        ca_dir: where the CA's files live.
        configured_uri: ``[ca] key_uri`` (wins over the URI recorded by ``ca init``).
        pin_source: where the key's PIN comes from.
        chain_file: ``[ca] chain_file`` (default ``<ca_dir>/chain.pem``).
        root_file: ``[ca] root_file`` (default ``<ca_dir>/root.pem``).
    """

    def __init__(
        self,
        ca_dir: Path,
        *,
        configured_uri: str,
        pin_source: hsm.PinSource,
        chain_file: Path | None = None,
        root_file: Path | None = None,
        manifest_key_uri: str = "",
        manifest_chain_file: Path | None = None,
    ) -> None:
        self._dir = ca_dir
        self._configured = configured_uri
        self._pins = pin_source
        self.chain_file = chain_file or ca_dir / "chain.pem"
        self.root_file = root_file or ca_dir / "root.pem"
        self._uri_file = ca_dir / "key.uri"
        self._csr_file = ca_dir / "intermediate.csr"
        self._manifest_uri = manifest_key_uri
        self._manifest_chain = manifest_chain_file

    # ------------------------------------------------------------------ key
    def key_uri(self) -> str:
        """``[ca] key_uri``, else the URI ``ca init`` recorded, else empty."""
        if self._configured:
            return self._configured
        try:
            return self._uri_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return ""

    def generate_key(self, uri: str, algorithm: str) -> KeyDescription:
        """Generate the key in its token and record its URI."""
        signer = generate(uri, algorithm, self._pins)
        try:
            final_uri = _with_id(uri, signer)
            description = describe(final_uri, signer)
        finally:
            signer.close()
        _write(self._uri_file, final_uri + "\n", mode=0o644)
        return description

    def describe_key(self, uri: str) -> KeyDescription:
        """Open the key and describe it."""
        signer = open_signer(uri, self._pins)
        try:
            try:
                return describe(uri, signer)
            except hsm.HsmError as exc:
                raise translate(exc) from exc
        finally:
            signer.close()

    def make_csr(self, uri: str, subject: tuple[tuple[str, str], ...]) -> str:
        """Write the intermediate's CSR (signed in the token) and return it."""
        signer = open_signer(uri, self._pins)
        try:
            csr = x509.CertificateSigningRequestBuilder().subject_name(name_of(subject))
            try:
                signed = csr.sign(signer, hashes.SHA256())
            except hsm.HsmError as exc:
                raise translate(exc) from exc
        finally:
            signer.close()
        pem = signed.public_bytes(serialization.Encoding.PEM).decode("ascii")
        _write(self._csr_file, pem, mode=0o644)
        return pem

    def pending_csr(self) -> str:
        """The CSR ``ca init`` wrote, or empty."""
        try:
            return self._csr_file.read_text(encoding="ascii")
        except FileNotFoundError:
            return ""

    # ------------------------------------------------------------------ chain
    def inspect_chain(self, chain_pem: bytes, root_pem: bytes, uri: str) -> ChainFacts:
        """Read the chain and the root, compare with the key, verify every signature."""
        chain = load_certificates(chain_pem, what="certificate chain")
        root = load_certificates(root_pem, what="root certificate")[0]
        chain = [cert for cert in chain if cert != root]
        if not chain:
            raise CaError(
                "the chain file holds only the root, not the station's intermediate",
                remedy="Pass the certificate the root issued for the station's CSR.",
            )
        signer = open_signer(uri, self._pins)
        try:
            matches = spki(chain[0]) == spki(signer.public_key())
        finally:
            signer.close()
        problem = ""
        for cert, issuer in zip([*chain, root], [*chain[1:], root, root], strict=True):
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature) as exc:
                problem = (
                    f"{cert.subject.rfc4514_string()} is not signed by "
                    f"{issuer.subject.rfc4514_string()} ({exc or type(exc).__name__})"
                )
                break
        return ChainFacts(
            intermediate=certificate_facts(chain[0]),
            root=certificate_facts(root),
            others=tuple(certificate_facts(cert) for cert in chain[1:]),
            matches_key=matches,
            chain_verified=not problem,
            problem=problem,
        )

    def install_chain(self, chain_pem: bytes, root_pem: bytes) -> Path:
        """Store the chain (without the root) and the root."""
        root = load_certificates(root_pem, what="root certificate")[0]
        chain = [c for c in load_certificates(chain_pem, what="certificate chain") if c != root]
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
        _write(self.root_file, root.public_bytes(serialization.Encoding.PEM).decode(), mode=0o644)
        _write(self.chain_file, pem.decode("ascii"), mode=0o644)
        return self.chain_file

    def installed_certificate(self) -> CertificateFacts | None:
        """The installed intermediate, if any."""
        if not self.chain_file.exists():
            return None
        data = self.chain_file.read_bytes()
        return certificate_facts(load_certificates(data, what="installed chain")[0])

    def installed_chain(self) -> tuple[CertificateFacts, ...]:
        """The installed intermediate(s), then the root (empty when no chain is installed)."""
        if not self.chain_file.exists():
            return ()
        chain = load_certificates(self.chain_file.read_bytes(), what="installed chain")
        if self.root_file.exists():
            chain += load_certificates(self.root_file.read_bytes(), what="root certificate")
        return tuple(certificate_facts(cert) for cert in chain)

    def open_authority(self) -> X509Authority:
        """Open the signing CA: the key in its token and the installed chain.

        Raises:
            CaNotReadyError: no key URI or no installed chain.
            KeyCustodyError: the token refused.
        """
        uri = self.key_uri()
        if not uri:
            raise CaNotReadyError(
                "the station has no CA key",
                remedy="Run 'station ca init --key URI' (or set [ca] key_uri).",
            )
        if not self.chain_file.exists():
            raise CaNotReadyError(
                "the station's CA certificate has not been imported",
                remedy="Take the CSR to the root, then run 'station ca import CHAIN.pem'.",
                chain_file=str(self.chain_file),
            )
        chain = load_certificates(self.chain_file.read_bytes(), what="installed chain")
        return X509Authority(open_signer(uri, self._pins), chain)

    def import_group_key(self, uri: str, key: bytes) -> KeyDescription:
        """Import the group key, then open it to report where it lives."""
        try:
            hsm.import_group_key(uri, key, pin_source=self._pins)
            group = hsm.open_group_key(uri, pin_source=self._pins)
            try:
                custody = group.custody()
            finally:
                group.close()
        except hsm.HsmError as exc:
            raise translate(exc) from exc
        return KeyDescription(
            uri=uri,
            backend=custody.backend,
            location=custody.location,
            algorithm=custody.algorithm,
            sensitive=custody.sensitive,
            extractable=custody.extractable,
            generated_on_device=custody.generated_on_device,
            development_only=custody.development_only,
            public_key_sha256="",
        )

    # ------------------------------------------------------------------ manifest key
    def manifest_key_public(self) -> bytes:
        """The batch-manifest key's public key (SPKI DER), generated in its token if missing.

        Raises:
            CaNotReadyError: ``[dps] manifest_key_uri`` or ``manifest_chain_file`` is not set.
            CaError: the key there is not P-256.
            KeyCustodyError: the token refused.
        """
        if not self._manifest_uri or self._manifest_chain is None:
            raise CaNotReadyError(
                "no batch-manifest signing key is configured",
                remedy="Set [dps] manifest_key_uri and [dps] manifest_chain_file.",
            )
        try:
            signer = hsm.open_signer(self._manifest_uri, pin_source=self._pins)
        except hsm.KeyNotFoundError:
            signer = generate(self._manifest_uri, "ec-p256", self._pins)
        except hsm.HsmError as exc:
            raise translate(exc) from exc
        try:
            public = signer.public_key()
        finally:
            signer.close()
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
            raise CaError(
                "the manifest key must be an EC P-256 key (ES256)",
                remedy="Point [dps] manifest_key_uri at a P-256 key, or at a free label.",
                uri=self._manifest_uri,
            )
        return spki(public)

    def install_manifest_chain(self, chain_pem: str) -> Path:
        """Write the manifest key's chain (its certificate first) to ``[dps] manifest_chain_file``.

        Raises:
            CaNotReadyError: no chain file is configured.
        """
        if self._manifest_chain is None:
            raise CaNotReadyError(
                "no batch-manifest chain file is configured",
                remedy="Set [dps] manifest_chain_file.",
            )
        _write(self._manifest_chain, chain_pem, mode=0o644)
        return self._manifest_chain

    # ------------------------------------------------------------------ bring your own root
    def inspect_own_root(self, root_pem: bytes, key_uri: str) -> OwnRootFacts:
        """Read the root certificate and check it belongs to the root key at ``key_uri``."""
        root = load_certificates(root_pem, what="root certificate")[0]
        signer = open_signer(key_uri, self._pins)
        try:
            matches = spki(signer.public_key()) == spki(root)
        finally:
            signer.close()
        public = root.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            key_type = "ec"
        else:
            key_type = "rsa" if isinstance(public, rsa.RSAPublicKey) else "other"
        return OwnRootFacts(certificate_facts(root), key_type, matches)

    def inspect_issuing_csr(self, csr_pem: bytes) -> CsrFacts:
        """Parse the issuing-CA CSR Azure Device Registry generated (PEM or DER)."""
        return csr_facts(load_csr(csr_pem))

    def sign_issuing_ca(
        self, csr_pem: bytes, plan: IssuancePlan, *, root_pem: bytes, key_uri: str
    ) -> SignedCertificate:
        """Sign the issuing-CA CSR with the root key: a CA certificate with path length 0."""
        root = load_certificates(root_pem, what="root certificate")[0]
        csr = load_csr(csr_pem)
        signer = open_signer(key_uri, self._pins)
        try:
            cert = ca_certificate(
                subject=name_of(plan.subject),
                public_key=csr.public_key(),
                issuer=root,
                signer=signer,
                serial=plan.serial_number,
                not_before=plan.not_before,
                not_after=plan.not_after,
                path_length=0,
            )
        finally:
            signer.close()
        return signed_certificate(cert)

    def root_pem(self) -> bytes:
        """The installed root certificate (``[ca] root_file``); empty when there is none."""
        return self.root_file.read_bytes() if self.root_file.is_file() else b""

    # ------------------------------------------------------------------ lab
    def lab_root_sign(self, csr_pem: str, *, now: datetime) -> tuple[bytes, bytes]:
        """Sign ``csr_pem`` with a throwaway root whose key sits in the CA key's SoftHSM2 token.

        The root key is labelled ``station-lab-root`` in the same token (SoftHSM2 only sees
        tokens that existed when it was loaded, and a lab needs no second token).
        """
        try:
            ca_uri = parse_key_uri(self.key_uri())
        except hsm.HsmError as exc:
            raise translate(exc) from exc
        if not isinstance(ca_uri, Pkcs11Uri):
            raise CaError(
                "the lab root lives in SoftHSM2 and needs a pkcs11: CA key",
                remedy="Run 'station ca init --key pkcs11:token=...;object=...' for the lab.",
            )
        root_uri = format_pkcs11_uri(
            Pkcs11Uri(
                token=ca_uri.token,
                serial=ca_uri.serial,
                object=LAB_ROOT_LABEL,
                module_path=ca_uri.module_path,
                pin_source=ca_uri.pin_source,
            )
        )
        try:
            root_key = hsm.open_signer(root_uri, pin_source=self._pins)
        except hsm.KeyNotFoundError:
            root_key = generate(root_uri, "ec-p256", self._pins)
        except hsm.HsmError as exc:
            raise translate(exc) from exc
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
            start = now - timedelta(minutes=5)
            root = ca_certificate(
                subject=name_of(LAB_ROOT_SUBJECT),
                public_key=root_key.public_key(),
                issuer=None,
                signer=root_key,
                serial=_serial(),
                not_before=start,
                not_after=now + timedelta(days=3650),
                path_length=1,  # root -> one CA below; what DPS certificate management takes
            )
            intermediate = ca_certificate(
                subject=csr.subject,
                public_key=csr.public_key(),
                issuer=root,
                signer=root_key,
                serial=_serial(),
                not_before=start,
                not_after=now + timedelta(days=5 * 365),
                path_length=0,
            )
        finally:
            root_key.close()
        pem = serialization.Encoding.PEM
        return intermediate.public_bytes(pem), root.public_bytes(pem)


def _serial() -> int:
    return secrets.randbits(127) | (1 << 120)


def _with_id(uri: str, signer: hsm.Signer) -> str:
    """Pin the generated key's id into a pkcs11: URI so it names exactly that key."""
    parsed = parse_key_uri(uri)
    if not isinstance(parsed, Pkcs11Uri) or parsed.id:
        return uri
    key_id = getattr(signer, "key_id", b"")
    if not key_id:
        return uri
    return format_pkcs11_uri(
        Pkcs11Uri(**{**{f: getattr(parsed, f) for f in parsed.__dataclass_fields__}, "id": key_id})
    )


def _write(path: Path, text: str, *, mode: int) -> None:
    """Write atomically: a crash leaves either the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
