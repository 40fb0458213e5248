"""Ports: the boundaries between the station's services and the outside world.

Each port is a small :class:`typing.Protocol`. Services depend only on these; adapters implement
them (``station.adapters``), fakes implement them for fast tests, and ``station.bootstrap`` is the
one place that decides which implementation a running station gets.

Lifecycle rules shared by every port: an object is created by bootstrap, used from exactly one
thread (the slot worker, a CLI command, a one-shot job) and closed by whoever created it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from station.domain.audit import AuditEvent, EventDraft
from station.domain.boards import DiscoveredBoard, SlotEvent
from station.domain.certificates import (
    CertificateFacts,
    ChainFacts,
    CsrFacts,
    IssuancePlan,
    KeyDescription,
    OwnRootFacts,
    SignedCertificate,
)
from station.domain.enrollments import EnrollmentTemplate
from station.domain.fleet import (
    Ack,
    BatchIssuance,
    ClaimVerdict,
    FleetAlarm,
    FleetDevice,
    FleetIdentity,
    FleetQuery,
    IngestBatch,
    LedgerProblem,
    OutboxStatus,
    StationSummary,
)
from station.domain.labels.model import LabelData, LabelTemplate
from station.domain.labels.reports import BatchReport, PrintReceipt
from station.domain.manifest_signing import TrustedSigner
from station.domain.products import CredentialPolicyRef, ProductRecipe
from station.domain.prompts import OperatorQuestion
from station.domain.pushes import BulkItemError, OutboxEntry, PushState
from station.domain.records import (
    BatchCounts,
    BatchRecord,
    CertificateRecord,
    CrossChecked,
    DeviceQuery,
    DeviceRecord,
    JobRecord,
    LabelRecord,
    OperatorRecord,
    SchemaStatus,
    SealRecord,
    StoredManifest,
)
from station.domain.tpm import (
    EkCertificateCheck,
    EndorsementKey,
    TrustEntry,
    TrustImportReport,
    TrustSkip,
    WantedIssuer,
)
from station.protocol.ops import BoardInfo, ObjectState

#: what a task run elsewhere returns (:meth:`UnitOfWork.in_background`)
T = TypeVar("T")


class BoardLink(Protocol):
    """A protocol session with one board (docs/board-protocol.md); one thread, one board."""

    @property
    def port(self) -> str:
        """The port (device path or URL) the session talks over."""
        ...

    def hello(self) -> BoardInfo:
        """Handshake: who the board is, what it can do, whether it is locked."""
        ...

    def tpm(self, command: bytes) -> bytes:
        """Raw TPM 2.0 command in, raw response out."""
        ...

    def keygen(self, *, replace: bool = False, key: str = "device", curve: str = "p256") -> bytes:
        """Generate a key (slot ``key``, ``curve``) inside the board; return its DER SPKI."""
        ...

    def csr(self, common_name: str, *, key: str = "device") -> bytes:
        """A CSR (DER) signed inside the board by the key in slot ``key``."""
        ...

    def sign(self, nonce: bytes) -> bytes:
        """The board's ECDSA-SHA256 signature (DER) over ``nonce`` with its device key."""
        ...

    def write(self, name: str, data: bytes) -> int:
        """Write a named object; return its generation (applied writes so far)."""
        ...

    def read(self, name: str) -> ObjectState:
        """Read a named object (secret objects give their SHA-256 only)."""
        ...

    def lock(self) -> None:
        """Leave manufacturing mode."""
        ...

    def reset(self, *, factory: bool = False) -> None:
        """Restart the firmware; ``factory`` also erases objects and keys (unlocked only)."""
        ...

    def close(self) -> None:
        """Release the port."""
        ...


class BoardFinder(Protocol):
    """Discovery of board ports, slot binding by USB port path, hot-plug polling."""

    def boards(self) -> list[DiscoveredBoard]:
        """Every board port now present, with its slot if bound."""
        ...

    def board_in(self, slot: str) -> DiscoveredBoard:
        """The board now plugged into ``slot`` (raises BoardNotFoundError otherwise)."""
        ...

    def bind_plugged(self, slot: str, location: str | None = None) -> DiscoveredBoard:
        """Bind ``slot`` to the one unbound board plugged in (or to ``location``)."""
        ...


class BoardWatcher(Protocol):
    """Hot-plug detection: what arrived in or left which slot since the last look."""

    def poll(self) -> list[SlotEvent]:
        """Look once; return the arrivals and removals since the previous call."""
        ...


class OperatorPrompt(Protocol):
    """Asks the operator a question in the middle of a run (OpenHTF's prompts).

    Called on the slot's worker thread, which waits for the answer; the CLI answers at the
    terminal, the GUI on the slot's tile (:mod:`station.services.prompts` carries a question to
    the thread that can show it). The caller checks the answer and may ask again with
    ``question.problem`` saying what was wrong with the last one.
    """

    def ask(self, question: OperatorQuestion) -> str:
        """The operator's answer to ``question``.

        Raises:
            PromptDeclinedError: nobody can answer (not interactive, input closed, board pulled).
            ProvisionCancelledError: the run was stopped while it waited.
        """
        ...


class Clock(Protocol):
    """Where the station gets the time from (injected so tests and golden files are stable)."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class ProductCatalog(Protocol):
    """Where product recipes come from (``templates/products`` through an adapter)."""

    def product_names(self) -> list[str]:
        """Names of the known products."""
        ...

    def product(self, name: str) -> ProductRecipe:
        """Load and validate one recipe; raises NotFoundError or a validation error."""
        ...

    def enrollment_template(self, name: str) -> EnrollmentTemplate:
        """Load and validate one enrollment template; raises NotFoundError or ValidationError."""
        ...

    def credential_policy(self, name: str) -> CredentialPolicyRef:
        """A DPS credential policy the admin listed; raises NotFoundError for another name."""
        ...


class AuditLog(Protocol):
    """The hash-chained audit log (append-only)."""

    def append(self, draft: EventDraft) -> AuditEvent:
        """Chain and store one audit event; returns the stored event with its hash."""
        ...

    def events(self, *, after_seq: int = 0) -> Iterator[AuditEvent]:
        """Iterate audit events in chain order."""
        ...

    def event(self, seq: int) -> AuditEvent | None:
        """Return one event by sequence number."""
        ...

    def events_for(self, subject: str) -> list[AuditEvent]:
        """Return the events about one subject (registration ID, batch, ...), oldest first."""
        ...

    def events_at(self, seqs: Sequence[int]) -> dict[int, AuditEvent]:
        """Return the events with these sequence numbers (missing ones are left out)."""
        ...

    def head(self) -> tuple[int, str] | None:
        """Return the (seq, hash) the store recorded as the chain head, if any."""
        ...


class DeviceRepository(Protocol):
    """Recorded identities (one row per registration ID) and the secure-element key index."""

    def save(self, record: DeviceRecord) -> None:
        """Insert or replace a device row (its manifest, hash and index columns)."""
        ...

    def get(self, registration_id: str) -> DeviceRecord | None:
        """Return the device with this registration ID (any case), if recorded."""
        ...

    def find(self, query: DeviceQuery) -> list[DeviceRecord]:
        """Return the devices matching ``query`` (bounded by ``query.limit``)."""
        ...

    def count(self, query: DeviceQuery) -> int:
        """Count the devices matching ``query`` (ignoring limit and offset)."""
        ...

    def iter_all(self) -> Iterator[DeviceRecord]:
        """Iterate every device row as stored, in id order."""
        ...

    def iter_batch(self, batch: str, status: str) -> Iterator[DeviceRecord]:
        """Iterate the devices of one batch in one status, in recording (id) order."""
        ...

    def iter_cross_checked(self) -> Iterator[CrossChecked]:
        """Every device row in id order, each with whether the store found it consistent.

        A row the store doubts (or did not look at) is checked in full by ``station db
        verify``, through :meth:`by_id`.
        """
        ...

    def by_id(self, row_id: int) -> DeviceRecord | None:
        """The device row with this row id, exactly as stored."""
        ...

    def iter_manifests(self, batch: str, status: str) -> Iterator[StoredManifest]:
        """Like :meth:`iter_batch`, only the stored manifests (what an export reads)."""
        ...

    def key_owner(self, spki_sha256: str) -> str | None:
        """The registration ID that claimed a secure-element public key (clone index)."""
        ...

    def claim_key(self, spki_sha256: str, registration_id: str) -> None:
        """Record that ``registration_id`` owns the secure-element key ``spki_sha256``."""
        ...

    def iter_keys(self) -> Iterator[tuple[str, str]]:
        """Every clone-index entry as ``(spki_sha256, registration ID)``, by key."""
        ...


class CertificateRepository(Protocol):
    """The issuance log: every certificate the station's CA signed."""

    def save(self, record: CertificateRecord) -> None:
        """Insert or update one issuance-log entry."""
        ...

    def get(self, serial_number: str) -> CertificateRecord | None:
        """Return the issuance-log entry for a certificate serial number (hex, any case)."""
        ...

    def count(self, *, batch: str = "", status: str = "") -> int:
        """Count issuance-log entries, optionally for one batch and/or one status."""
        ...

    def for_device(self, registration_id: str) -> list[CertificateRecord]:
        """Return every issuance-log entry for one registration ID, oldest first."""
        ...

    def iter_all(self) -> Iterator[CertificateRecord]:
        """Iterate the issuance log in order."""
        ...


class JobRepository(Protocol):
    """Provisioning jobs (one per board run, resumable)."""

    def save(self, record: JobRecord) -> JobRecord:
        """Insert (``id is None``) or update a job; returns it with its id."""
        ...

    def get(self, job_id: int) -> JobRecord | None:
        """Return one job."""
        ...

    def open(self) -> list[JobRecord]:
        """Return provisioning jobs that have not reached a final state, oldest first."""
        ...

    def iter_all(self) -> Iterator[JobRecord]:
        """Every provisioning job, oldest first."""
        ...


class BatchRepository(Protocol):
    """Batches (work orders) and the seals that froze them."""

    def save(self, record: BatchRecord) -> BatchRecord:
        """Insert or update a batch (by name); returns it with its id."""
        ...

    def get(self, name: str) -> BatchRecord | None:
        """Return the batch called ``name``."""
        ...

    def all(self) -> list[BatchRecord]:
        """Return every batch, newest first."""
        ...

    def seal(self, name: str) -> SealRecord | None:
        """Return the seal of batch ``name``, if it was sealed."""
        ...

    def save_seal(self, seal: SealRecord) -> None:
        """Store the seal of a batch (once: a batch is sealed once)."""
        ...

    def iter_seals(self) -> Iterator[SealRecord]:
        """Every stored seal, by batch name."""
        ...

    def counts(self, name: str) -> BatchCounts:
        """Batch ``name``'s provisioned devices and logged certificates, without counting rows.

        Kept in the same transaction as every device and certificate write (zeros for a batch
        with none).
        """
        ...

    def iter_counts(self) -> Iterator[BatchCounts]:
        """Every batch's kept counts, by batch name (for ``db verify``)."""
        ...

    def recount(self) -> Iterator[BatchCounts]:
        """Every batch's counts as its rows say now, by batch name (for ``db verify``)."""
        ...


class OperatorRepository(Protocol):
    """The people who may use the station, with their role and credential hashes."""

    def get(self, name: str) -> OperatorRecord | None:
        """Return the operator called ``name``."""
        ...

    def all(self) -> list[OperatorRecord]:
        """Return every operator, by name."""
        ...

    def save(self, record: OperatorRecord) -> OperatorRecord:
        """Insert or update an operator (by name); returns it with its id."""
        ...

    def pin_failures(self, name: str) -> int:
        """Wrong PINs in a row for operator ``name`` (0 when none)."""
        ...

    def save_pin_failures(self, name: str, failures: int) -> None:
        """Set the count of wrong PINs in a row (0 clears it)."""
        ...

    def iter_pin_failures(self) -> list[tuple[str, int]]:
        """Every (operator, wrong PINs in a row) with a count, by operator."""
        ...


class LabelRepository(Protocol):
    """The print log."""

    def save(self, record: LabelRecord) -> LabelRecord:
        """Append one print-log entry; returns it with its id."""
        ...

    def for_device(self, registration_id: str) -> list[LabelRecord]:
        """Return the print log of one device, oldest first."""
        ...

    def iter_all(self) -> Iterator[LabelRecord]:
        """The whole print log, oldest first."""
        ...


class PushRepository(Protocol):
    """The DPS outbox rows as stored (what ``db verify`` cross-checks)."""

    def iter_all(self) -> Iterator[tuple[str, str, str]]:
        """Every outbox row as ``(batch, registration ID, state)``, in order."""
        ...


class SettingsRepository(Protocol):
    """Station-wide configuration kept in the database (never a secret, never data)."""

    def get(self, key: str) -> str | None:
        """Return a setting, if set."""
        ...

    def save(self, key: str, value: str) -> None:
        """Store a setting."""
        ...

    def with_prefix(self, prefix: str) -> list[tuple[str, str]]:
        """Every setting whose key starts with ``prefix``, by key."""
        ...


class StoreMaintenance(Protocol):
    """The database file itself: schema, backups, rows that cannot be read."""

    def schema_status(self) -> SchemaStatus:
        """Report applied, pending and unknown (newer) migrations."""
        ...

    def migrate(self, *, backup_dir: Path) -> Path | None:
        """Apply pending migrations, backing up first; returns the backup file, if one was made."""
        ...

    def backup(self, target: Path, *, force: bool = False) -> None:
        """Write an online, consistent copy of the database to ``target`` (owner-only).

        Never over the database itself; an existing ``target`` only with ``force``.
        """
        ...

    def damaged_rows(
        self, tables: Collection[str] | None = None, *, exclude: Collection[str] = ()
    ) -> list[tuple[str, str, str]]:
        """``(table, row, reason)`` for every row with a column the store cannot even read.

        Args:
            tables: scan only these tables (default: every table), in the store's order.
            exclude: leave these tables out.
        """
        ...


class UnitOfWork(Protocol):
    """The station database as repositories per aggregate under one transaction.

    ``with uow:`` opens one transaction (nested blocks are savepoints): either all rows and audit
    events of a use case are written, or none are. A repository call outside a block is its own
    transaction.
    """

    @property
    def audit(self) -> AuditLog:
        """The audit chain."""
        ...

    @property
    def devices(self) -> DeviceRepository:
        """Recorded identities and the clone index."""
        ...

    @property
    def certificates(self) -> CertificateRepository:
        """The issuance log."""
        ...

    @property
    def jobs(self) -> JobRepository:
        """Provisioning jobs."""
        ...

    @property
    def batches(self) -> BatchRepository:
        """Batches and their seals."""
        ...

    @property
    def operators(self) -> OperatorRepository:
        """Operators."""
        ...

    @property
    def labels(self) -> LabelRepository:
        """The print log."""
        ...

    @property
    def pushes(self) -> PushRepository:
        """The DPS outbox rows."""
        ...

    @property
    def settings(self) -> SettingsRepository:
        """Station-wide configuration."""
        ...

    @property
    def maintenance(self) -> StoreMaintenance:
        """Schema, backups and the row scan."""
        ...

    def in_background(self, task: Callable[[UnitOfWork], T]) -> Callable[[], T]:
        """Run the read-only ``task`` on a second unit of work of the same database.

        The store may run it in another process (then ``task`` and its result must pickle: a
        module-level function, with its arguments bound by ``functools.partial``) or, when that
        would not pay, when the returned function is called. Calling the returned function
        waits for the result (or raises what ``task`` raised).
        """
        ...

    def __enter__(self) -> UnitOfWork:
        """Begin a transaction, or a savepoint inside the one already open."""
        ...

    def durable(self) -> AbstractContextManager[UnitOfWork]:
        """One transaction (not nested) whose commit is on disk when the block ends.

        For a commit someone acts on at once, such as a PASS (the board leaves the line). Other
        commits are atomic and survive a crash of the station, but a power cut may lose the
        last of them; they are only ever redone (docs/performance.md, "C board agent").
        """
        ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        """Commit (release the savepoint), or roll back when the block raised."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class LabelTemplates(Protocol):
    """The label template library (each template proven to hold its data when loaded)."""

    def names(self) -> list[str]:
        """Names of the available templates."""
        ...

    def get(self, name: str) -> LabelTemplate:
        """Return one template (raises NotFoundError or LabelTemplateError)."""
        ...


class LabelPrinter(Protocol):
    """One printer: returns a receipt once the job was taken, else raises PrinterError."""

    @property
    def name(self) -> str:
        """The printer spec ("cups:QUEUE", "zpl://HOST:PORT", "file:PATH")."""
        ...

    def print_labels(
        self, template: LabelTemplate, labels: Sequence[LabelData], *, title: str
    ) -> PrintReceipt:
        """Print ``labels`` laid out by ``template``."""
        ...


class LabelPrinters(Protocol):
    """Opens the printer a spec names."""

    def printer(self, spec: str) -> LabelPrinter:
        """Return the printer for ``spec`` (raises UnknownPrinterError for a malformed spec)."""
        ...


class LabelRenderer(Protocol):
    """Draws labels and batch reports (PDF, and PNG previews for the GUI)."""

    def label_pdf(self, template: LabelTemplate, labels: Sequence[LabelData]) -> bytes:
        """Return the labels as PDF bytes."""
        ...

    def label_png(self, template: LabelTemplate, label: LabelData, *, dpi: int) -> bytes:
        """Return a PNG preview of one label (or of the first sheet)."""
        ...

    def report_pdf(self, report: BatchReport) -> bytes:
        """Return the batch report as PDF bytes."""
        ...


class CertificateAuthority(Protocol):
    """The station's intermediate CA, ready to sign: its key is open in the HSM/TPM.

    Reads CSRs into facts and turns issuance plans into signed certificates. It decides nothing:
    the policy is in :mod:`station.domain.certificates`, the use cases in ``services.ca``.
    """

    def inspect_csr(self, data: bytes) -> CsrFacts:
        """Parse a PEM or DER CSR (raises ``CsrRejectedError(reason="malformed")``)."""
        ...

    def sign(self, plan: IssuancePlan, public_key_der: bytes) -> SignedCertificate:
        """Build the certificate ``plan`` describes for ``public_key_der`` and sign it."""
        ...

    def certificate(self) -> CertificateFacts:
        """The intermediate certificate the CA signs with."""
        ...

    def chain_pem(self) -> str:
        """The intermediate(s), PEM, leaf-side first: what a device sends after its own cert."""
        ...

    def close(self) -> None:
        """Close the key's session."""
        ...


class CaAdministration(Protocol):
    """Key custody and the CA's files: generate the key, write its CSR, check and install chains."""

    def key_uri(self) -> str:
        """The CA key's URI (configured, else recorded by ``ca init``; empty if neither)."""
        ...

    def generate_key(self, uri: str, algorithm: str) -> KeyDescription:
        """Generate the CA key inside the token/TPM the URI names and record the URI."""
        ...

    def describe_key(self, uri: str) -> KeyDescription:
        """Open the key and describe where it lives."""
        ...

    def make_csr(self, uri: str, subject: tuple[tuple[str, str], ...]) -> str:
        """Write (and return) the intermediate's CSR, PEM, signed by the key ``uri`` names."""
        ...

    def pending_csr(self) -> str:
        """The CSR written by the last ``ca init`` (empty if none)."""
        ...

    def inspect_chain(self, chain_pem: bytes, root_pem: bytes, uri: str) -> ChainFacts:
        """Read an intermediate (+ optional further intermediates) and check it against a root."""
        ...

    def install_chain(self, chain_pem: bytes, root_pem: bytes) -> Path:
        """Store the accepted chain and root where the CA loads them; returns the chain path."""
        ...

    def installed_certificate(self) -> CertificateFacts | None:
        """The installed intermediate, if any."""
        ...

    def installed_chain(self) -> tuple[CertificateFacts, ...]:
        """The installed chain from the intermediate up to the root (empty when none)."""
        ...

    def import_group_key(self, uri: str, key: bytes) -> KeyDescription:
        """Store a symmetric enrollment-group key as a non-extractable secret in the token/TPM."""
        ...

    def inspect_own_root(self, root_pem: bytes, key_uri: str) -> OwnRootFacts:
        """The root certificate's facts, and whether it is the key at ``key_uri``'s."""
        ...

    def inspect_issuing_csr(self, csr_pem: bytes) -> CsrFacts:
        """A cloud-generated issuing-CA CSR (PEM or DER); raises CsrRejectedError if not one."""
        ...

    def sign_issuing_ca(
        self, csr_pem: bytes, plan: IssuancePlan, *, root_pem: bytes, key_uri: str
    ) -> SignedCertificate:
        """Sign the issuing-CA CSR with the root key in the HSM (CA, path length 0)."""
        ...

    def root_pem(self) -> bytes:
        """The installed root certificate (``[ca] root_file``), or empty bytes."""
        ...

    def lab_root_sign(self, csr_pem: str, *, now: datetime) -> tuple[bytes, bytes]:
        """Create a throwaway lab root in SoftHSM2 and sign ``csr_pem`` as an intermediate.

        Returns the intermediate and root certificates (PEM).
        """
        ...

    def manifest_key_public(self) -> bytes:
        """The batch-manifest key's public key (SPKI DER), generated in its token if missing."""
        ...

    def install_manifest_chain(self, chain_pem: str) -> Path:
        """Write the manifest key's chain (its certificate first) where the station reads it."""
        ...


class EnrollmentService(Protocol):
    """The DPS service API (enrollment list), behind the official client.

    Every method is one billable DPS operation (a query is one per page). Errors are
    ``DpsThrottledError`` (429, with ``retry_after_s``), ``DpsTransientError`` (5xx, dropped
    connection), ``DpsCredentialsError`` (401) or ``EnrollmentServiceError``.
    """

    @property
    def operations(self) -> int:
        """Billable operations made through this object so far."""
        ...

    def bulk_create(self, enrollments: Sequence[Mapping[str, Any]]) -> list[BulkItemError]:
        """Create up to 10 individual enrollments in one call; return the refused items.

        A call whose enrollments name a credential policy goes under an api-version that
        defines ``credentialPolicyName`` (DPS may drop a field its api-version does not know).
        """
        ...

    def get(
        self, registration_id: str, *, credential_policy: bool = False
    ) -> dict[str, Any] | None:
        """DPS's enrollment for ``registration_id``, or ``None`` if there is none.

        ``credential_policy``: the enrollment is expected to name a credential policy, so it is
        read under an api-version that shows ``credentialPolicyName``.
        """
        ...

    def attestation_mechanism(self, registration_id: str) -> dict[str, Any] | None:
        """The enrollment's attestation with its symmetric keys, or ``None`` (404).

        GET and query never carry symmetric keys; this is where DPS shows them.
        """
        ...

    def query_page(
        self, continuation: str | None = None, *, credential_policy: bool = False
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of every individual enrollment (``SELECT *``), in an order not to rely on.

        Returns the page and the continuation for the next one (``None`` after the last). One
        operation per page, so a caller can pace pages within the rate limit and retry one.
        ``credential_policy``: read so the enrollments show their ``credentialPolicyName``.
        """
        ...

    def create_group(self, group: Mapping[str, Any]) -> dict[str, Any]:
        """Create an enrollment group; returns DPS's answer (409 when it exists).

        Like ``bulk_create``, a body naming a credential policy is sent under an api-version
        that defines ``credentialPolicyName``.
        """
        ...

    def group_attestation_mechanism(self, group_id: str) -> dict[str, Any] | None:
        """The enrollment group's attestation with the keys DPS generated, or ``None`` (404)."""
        ...

    def get_group(self, group_id: str, *, credential_policy: bool = False) -> dict[str, Any] | None:
        """DPS's enrollment group (no symmetric keys, as DPS shows it), or ``None`` (404).

        ``credential_policy``: read so the group shows its ``credentialPolicyName``.
        """
        ...

    def close(self) -> None:
        """Close the HTTP session."""
        ...


class PushOutbox(Protocol):
    """The per-device push outbox in the station database (survives a kill at any moment)."""

    def enqueue(self, batch: str, registration_ids: Iterable[str]) -> int:
        """Add ``pending`` rows for IDs not yet in the outbox; returns how many were added."""
        ...

    def take(
        self, batch: str, states: Sequence[PushState], limit: int, *, after_id: int = 0
    ) -> list[OutboxEntry]:
        """Up to ``limit`` entries of ``batch`` in ``states`` after ``after_id``, in order."""
        ...

    def mark(
        self,
        batch: str,
        registration_ids: Sequence[str],
        state: PushState,
        *,
        error: str = "",
        remote: str = "",
        attempt: bool = False,
    ) -> None:
        """Move entries to ``state`` (durably, before returning)."""
        ...

    def entries(self, batch: str) -> Iterator[OutboxEntry]:
        """Every entry of ``batch``, in outbox order."""
        ...

    def counts(self, batch: str) -> dict[str, int]:
        """Entries of ``batch`` per state."""
        ...


class ManifestSigner(Protocol):
    """The batch-manifest signing key (ES256, held in hsm/) and its certificate chain."""

    def sign(self, data: bytes) -> bytes:
        """The raw (r||s, 64 bytes) ES256 signature over ``data``."""
        ...

    def chain_der(self) -> list[bytes]:
        """The signing certificate first, then its intermediates (DER)."""
        ...

    def close(self) -> None:
        """Release the key."""
        ...


class ManifestTrust(Protocol):
    """Checks a manifest's certificate chain against a trusted root and verifies ES256."""

    def signer(self, chain_der: Sequence[bytes]) -> TrustedSigner:
        """The chain's leaf as a manifest signer (its ES256 check and the station it names).

        Raises:
            ValidationError: the chain does not lead to the trusted root or is not valid, or its
                leaf is not a manifest-signing certificate (or not the pinned one).
        """
        ...


class ExportSink(Protocol):
    """One export file while it is written."""

    def write(self, text: str) -> None:
        """Append ``text``."""
        ...

    def prepend(self, text: str) -> None:
        """Put ``text`` before everything written so far (a header known only at the end)."""
        ...


class ExportFiles(Protocol):
    """Where exports go: whole files, written atomically (a reader never sees half a file)."""

    def write(self, name: str, chunks: Iterable[str]) -> Path:
        """Write ``chunks`` (text) to the file ``name``; return its path."""
        ...

    def write_together(
        self, names: Sequence[str], produce: Callable[[Mapping[str, ExportSink]], None]
    ) -> dict[str, Path]:
        """Write several files in one pass: ``produce`` gets a sink per name.

        The files are kept only if ``produce`` returns; if it raises, none of them is.
        """
        ...


class GroupKeys(Protocol):
    """Derives symmetric device keys where the group key lives (hsm/); nothing is stored."""

    def derive(self, group_key_uri: str, registration_id: str) -> bytes:
        """HMAC-SHA256(group key, registration ID)."""
        ...

    def close(self) -> None:
        """Release every group key opened."""
        ...


class TpmIdentityReader(Protocol):
    """One board's TPM, reached through its board link (one per slot, on the slot's thread)."""

    def read_endorsement_key(self, *, template: str, create_if_absent: bool) -> EndorsementKey:
        """The EK of ``template`` at its persistent handle (0x81010001 for rsa2048).

        Created from ``template`` (station.domain.ek_templates) and persisted only if absent
        and ``create_if_absent``.

        Raises:
            TpmEkAbsentError: no EK is persisted and creating one is not allowed.
            TpmError: the TPM failed or could not be reached.
        """
        ...

    def ensure_storage_root_key(self) -> bytes:
        """The SRK at 0x81000001 (created and persisted if absent), marshaled TPM2B_PUBLIC."""
        ...

    def read_ek_certificates(self, template: str) -> list[tuple[int, bytes]]:
        """Every EK certificate the TPM holds in NV for ``template``: (NV index, raw bytes)."""
        ...

    def prove_residency(self, ek: bytes) -> bool:
        """Credential-activation challenge: True if this TPM holds the private part of ``ek``."""
        ...

    def close(self) -> None:
        """Release the TPM context (the board link stays open)."""
        ...


class EkCertificateVerifier(Protocol):
    """Checks EK certificates against the configured trust anchors."""

    def check(
        self,
        certificate: bytes | None,
        *,
        ek: bytes | None,
        now: datetime,
        nv_index: int | None = None,
    ) -> EkCertificateCheck:
        """Check one EK certificate (None: the TPM holds none).

        Parses ``certificate`` tolerantly, compares its key with ``ek`` (marshaled TPM2B_PUBLIC;
        None skips the comparison) and validates its chain at ``now``.
        """
        ...


class EkTrustStore(Protocol):
    """The EK-certificate trust anchors: the configured folders plus the imported ones."""

    def import_path(self, path: Path, *, now: datetime) -> TrustImportReport:
        """Import every CA certificate in ``path`` (PEM bundle, DER, PKCS#7 file or folder).

        Each certificate is kept with its source and fingerprint; what is not taken is
        reported with the reason. Nothing already trusted is imported twice.
        """
        ...

    def entries(self) -> tuple[list[TrustEntry], list[TrustSkip]]:
        """Every anchor the station trusts, and the trust files it could not use."""
        ...

    def wanted(self) -> list[WantedIssuer]:
        """Issuers EK certificates named that no anchor provides (with their AIA URL)."""
        ...


class InjectedKey(Protocol):
    """A device key the station made in memory for a board without a secure element."""

    def csr_der(self, common_name: str) -> bytes:
        """A CSR for ``CN=<common_name>`` signed by this key (DER)."""
        ...

    def private_key_der(self) -> bytes:
        """The PKCS#8 DER to write to the board's ``privkey`` object."""
        ...

    def wipe(self) -> None:
        """Overwrite and drop the key material (idempotent)."""
        ...


class DeviceCrypto(Protocol):
    """Certificate parsing, injected keys and proof-of-possession checks for provisioning."""

    def new_injected_key(self) -> InjectedKey:
        """A fresh in-memory P-256 key."""
        ...

    def chain_der(self, pem: str) -> bytes:
        """Every certificate in ``pem``, DER, concatenated in order."""
        ...

    def issuer(self, pem: str) -> str:
        """The issuer of the first certificate in ``pem``."""
        ...

    def public_key_sha256(self, pem: str) -> str:
        """SHA-256 (hex) of the first certificate's public key (SubjectPublicKeyInfo DER)."""
        ...

    def verify_possession(self, certificate_pem: str, nonce: bytes, signature: bytes) -> bool:
        """Whether ``signature`` over ``nonce`` verifies with the certificate's public key."""
        ...

    def csr_facts(self, der: bytes) -> CsrFacts:
        """What a board's CSR (DER) says; raises CsrRejectedError when it is not a CSR."""
        ...


class FleetOutbox(Protocol):
    """The station's side of fleet replication: its audit events queued in order, in SQLite.

    Rows are the station's own audit events (by ``seq``), so the queue survives any crash: a row
    is ``sent`` only after the ledger acknowledged it, and re-sending one the ledger already
    holds is harmless (the ledger is idempotent by station and event hash).
    """

    def enqueue_new(self) -> int:
        """Queue every audit event not queued yet, in order; returns how many were added."""
        ...

    def pending(self, limit: int) -> list[AuditEvent]:
        """The oldest ``limit`` unsent events, checked against the hash queued with them.

        Raises:
            IntegrityError: an event changed after it was queued (the local chain was edited).
        """
        ...

    def mark_sent_through(self, seq: int) -> int:
        """Mark every queued event up to ``seq`` sent (durably); returns how many changed."""
        ...

    def note_failure(self, error: str) -> None:
        """Count a failed attempt on the oldest pending event and keep the error text."""
        ...

    def status(self) -> OutboxStatus:
        """Head, last sent event, pending count, attempts and the last error."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


class FleetLedger(Protocol):
    """The fleet ledger on PostgreSQL: every station's chain, devices, certificates, batches.

    Lifecycle: opened by bootstrap for one thread, closed by it. A call that cannot reach the
    server in time raises :class:`~station.domain.fleet.FleetUnavailableError`; nothing the
    ledger accepted is lost when a connection breaks mid-call (each call is one transaction).
    """

    def install_schema(self) -> None:
        """Create the ledger's tables if they are missing (idempotent)."""
        ...

    def acked(self, station: str) -> Ack:
        """The last event of ``station`` the ledger holds (seq 0 when none)."""
        ...

    def ingest(self, batch: IngestBatch) -> Ack:
        """Store ``batch`` in one transaction after the station's acknowledged head.

        Events the ledger already holds are skipped (after checking their hashes); new ones
        must continue the chain. Devices are checked for duplicates across the fleet and over
        quota; conflicts become alarms.

        Raises:
            FleetChainError: the events do not continue (or contradict) the held chain.
        """
        ...

    def claim(self, identity: FleetIdentity) -> ClaimVerdict:
        """Reserve the identity's keys for its station and device (online uniqueness)."""
        ...

    def devices(self, query: FleetQuery) -> list[FleetDevice]:
        """Devices of the whole fleet matching ``query``, by station and registration ID."""
        ...

    def device_events(self, station: str, registration_id: str) -> list[AuditEvent]:
        """The replicated events of one station about one device, oldest first."""
        ...

    def stations(self) -> list[StationSummary]:
        """Every station the ledger knows, by name."""
        ...

    def alarms(self, *, limit: int = 100) -> list[FleetAlarm]:
        """Conflicts found so far, newest first."""
        ...

    def set_quota(self, batch: str, limit: int) -> None:
        """Set (0: remove) the fleet-wide device quota of a batch."""
        ...

    def quota(self, batch: str) -> int:
        """The fleet-wide quota of a batch (0: none)."""
        ...

    def issuance(self, batch: str = "") -> list[BatchIssuance]:
        """Certificates issued per station and batch (one batch, or all)."""
        ...

    def batch_stations(self, batch: str) -> dict[str, int]:
        """How many devices each station replicated for a work order."""
        ...

    def batch_devices(self, batch: str) -> Iterator[FleetDevice]:
        """Every device of a work order across stations, by station then registration ID."""
        ...

    def verify(self) -> list[LedgerProblem]:
        """Walk every station's chain and every device row against the event that recorded it."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...
