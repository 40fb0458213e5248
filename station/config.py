"""Station configuration: a frozen object loaded from TOML, with environment overrides.

Where the file is: ``--config PATH`` on the command line, else ``$STATION_CONFIG``, else
``station.toml`` in the platform's user config directory (``~/.config/station`` on Linux).

The file never holds a secret. It may name where a secret is (a PIN file, a connection-string
file) and those locations may also come from the environment:

==============================  =========================================================
``STATION_DATA_DIR``            overrides ``[station] data_dir``
``STATION_PKCS11_PIN_FILE``     overrides ``[ca] pin_file`` (a 0600 file holding the PIN)
``STATION_DPS_CONNECTION_FILE`` overrides ``[dps] connection_string_file``
``STATION_FLEET_CONNINFO_FILE`` overrides ``[fleet] conninfo_file``
==============================  =========================================================

Every section is a frozen dataclass; the loader checks each key's type from the dataclass and
reports unknown or mistyped keys by name, with the file they came from.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from station.adapters.tomlfile import build, read_toml
from station.domain.errors import ConfigError

APP_NAME = "station"
CONFIG_ENV = "STATION_CONFIG"
CONFIG_FILENAME = "station.toml"


def default_config_path() -> Path:
    """The config file location when neither ``--config`` nor ``$STATION_CONFIG`` is given."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / CONFIG_FILENAME


def shipped_templates_dir() -> Path:
    """The ``templates/`` folder that ships next to the ``station`` package.

    In the one-folder build (PyInstaller sets ``sys.frozen`` and ``sys._MEIPASS``) it is the
    bundle's data folder's ``templates/``, where packaging/pyinstaller/station.spec puts it.
    """
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / "templates"
    return Path(__file__).resolve().parent.parent / "templates"


def default_data_dir() -> Path:
    """Where the database, backups and artifacts live unless the config says otherwise."""
    return Path(platformdirs.user_data_dir(APP_NAME))


@dataclass(frozen=True)
class StationSection:
    """``[station]``: who this station is and where it keeps its data."""

    id: str = "station-01"
    data_dir: Path = field(default_factory=default_data_dir)
    templates_dir: Path | None = None  # default: the templates/ folder shipped with station


@dataclass(frozen=True)
class DatabaseSection:
    """``[database]``: the identity store."""

    path: Path | None = None  # default: <data_dir>/station.db
    busy_timeout_ms: int = 10_000
    backup_dir: Path | None = None  # default: <data_dir>/backups


@dataclass(frozen=True)
class BoardSection:
    """``[board]``: the board link."""

    baud: int = 115_200
    timeout_s: float = 2.0
    retries: int = 3
    slow_timeout_s: float = 30.0  # TPM / secure-element operations (slow discrete TPMs)
    usb_ids: tuple[str, ...] = ()  # "vvvv:pppp" hex pairs discovery accepts; empty: any USB
    slots_file: Path | None = None  # default: <data_dir>/slots.toml


@dataclass(frozen=True)
class LabSection:
    """``[lab]``: virtual boards and the local DPS (development, tests, demo)."""

    dir: Path | None = None  # default: <data_dir>/lab
    dps_port: int = 0  # local DPS stand-in port (0: any free port, printed at start)


@dataclass(frozen=True)
class CaSection:
    """``[ca]``: the station's intermediate CA."""

    key_uri: str = ""  # pkcs11:/tpm:/file: URI; empty = the one 'station ca init' recorded
    chain_file: Path | None = None  # default: <data_dir>/ca/chain.pem
    pin_file: Path | None = None
    dir: Path | None = None  # the CA's files (CSR, chain, root); default: <data_dir>/ca
    root_file: Path | None = None  # default: <data_dir>/ca/root.pem
    profile_dir: Path | None = None  # certificate profiles; default: templates/certs
    default_profile: str = "device-identity"
    quota_spare: int = 5  # certificates a batch may use beyond its size
    expiry_warning_days: int = 60


@dataclass(frozen=True)
class DpsSection:
    """``[dps]``: the DPS instance enrollments are pushed to."""

    connection_string_file: Path | None = None
    ca_bundle: Path | None = None  # trust anchor for a lab DPS's TLS certificate
    endpoint: str = ""  # https://NAME.azure-devices-provisioning.net: Entra ID sign-in (no file)
    rate_limit_per_minute: int = 1000  # the DPS tier's operations per minute (0: no limit)
    time_scale: float = 1.0  # lab only: >1 runs the rate limit on a faster clock (stand-in)
    timeout_s: float = 30.0
    manifest_key_uri: str = ""  # pkcs11:/tpm:/file: URI of the batch-manifest ES256 key
    manifest_chain_file: Path | None = None  # its certificate chain (PEM, its certificate first)
    export_dir: Path | None = None  # default: <data_dir>/exports


@dataclass(frozen=True)
class LabelsSection:
    """``[labels]``: label templates, the default printer and where saved labels go."""

    printer: str = ""  # "cups:QUEUE" (or a bare queue name), "zpl://HOST[:PORT]", "file:PATH"
    template_dir: Path | None = None  # default: the templates/labels folder shipped with station
    output_dir: Path | None = None  # default: <data_dir>/labels
    device_template: str = "device-50x25"
    batch_template: str = "sheet-a4-3x8"


@dataclass(frozen=True)
class TpmSection:
    """``[tpm]``: trust anchors for EK certificates."""

    trust_dir: Path | None = None  # default: the templates/trust folder shipped with station
    extra_trust_dirs: tuple[Path, ...] = ()  # more anchor folders or files (vendor roots)
    trust_lab_ca: bool = False  # also trust the lab's swtpm local CA (<lab dir>/tpm-ca); lab only
    import_dir: Path | None = None  # imported vendor CAs; default: <data_dir>/tpm-trust


@dataclass(frozen=True)
class GuiSection:
    """``[gui]``: the desktop window."""

    lock_after_s: int = 300  # lock the window after this much inactivity (0: never)
    beep_on_fail: bool = True  # audible cue when a slot fails
    slot_count: int = 4  # slot tiles on the line view, named slot-1 .. slot-N (1..16)
    slot_names: tuple[str, ...] = ()  # explicit slot names instead (at most 16)
    hotplug: bool = True  # start boards as soon as they appear in a bound slot

    def slots(self) -> list[str]:
        """The line view's slot names."""
        if self.slot_names:
            return list(self.slot_names[:16])
        return [f"slot-{n}" for n in range(1, min(max(self.slot_count, 1), 16) + 1)]


@dataclass(frozen=True)
class FleetSection:
    """``[fleet]``: the fleet ledger on PostgreSQL (#23).

    Without a connection the station works alone, exactly as it does without this section.
    """

    # libpq connection string without a password ("host=... dbname=... user=... sslmode=...");
    # the password comes from a 0600 conninfo_file, PGPASSFILE or a client certificate
    conninfo: str = ""
    conninfo_file: Path | None = None  # a 0600 file holding the whole connection string
    uniqueness: str = "deferred"  # default mode: "online" or "deferred"
    online_products: tuple[str, ...] = ()  # products checked with the ledger before locking
    deferred_products: tuple[str, ...] = ()  # products checked on replication
    stop_when_unreachable: bool = False  # online products: stop the line if the ledger is down
    timeout_s: float = 10.0  # one ledger call (an online check holds the board this long at most)
    connect_timeout_s: int = 5
    batch_size: int = 500  # events per replication transaction
    sync_interval_s: float = 5.0  # pause between replication passes (station fleet sync --follow)

    @property
    def enabled(self) -> bool:
        """Whether this station replicates to a ledger."""
        return bool(self.conninfo or self.conninfo_file)


@dataclass(frozen=True)
class StationConfig:
    """The whole configuration. Build it with :func:`load_config`."""

    station: StationSection = field(default_factory=StationSection)
    database: DatabaseSection = field(default_factory=DatabaseSection)
    board: BoardSection = field(default_factory=BoardSection)
    lab: LabSection = field(default_factory=LabSection)
    ca: CaSection = field(default_factory=CaSection)
    dps: DpsSection = field(default_factory=DpsSection)
    labels: LabelsSection = field(default_factory=LabelsSection)
    tpm: TpmSection = field(default_factory=TpmSection)
    gui: GuiSection = field(default_factory=GuiSection)
    fleet: FleetSection = field(default_factory=FleetSection)
    source: Path | None = None  # the file this was loaded from, if any

    @property
    def data_dir(self) -> Path:
        """The station's data directory."""
        return self.station.data_dir

    @property
    def templates_dir(self) -> Path:
        """Where product recipes, certificate profiles, label and enrollment templates live."""
        return self.station.templates_dir or shipped_templates_dir()

    @property
    def database_path(self) -> Path:
        """The SQLite file of the identity store."""
        return self.database.path or self.data_dir / "station.db"

    @property
    def backup_dir(self) -> Path:
        """Where automatic backups (before migrations) go."""
        return self.database.backup_dir or self.data_dir / "backups"

    @property
    def tpm_import_dir(self) -> Path:
        """Where ``station tpm trust import`` keeps vendor CA certificates (a trust location)."""
        return self.tpm.import_dir or self.data_dir / "tpm-trust"

    @property
    def labels_output_dir(self) -> Path:
        """Where saved labels and batch reports go by default."""
        return self.labels.output_dir or self.data_dir / "labels"

    @property
    def lab_dir(self) -> Path:
        """The lab's working directory."""
        return self.lab.dir or self.data_dir / "lab"

    @property
    def lab_registry(self) -> Path:
        """The file the lab publishes its running boards in and board discovery reads.

        Data, not code, is the only link between the station and the lab package.
        """
        return self.lab_dir / "boards.json"


_ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "STATION_DATA_DIR": ("station", "data_dir"),
    "STATION_PKCS11_PIN_FILE": ("ca", "pin_file"),
    "STATION_DPS_CONNECTION_FILE": ("dps", "connection_string_file"),
    "STATION_FLEET_CONNINFO_FILE": ("fleet", "conninfo_file"),
}


def resolve_config_path(explicit: Path | None, env: Mapping[str, str]) -> tuple[Path, bool]:
    """Return the config path and whether the user named it (then it must exist)."""
    if explicit is not None:
        return explicit, True
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]), True
    return default_config_path(), False


def load_config(path: Path | None = None, *, env: Mapping[str, str] | None = None) -> StationConfig:
    """Load the configuration.

    Args:
        path: an explicit file (``--config``); it must exist.
        env: the environment to read ``STATION_*`` overrides from (default: ``os.environ``).

    Raises:
        ConfigError: the file is missing (when named), unreadable, not TOML, or has an unknown or
            mistyped key. The error names the file and the key.
    """
    env = os.environ if env is None else env
    config_path, named = resolve_config_path(path, env)
    raw: dict[str, Any] = {}
    source: Path | None = None
    if config_path.exists():
        raw = read_toml(config_path, what="config file", error=ConfigError)
        source = config_path
    elif named:
        raise ConfigError(
            f"config file {config_path} does not exist",
            remedy="Run 'station init' to create it, or pass the right --config path.",
            file=str(config_path),
        )
    for variable, (section, key) in _ENV_OVERRIDES.items():
        if env.get(variable):
            raw.setdefault(section, {})
            if not isinstance(raw[section], dict):
                break  # reported below as a mistyped section
            raw[section][key] = env[variable]
    config = build(
        StationConfig, raw, file=str(source or "<defaults>"), error=ConfigError, source=source
    )
    _check_ranges(config, str(source or "<defaults>"))
    return config


#: (section, key, low, high): numbers the station cannot work with outside these bounds.
_RANGES: tuple[tuple[str, str, float, float], ...] = (
    ("database", "busy_timeout_ms", 0, 3_600_000),
    ("board", "baud", 0, 10_000_000),  # 0: a pty (lab boards) ignores the rate
    ("board", "timeout_s", 0.001, 3600),
    ("board", "slow_timeout_s", 0.001, 3600),
    ("board", "retries", 0, 100),
    ("ca", "quota_spare", 0, 1_000_000),
    ("ca", "expiry_warning_days", 0, 36_500),
    ("dps", "rate_limit_per_minute", 0, 1_000_000),
    ("dps", "time_scale", 0.001, 1_000_000),
    ("dps", "timeout_s", 0.001, 3600),
    ("gui", "lock_after_s", 0, 86_400),
    ("gui", "slot_count", 1, 16),
    ("lab", "dps_port", 0, 65_535),
    ("fleet", "timeout_s", 0.1, 3600),
    ("fleet", "connect_timeout_s", 1, 600),
    ("fleet", "batch_size", 1, 100_000),
    ("fleet", "sync_interval_s", 0.01, 86_400),
)


def _check_ranges(config: StationConfig, file: str) -> None:
    """Refuse numbers that parse but make no sense (a negative timeout, ``nan``, ``inf``).

    Raises:
        ConfigError: naming the key and the accepted range.
    """
    for section, key, low, high in _RANGES:
        value = getattr(getattr(config, section), key)
        if not (math.isfinite(value) and low <= value <= high):
            raise ConfigError(
                f"config file {file}: [{section}] {key} = {value} is out of range",
                remedy=f"Set [{section}] {key} between {low:g} and {high:g}.",
                file=file,
                key=f"{section}.{key}",
            )
    if _holds_password(config.fleet.conninfo):
        raise ConfigError(
            f"config file {file}: [fleet] conninfo holds a password, and the config is no place "
            "for a secret",
            remedy="Move the whole connection string into a file of mode 0600 named by [fleet] "
            "conninfo_file, or use PGPASSFILE or a client certificate.",
            file=file,
            key="fleet.conninfo",
        )
    if config.fleet.uniqueness not in ("online", "deferred"):
        raise ConfigError(
            f"config file {file}: [fleet] uniqueness = {config.fleet.uniqueness!r} is unknown",
            remedy='Set [fleet] uniqueness to "online" or "deferred".',
            file=file,
            key="fleet.uniqueness",
        )


#: a libpq ``password=`` keyword, or the ``user:password@`` of a postgresql:// URI
_PASSWORD = re.compile(r"(?:^|\s)password\s*=|://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)


def _holds_password(conninfo: str) -> bool:
    return bool(_PASSWORD.search(conninfo))


def render_default_config(config: StationConfig) -> str:
    """Return the TOML text ``station init`` writes for ``config``."""
    return (
        "# Station configuration. Secrets never go in this file: point to them with the\n"
        "# *_file keys or the STATION_* environment variables (see docs/admin-guide.md).\n"
        "[station]\n"
        f'id = "{config.station.id}"\n'
        f'data_dir = "{config.data_dir}"\n'
        "\n[database]\n"
        f"busy_timeout_ms = {config.database.busy_timeout_ms}\n"
        "\n[board]\n"
        f"baud = {config.board.baud}\n"
    )


def write_default_config(path: Path, config: StationConfig) -> None:
    """Create ``path`` with :func:`render_default_config` (the parent directory too).

    Raises:
        ConfigError: the file cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_default_config(config), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot write config file {path}: {exc.strerror}",
            remedy="Choose a writable location with --config.",
            file=str(path),
        ) from exc
