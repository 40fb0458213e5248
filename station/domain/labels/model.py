"""Label templates and the data a label shows, as frozen values.

A *template* (``templates/labels/*.toml``, read by ``station.adapters.labels.templates``) fixes
the physical medium (a die-cut label, continuous tape or a sheet of N labels), the text fields
bound to the identity manifest and the barcodes with their payload. Coordinates are millimetres
from the label's top-left corner; font sizes are points.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from station.domain.manifest import IdentityManifest
from station.domain.registration import MAX_LENGTH

PT_PER_MM = 72.0 / 25.4
PAGE_SIZES_MM: Mapping[str, tuple[float, float]] = {"A4": (210.0, 297.0), "Letter": (215.9, 279.4)}
FONTS = ("Helvetica", "Helvetica-Bold", "Courier", "Courier-Bold")
BINDINGS = (
    "serial",
    "model",
    "registration_id",
    "device_id",
    "date",
    "batch",
    "product",
    "thumbprint",
    "attestation",
)
# The longest value each binding may carry unless a template's [limits] says otherwise.
DEFAULT_LIMITS: Mapping[str, int] = {
    "serial": 32,
    "model": 32,
    "registration_id": MAX_LENGTH,
    "device_id": MAX_LENGTH,
    "date": 10,
    "batch": 32,
    "product": 32,
    "thumbprint": 16,
    "attestation": 12,
}
THUMBPRINT_CHARS = 16
# Quiet zones in modules, from the symbology specs (QR 4, Data Matrix 1, Code 128 10).
QUIET_ZONE: Mapping[str, int] = {"qr": 4, "datamatrix": 1, "code128": 10}


class BarcodeKind(StrEnum):
    """The symbologies a label can carry."""

    QR = "qr"
    DATAMATRIX = "datamatrix"
    CODE128 = "code128"


class PayloadKind(StrEnum):
    """What a barcode encodes."""

    REGISTRATION_ID = "registration_id"  # the plain registration ID
    COMPACT = "compact"  # rid=...;sn=...;b=...;tp=...
    GS1_DIGITAL_LINK = "gs1_digital_link"  # https://resolver/01/<GTIN>/21/<serial>?rid=...
    SERIAL = "serial"  # the board serial (short enough for a linear Code 128)


class MediaKind(StrEnum):
    """The physical medium."""

    DIE_CUT = "die-cut"
    CONTINUOUS = "continuous"
    SHEET = "sheet"


@dataclass(frozen=True)
class Box:
    """A rectangle on the label, in mm from the top-left corner."""

    x_mm: float
    y_mm: float
    width_mm: float
    height_mm: float


@dataclass(frozen=True)
class TextField:
    """Text bound to the manifest: ``text`` is a format string such as ``"SN {serial}"``."""

    id: str
    text: str
    box: Box
    font: str = "Helvetica"
    size_pt: float = 8.0
    min_size_pt: float = 5.0
    max_lines: int = 1
    align: str = "left"  # left | center

    @property
    def bindings(self) -> tuple[str, ...]:
        """The manifest fields this text uses."""
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.text) if name)


@dataclass(frozen=True)
class BarcodeField:
    """A barcode: its symbology, what it encodes and where it goes."""

    id: str
    kind: BarcodeKind
    payload: PayloadKind
    box: Box
    min_module_mm: float = 0.25


@dataclass(frozen=True)
class SheetLayout:
    """How labels tile a page (sheet media only)."""

    page: str = "A4"
    columns: int = 3
    rows: int = 10
    margin_left_mm: float = 7.0
    margin_top_mm: float = 13.0
    gap_x_mm: float = 2.5
    gap_y_mm: float = 0.0

    @property
    def per_page(self) -> int:
        """Labels on one page."""
        return self.columns * self.rows

    def origin(self, index: int, width_mm: float, height_mm: float) -> tuple[float, float]:
        """Top-left corner (mm from the page's top-left) of label ``index`` on its page."""
        slot = index % self.per_page
        row, column = divmod(slot, self.columns)
        return (
            self.margin_left_mm + column * (width_mm + self.gap_x_mm),
            self.margin_top_mm + row * (height_mm + self.gap_y_mm),
        )


@dataclass(frozen=True)
class Gs1Settings:
    """What a GS1 Digital Link payload needs beyond the manifest."""

    resolver: str = "https://id.gs1.org"
    gtin: str = ""


@dataclass(frozen=True)
class LabelTemplate:
    """A validated label template."""

    name: str
    description: str
    media: MediaKind
    width_mm: float
    height_mm: float
    texts: tuple[TextField, ...]
    barcodes: tuple[BarcodeField, ...]
    dpi: int = 203  # resolution of a ZPL printer for this medium
    sheet: SheetLayout | None = None
    gs1: Gs1Settings = field(default_factory=Gs1Settings)
    limits: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))

    @property
    def per_page(self) -> int:
        """Labels per PDF page (1 unless the medium is a sheet)."""
        return self.sheet.per_page if self.sheet else 1

    @property
    def page_size_mm(self) -> tuple[float, float]:
        """The PDF page size."""
        if self.sheet:
            return PAGE_SIZES_MM[self.sheet.page]
        return (self.width_mm, self.height_mm)


@dataclass(frozen=True)
class LabelData:
    """The values one label shows, taken from a device's identity manifest."""

    registration_id: str
    device_id: str
    serial: str
    model: str
    batch: str
    product: str
    date: str
    thumbprint: str
    attestation: str

    def value(self, binding: str) -> str:
        """Return the value of one binding (see :data:`BINDINGS`)."""
        return str(getattr(self, binding))

    @classmethod
    def from_manifest(cls, manifest: IdentityManifest) -> LabelData:
        """Take the label's values from a manifest (short thumbprint: first 16 hex digits)."""
        thumb = manifest.certificate_thumbprint or manifest.ek_sha256
        return cls(
            registration_id=manifest.registration_id,
            device_id=manifest.device_id,
            serial=manifest.board.serial,
            model=manifest.board.model,
            batch=manifest.batch,
            product=manifest.product,
            date=manifest.provisioned_at[:10],
            thumbprint=thumb.replace(":", "").lower()[:THUMBPRINT_CHARS],
            attestation=str(manifest.attestation),
        )
