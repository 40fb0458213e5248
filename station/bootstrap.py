"""The composition root: the one place that turns a config into a working station.

``build_station(config)`` returns a :class:`Station` whose methods hand out services wired to real
adapters. Tests pass overrides instead of patching: a clock, and in :class:`Overrides` a unit of
work (the in-memory fake) or an enrollment service (a DPS double). Nothing here runs at import
time: adapters are imported and opened only when a service first needs them.

Threading: a :class:`Station` and the store it opened belong to the thread that built them. A slot
worker builds its own (``station.for_thread()``), because SQLite connections and serial ports are
single-owner resources.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from station.config import StationConfig
from station.ports import (
    BoardFinder,
    BoardLink,
    BoardWatcher,
    Clock,
    EkCertificateVerifier,
    EnrollmentService,
    ExportFiles,
    FleetLedger,
    FleetOutbox,
    GroupKeys,
    ManifestSigner,
    ManifestTrust,
    ProductCatalog,
    PushOutbox,
    TpmIdentityReader,
    UnitOfWork,
)
from station.services.batches import BatchService, CloudPorts
from station.services.ca import CaService
from station.services.database import DatabaseService
from station.services.devices import DeviceService
from station.services.fleet import FleetGuard, FleetReplicator, FleetViews
from station.services.operators import OperatorService
from station.services.products import ProductService
from station.services.provision import ProvisionPorts, ProvisionService
from station.services.tpm_identity import TpmIdentityService
from station.services.tpm_trust import TpmTrustService

if TYPE_CHECKING:
    from station.adapters.board.conformance import ConformanceReport
    from station.adapters.board.discovery import BoardDiscovery
    from station.adapters.outputs import OwnedPaths
    from station.domain.fleet import StationCa
    from station.services.labels import LabelService


class SystemClock:
    """The real clock, in UTC."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)


@dataclass(frozen=True)
class Overrides:
    """Ports handed in instead of the real adapters (tests: fakes and doubles).

    An override belongs to the caller: every sibling station (:meth:`Station.for_thread`) uses
    the same object, and :meth:`Station.close` leaves it open.

    Attributes:
        store: the identity store (e.g. the in-memory unit of work of the tests); the push
            outbox, which lives in the database file, then has no database and is refused.
        enrollments: the DPS service API (e.g. a recorded-shape double).
    """

    store: UnitOfWork | None = None
    enrollments: EnrollmentService | None = None


@dataclass
class _Opened:
    """What a station opened on first use (and closes in :meth:`Station.close`)."""

    store: UnitOfWork | None = None
    board_links: list[BoardLink] = field(default_factory=list)
    ca: CaService | None = None
    cloud: dict[str, Any] = field(default_factory=dict)
    tpm_readers: list[TpmIdentityReader] = field(default_factory=list)


@dataclass(frozen=True)
class Station:
    """A configured station: services on top of lazily opened adapters.

    Immutable and without an operator: every acting service method takes the operator who acts
    (``operator=``), so a badge switch between two commands cannot leak into the second. Another
    thread gets a sibling from :meth:`for_thread`.
    """

    config: StationConfig
    clock: Clock = field(default_factory=SystemClock)
    # False: a missing database is an error, not a new empty one (every command but 'init')
    create_database: bool = True
    overrides: Overrides = field(default_factory=Overrides)
    _opened: _Opened = field(default_factory=_Opened, repr=False, compare=False)

    # ------------------------------------------------------------------ adapters
    def store(self) -> UnitOfWork:
        """The identity store, opened (and migrated if needed) on first use."""
        if self.overrides.store is not None:
            return self.overrides.store
        if self._opened.store is None:
            from station.adapters.store.unit_of_work import SqliteUnitOfWork

            self._opened.store = SqliteUnitOfWork.open(
                self.config.database_path,
                busy_timeout_ms=self.config.database.busy_timeout_ms,
                backup_dir=self.config.backup_dir,
                clock=self.clock,
                create=self.create_database,
            )
        return self._opened.store

    def board_session(self, port: str, *, handshake: bool = True) -> BoardLink:
        """Open a protocol session with the board on ``port`` (device path or pyserial URL).

        With ``handshake`` the session says hello first (and fails early on a wrong board or
        protocol version). The session is closed by :meth:`close` unless closed before.
        """
        from station.adapters.board.session import open_session

        board = self.config.board
        link = open_session(
            port,
            baud=board.baud,
            timeout_s=board.timeout_s,
            slow_timeout_s=board.slow_timeout_s,
            retries=board.retries,
        )
        self._opened.board_links.append(link)
        if handshake:
            try:
                link.hello()
            except BaseException:
                link.close()
                raise
        return link

    def discovery(self) -> BoardFinder:
        """Board discovery: USB serial ports, the lab registry and the slot bindings."""
        return self._board_discovery()

    def hotplug(self) -> BoardWatcher:
        """A poller that reports board arrival and removal per slot."""
        from station.adapters.board.discovery import HotplugMonitor

        return HotplugMonitor(self._board_discovery())

    def _board_discovery(self) -> BoardDiscovery:
        from station.adapters.board.discovery import BoardDiscovery, SlotBindings

        board = self.config.board
        return BoardDiscovery(
            SlotBindings(board.slots_file or self.config.data_dir / "slots.toml"),
            usb_ids=board.usb_ids,
            lab_registry=self.config.lab_registry,
        )

    def board_conformance(self, port: str, *, allow_lock: bool = False) -> ConformanceReport:
        """Run the board conformance suite against the board on ``port`` (raw frames, no retries).

        Raises:
            BoardDisconnectedError: the port cannot be opened.
        """
        from station.adapters.board.conformance_clauses import run_conformance
        from station.adapters.board.transport import SerialTransport

        board = self.config.board
        transport = SerialTransport(port, board.baud)
        try:
            return run_conformance(
                transport,
                allow_lock=allow_lock,
                timeout_s=board.timeout_s,
                slow_timeout_s=board.slow_timeout_s,
            )
        finally:
            transport.close()

    def for_thread(self) -> Station:
        """A sibling station for another thread: same config and clock, its own connections."""
        return Station(
            config=self.config,
            clock=self.clock,
            create_database=self.create_database,
            overrides=self.overrides,
        )

    def close(self) -> None:
        """Close every adapter this station opened."""
        opened = self._opened
        if opened.store is not None:
            opened.store.close()
            opened.store = None
        for link in opened.board_links:
            link.close()
        opened.board_links.clear()
        if opened.ca is not None:
            opened.ca.close()
            opened.ca = None
        for adapter in opened.cloud.values():
            adapter.close()
        opened.cloud.clear()
        for reader in opened.tpm_readers:
            reader.close()
        opened.tpm_readers.clear()

    def tpm_reader(self, link: BoardLink) -> TpmIdentityReader:
        """The TPM behind ``link`` (one per slot; use it only on the thread that asked for it).

        :meth:`close` closes it; the board link stays the caller's.
        """
        from station.adapters.tpm.identity import BoardTpmIdentityReader

        reader = BoardTpmIdentityReader(link, port=link.port)
        self._opened.tpm_readers.append(reader)
        return reader

    def _trust_sources(self) -> list[Path]:
        section = self.config.tpm
        sources = [section.trust_dir or self.config.templates_dir / "trust"]
        sources += list(section.extra_trust_dirs)
        sources.append(self.config.tpm_import_dir)
        if section.trust_lab_ca:
            ca = self.config.lab_dir / "tpm-ca" / "ca"
            sources += [ca / "swtpm-localca-rootca-cert.pem", ca / "issuercert.pem"]
        return sources

    def tpm_trust(self) -> TpmTrustService:
        """EK trust: import vendor CA files (audited), list anchors and missing issuers."""
        from station.adapters.tpm.trust_store import FileTrustStore

        return TpmTrustService(
            FileTrustStore(self.config.tpm_import_dir, self._trust_sources()),
            self.store(),
            clock=self.clock,
            station_id=self.config.station.id,
        )

    def ek_verifier(self, roots: Path | None = None) -> EkCertificateVerifier:
        """EK-certificate checks against the configured trust anchors (or only ``roots``).

        Anchors: ``[tpm] trust_dir`` (default templates/trust), ``[tpm] extra_trust_dirs``, the
        imported ones (``[tpm] import_dir``) and, with ``[tpm] trust_lab_ca``, the lab's swtpm
        local CA certificates (never its key). An issuer no anchor provides is recorded in the
        trust store, with its AIA URL, for ``station tpm trust list``.
        """
        from station.adapters.tpm.ek_certs import (
            TrustAnchors,
            X509EkCertificateVerifier,
            cached_anchors,
        )
        from station.adapters.tpm.trust_store import FileTrustStore

        if roots is not None:
            return X509EkCertificateVerifier(TrustAnchors([roots]))
        store = FileTrustStore(self.config.tpm_import_dir, self._trust_sources())
        return X509EkCertificateVerifier(
            cached_anchors(store.sources), on_missing_issuer=store.record_wanted
        )

    # ------------------------------------------------------------------ services
    def tpm_identity(self, roots: Path | None = None) -> TpmIdentityService:
        """Read, check and admit TPM identities (EK, EK certificate, residency proof)."""
        return TpmIdentityService(self.ek_verifier(roots), clock=self.clock)

    def database(self) -> DatabaseService:
        """Initialise, verify, back up and migrate the identity store."""
        return DatabaseService(
            self.store(),
            clock=self.clock,
            station_id=self.config.station.id,
        )

    def operators(self) -> OperatorService:
        """Manage and authenticate operators."""
        return OperatorService(
            self.store(),
            clock=self.clock,
            station_id=self.config.station.id,
            random_bytes=secrets.token_bytes,
        )

    def ca(self, *, pin_prompt: Callable[[str], str] | None = None) -> CaService:
        """The station's CA: set-up, chain import, status and issuance.

        The CA key is opened on first issuance and stays open until :meth:`close`.

        Args:
            pin_prompt: asks a person for the token PIN when neither ``[ca] pin_file`` nor
                ``$STATION_PKCS11_PIN`` provides it (interactive CLI and GUI only).
        """
        if self._opened.ca is None:
            from station.adapters.ca.admin import FileCaAdministration
            from station.adapters.ca.keys import pin_source
            from station.adapters.ca.profiles import default_profile_dir, load_profiles

            section = self.config.ca
            admin = FileCaAdministration(
                section.dir or self.config.data_dir / "ca",
                configured_uri=section.key_uri,
                pin_source=pin_source(section.pin_file, pin_prompt),
                chain_file=section.chain_file,
                root_file=section.root_file,
                manifest_key_uri=self.config.dps.manifest_key_uri,
                manifest_chain_file=self.config.dps.manifest_chain_file,
            )
            self._opened.ca = CaService(
                store=self.store(),
                admin=admin,
                authority=admin.open_authority,
                profiles=load_profiles(section.profile_dir or default_profile_dir()),
                clock=self.clock,
                station_id=self.config.station.id,
                default_profile=section.default_profile,
                quota_spare=section.quota_spare,
                expiry_warning_days=section.expiry_warning_days,
                products=self.products(),
            )
        return self._opened.ca

    def products(self) -> ProductCatalog:
        """Product recipes and enrollment templates from the templates directory."""
        from station.adapters.templates.loader import TemplateLibrary

        return TemplateLibrary(self.config.templates_dir)

    def product_recipes(self) -> ProductService:
        """Product recipes for the interfaces (no database needed)."""
        return ProductService(self.products())

    def batches(self) -> BatchService:
        """Batches: open, progress, seal, export, push to DPS and reconcile."""
        import time

        dps = self.config.dps
        return BatchService(
            self.store(),
            self.products(),
            clock=self.clock,
            station_id=self.config.station.id,
            cloud=CloudPorts(
                enrollments=self.enrollment_service,
                outbox=self.push_outbox,
                group_keys=self.group_keys,
                signer=self.manifest_signer,
                exports=self.export_files,
                monotonic=time.monotonic,
                sleep=time.sleep,
                rate_limit_per_minute=dps.rate_limit_per_minute,
                time_scale=dps.time_scale,
                intermediate_pem=self._intermediate_pem,
            ),
        )

    def enrollment_service(self) -> EnrollmentService:
        """The DPS service API (opened once; credentials from the connection file or Entra ID)."""
        if self.overrides.enrollments is not None:
            return self.overrides.enrollments
        if "dps" not in self._opened.cloud:
            from station.adapters.dps.client import AzureEnrollmentService
            from station.domain.errors import DpsCredentialsError

            dps = self.config.dps
            if dps.connection_string_file is not None:
                self._opened.cloud["dps"] = AzureEnrollmentService.from_connection_file(
                    dps.connection_string_file, ca_bundle=dps.ca_bundle, timeout_s=dps.timeout_s
                )
            elif dps.endpoint:
                self._opened.cloud["dps"] = AzureEnrollmentService.from_entra_id(
                    dps.endpoint, ca_bundle=dps.ca_bundle, timeout_s=dps.timeout_s
                )
            else:
                raise DpsCredentialsError(
                    "no DPS credentials are configured",
                    remedy="Set [dps] connection_string_file (or $STATION_DPS_CONNECTION_FILE), "
                    "or [dps] endpoint to sign in with Entra ID.",
                )
        service: EnrollmentService = self._opened.cloud["dps"]
        return service

    def push_outbox(self) -> PushOutbox:
        """The per-device push outbox in the station database."""
        if "outbox" not in self._opened.cloud:
            from station.adapters.dps.outbox import SqliteOutbox
            from station.domain.errors import ConfigError

            if self.overrides.store is not None:
                raise ConfigError(
                    "the push outbox lives in the station database, and this station was "
                    "given another store",
                    remedy="Push from a station built on its database (no store override).",
                )
            self.store()  # opens and migrates the database first
            self._opened.cloud["outbox"] = SqliteOutbox(
                self.config.database_path, busy_timeout_ms=self.config.database.busy_timeout_ms
            )
        outbox: PushOutbox = self._opened.cloud["outbox"]
        return outbox

    # ------------------------------------------------------------------ fleet ledger (#23)
    def fleet_configured(self) -> bool:
        """Whether ``[fleet]`` names a ledger (otherwise the station works alone)."""
        return self.config.fleet.enabled

    def fleet_ledger(self) -> FleetLedger:
        """The fleet ledger (PostgreSQL), connected on first use.

        Raises:
            FleetNotConfiguredError: the config has no ``[fleet]`` connection.
        """
        if "fleet_ledger" not in self._opened.cloud:
            conninfo = self._fleet_conninfo()
            try:
                from station.adapters.fleet.ledger import PostgresLedger
            except ImportError as exc:  # a build without the 'fleet' extra
                from station.domain.fleet import FleetNotConfiguredError

                raise FleetNotConfiguredError(
                    f"this station was installed without the fleet ledger's driver ({exc.name})",
                    remedy="Install the station with its 'fleet' extra (psycopg).",
                ) from exc
            fleet = self.config.fleet
            self._opened.cloud["fleet_ledger"] = PostgresLedger(
                conninfo,
                timeout_s=fleet.timeout_s,
                connect_timeout_s=fleet.connect_timeout_s,
                application_name=f"station {self.config.station.id}"[:63],
            )
        ledger: FleetLedger = self._opened.cloud["fleet_ledger"]
        return ledger

    def _fleet_conninfo(self) -> str:
        from station.domain.fleet import FleetNotConfiguredError
        from station.inputs import read_bounded

        fleet = self.config.fleet
        if not fleet.enabled:
            raise FleetNotConfiguredError(
                "this station has no fleet ledger configured",
                remedy="Add a [fleet] section with conninfo (or conninfo_file) to the config; "
                "docs/admin-guide.md ('Fleet ledger') says how.",
            )
        if fleet.conninfo_file is None:
            return fleet.conninfo
        raw = read_bounded(
            fleet.conninfo_file,
            limit=4096,
            what="the fleet ledger connection string",
            error=FleetNotConfiguredError,
        )
        try:
            return raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise FleetNotConfiguredError(
                f"the fleet connection file {fleet.conninfo_file} is not UTF-8 text",
                remedy="Write the libpq connection string in it as plain text.",
                file=str(fleet.conninfo_file),
            ) from exc

    def fleet_outbox(self) -> FleetOutbox:
        """The fleet replication outbox in the station database."""
        if "fleet_outbox" not in self._opened.cloud:
            from station.adapters.fleet.outbox import SqliteFleetOutbox

            self.store()  # opens and migrates the database first
            self._opened.cloud["fleet_outbox"] = SqliteFleetOutbox(
                self.config.database_path, busy_timeout_ms=self.config.database.busy_timeout_ms
            )
        outbox: FleetOutbox = self._opened.cloud["fleet_outbox"]
        return outbox

    def fleet_replicator(self) -> FleetReplicator:
        """Replication of this station's store to the ledger (run it on its own thread)."""
        from station.adapters.keys.device_crypto import CryptographyDeviceCrypto

        return FleetReplicator(
            store=self.store(),
            outbox=self.fleet_outbox(),
            ledger=self.fleet_ledger(),
            clock=self.clock,
            station_id=self.config.station.id,
            key_hash=CryptographyDeviceCrypto().public_key_sha256,
            station_ca=self._station_ca,
            batch_size=self.config.fleet.batch_size,
        )

    def _station_ca(self) -> StationCa | None:
        from station.adapters.fleet.ca_facts import station_ca

        return station_ca(self._intermediate_pem())

    def fleet_guard(self) -> FleetGuard | None:
        """The online uniqueness check for provisioning, or ``None`` without a ledger."""
        if not self.fleet_configured():
            return None
        from station.domain.fleet import FleetPolicy, UniquenessMode

        fleet = self.config.fleet
        policy = FleetPolicy(
            default_mode=UniquenessMode(fleet.uniqueness),
            online_products=frozenset(fleet.online_products),
            deferred_products=frozenset(fleet.deferred_products),
            stop_when_unreachable=fleet.stop_when_unreachable,
        )
        return FleetGuard(self.fleet_ledger, policy)

    def fleet_roles_sql(self) -> str:
        """The SQL that creates the ledger's roles (docs/admin-guide.md, "Fleet ledger")."""
        from station.adapters.fleet.schema import ROLES_SQL

        return ROLES_SQL

    def fleet(self) -> FleetViews:
        """Fleet-wide queries and ledger administration."""
        return FleetViews(self.fleet_ledger(), self.store, station_id=self.config.station.id)

    def group_keys(self) -> GroupKeys:
        """Symmetric device-key derivation in the HSM (for templates that push keys)."""
        if "group_keys" not in self._opened.cloud:
            from station.adapters.ca.keys import pin_source
            from station.adapters.dps.group_keys import HsmGroupKeys

            self._opened.cloud["group_keys"] = HsmGroupKeys(
                pin_source(self.config.ca.pin_file, None)
            )
        keys: GroupKeys = self._opened.cloud["group_keys"]
        return keys

    def manifest_signer(self) -> ManifestSigner:
        """The batch-manifest signing key in hsm/ with its certificate chain."""
        if "signer" not in self._opened.cloud:
            from station.adapters.ca.keys import pin_source
            from station.adapters.exports.signing import HsmManifestSigner
            from station.domain.errors import ManifestError

            dps = self.config.dps
            if not dps.manifest_key_uri or dps.manifest_chain_file is None:
                raise ManifestError(
                    "no batch-manifest signing key is configured",
                    remedy="Set [dps] manifest_key_uri and [dps] manifest_chain_file.",
                )
            self._opened.cloud["signer"] = HsmManifestSigner.open(
                dps.manifest_key_uri,
                dps.manifest_chain_file,
                pin_source=pin_source(self.config.ca.pin_file, None),
            )
        signer: ManifestSigner = self._opened.cloud["signer"]
        return signer

    def fleet_export(
        self, batch: str, *, out: Path | None = None, force: bool = False
    ) -> tuple[str, int]:
        """Write the fleet's JSON export of work order ``batch`` into the export folder."""
        return self.fleet().export_batch(batch, self.export_files(out, force=force))

    def export_files(self, out: Path | None = None, force: bool = False) -> ExportFiles:
        """Where export files go (``out``, else ``[dps] export_dir``, else <data>/exports)."""
        from station.adapters.exports.files import DirectoryExports

        return DirectoryExports(
            out or self.config.dps.export_dir or self.config.data_dir / "exports",
            force=force,
            owned=self.owned_paths(),
        )

    def owned_paths(self) -> OwnedPaths:
        """The files and folders no output may write over (database, WAL, config, keys...)."""
        from station.adapters.outputs import owned_paths

        config = self.config
        database = config.database_path
        ca_dir = config.ca.dir or config.data_dir / "ca"
        return owned_paths(
            files=[
                (database, "the station's database"),
                *(
                    (database.with_name(database.name + suffix), "the station's database journal")
                    for suffix in ("-wal", "-shm", "-journal")
                ),
                (config.source, "the station's configuration"),
                (config.ca.pin_file, "the CA PIN file"),
                (config.ca.chain_file or ca_dir / "chain.pem", "the CA certificate chain"),
                (config.ca.root_file or ca_dir / "root.pem", "the CA root certificate"),
                (config.dps.manifest_chain_file, "the manifest certificate chain"),
                (config.dps.connection_string_file, "the DPS connection string"),
                (config.fleet.conninfo_file, "the fleet ledger connection string"),
                *_key_files(config.ca.key_uri, "the CA key"),
                *_key_files(config.dps.manifest_key_uri, "the manifest key"),
            ],
            folders=[
                (config.backup_dir, "the station's backups"),
                (ca_dir, "the CA's folder"),
            ],
        )

    def write_output(
        self, target: Path, data: bytes, *, force: bool = False, mode: int = 0o644
    ) -> Path:
        """Write a requested output file safely (see :mod:`station.adapters.outputs`).

        Raises:
            OutputRefusedError: the target is the station's own, or exists and ``force`` is off.
        """
        from station.adapters.outputs import write_output

        return write_output(target, data, force=force, owned=self.owned_paths(), mode=mode)

    def check_output(self, target: Path, *, force: bool = False) -> None:
        """Refuse ``target`` now if an output could not be written there (see write_output).

        Raises:
            OutputRefusedError: the target is the station's own, or exists and ``force`` is off.
        """
        from station.adapters.outputs import check_output

        check_output(target, force=force, owned=self.owned_paths())

    def free_output_name(self, folder: Path, stem: str, suffix: str) -> Path:
        """A file name in ``folder`` that is not taken yet (``stem``, ``stem-2``, ...)."""
        from station.adapters.outputs import unique_name

        return unique_name(folder, stem, suffix)

    def manifest_trust(self, root_pem: bytes, *, pinned_sha256: str = "") -> ManifestTrust:
        """Checks a batch manifest's chain against ``root_pem`` (the cloud side's trust).

        Only a manifest-signing certificate is accepted as the signer; given ``pinned_sha256``
        (the SHA-256 of a certificate), only that one.
        """
        from station.adapters.exports.signing import X509ManifestTrust

        return X509ManifestTrust(root_pem, pinned_sha256=pinned_sha256)

    def _intermediate_pem(self) -> str:
        chain = self.config.ca.chain_file or self.config.data_dir / "ca" / "chain.pem"
        try:
            return chain.read_text(encoding="ascii")
        except (OSError, ValueError):
            return ""

    def provisioning(self) -> ProvisionService:
        """The provisioning step machine for this thread's slot (one station per worker)."""
        from station.adapters.keys.device_crypto import CryptographyDeviceCrypto

        return ProvisionService(
            ProvisionPorts(
                store=self.store(),
                products=self.products(),
                ca=self.ca,
                group_keys=self.group_keys,
                crypto=CryptographyDeviceCrypto(),
                random_bytes=secrets.token_bytes,
                tpm_reader=self.tpm_reader,
                tpm_identity=self.tpm_identity,
                labels=self.labels,
                fleet=self.fleet_guard(),
            ),
            clock=self.clock,
            station_id=self.config.station.id,
        )

    def devices(self) -> DeviceService:
        """Find and show recorded identities."""
        return DeviceService(self.store())

    def labels(self) -> LabelService:
        """Print, reprint and verify identity labels; batch reports (nothing to close)."""
        from station.adapters.labels.templates import TemplateLibrary
        from station.adapters.labels.toolkit import ReportlabLabels
        from station.services.labels import LabelService

        toolkit = ReportlabLabels()
        section = self.config.labels
        return LabelService(
            store=self.store(),
            templates=TemplateLibrary(section.template_dir),
            printers=toolkit,
            renderer=toolkit,
            clock=self.clock,
            station_id=self.config.station.id,
            default_template=section.device_template,
            batch_template=section.batch_template,
            # With no printer configured, labels are saved as PDFs in the output folder.
            default_printer=section.printer or f"file:{self.config.labels_output_dir}/",
        )


def _key_files(uri: str, what: str) -> list[tuple[Path | None, str]]:
    """The files a key URI names: a ``file:`` key itself, a ``pin-source`` PIN file."""
    from hsm.errors import HsmError
    from hsm.uri import FileUri, Pkcs11Uri, parse_key_uri

    if not uri:
        return []
    try:
        parsed = parse_key_uri(uri)
    except HsmError:
        return []  # reported where the key is opened
    if isinstance(parsed, FileUri):
        return [(parsed.path, what)]
    if isinstance(parsed, Pkcs11Uri) and parsed.pin_source:
        return [(Path(parsed.pin_source), f"the PIN file of {what}")]
    return []


def build_station(
    config: StationConfig,
    *,
    clock: Clock | None = None,
    overrides: Overrides | None = None,
    create_database: bool = True,
) -> Station:
    """Build a station from ``config``.

    Args:
        config: the loaded configuration.
        clock: replaces the system clock (tests, golden files).
        overrides: ports to use instead of the real adapters (tests: fakes, doubles).
        create_database: create the database when it does not exist (``init``, the demo and
            tests); otherwise a missing database is refused, so a mistyped data_dir never
            starts a new, empty store.
    """
    return Station(
        config=config,
        clock=clock or SystemClock(),
        create_database=create_database,
        overrides=overrides or Overrides(),
    )
