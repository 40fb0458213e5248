"""Identity labels as pure data: templates, the data a label shows, payloads and text fitting.

A *template* (``templates/labels/*.toml``) fixes the physical medium (a die-cut label, continuous
tape or a sheet of N labels), the text fields bound to the identity manifest and the barcodes with
their payload. Nothing here draws or measures glyphs: the adapter that renders passes a *measurer*
(text width, barcode symbol size), so the same rules decide layout in the PDF, in the ZPL and at
load time, where :func:`check_template_fits` proves a template can hold its largest possible data.

Coordinates are millimetres from the label's top-left corner; font sizes are points.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from urllib.parse import quote, unquote

from station.domain.errors import (
    InvalidRegistrationIdError,
    LabelTemplateError,
    ScanMismatchError,
)
from station.domain.manifest import IdentityManifest
from station.domain.registration import MAX_LENGTH, normalize_registration_id

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


# ------------------------------------------------------------------------------------- payloads
def _escape_compact(value: str) -> str:
    return quote(value, safe=" !\"#$&'()*+,-./:<>?@[\\]^_`{|}~")


def compact_payload(data: LabelData) -> str:
    """Build ``rid=<id>;sn=<serial>;b=<batch>[;tp=<thumbprint>]`` (``%``, ``;``, ``=`` escaped)."""
    parts = [("rid", data.registration_id), ("sn", data.serial), ("b", data.batch)]
    if data.thumbprint:
        parts.append(("tp", data.thumbprint))
    return ";".join(f"{key}={_escape_compact(value)}" for key, value in parts)


def gs1_digital_link(data: LabelData, settings: Gs1Settings) -> str:
    """Build a GS1 Digital Link URI: GTIN (AI 01), serial (AI 21), registration ID as ``rid``."""
    resolver = settings.resolver.rstrip("/")
    serial = quote(data.serial, safe="")
    rid = quote(data.registration_id, safe="")
    return f"{resolver}/01/{settings.gtin}/21/{serial}?rid={rid}"


def build_payload(kind: PayloadKind, data: LabelData, template: LabelTemplate) -> str:
    """Return the exact text a barcode of ``kind`` encodes for ``data``."""
    if kind is PayloadKind.REGISTRATION_ID:
        return data.registration_id
    if kind is PayloadKind.SERIAL:
        return data.serial
    if kind is PayloadKind.COMPACT:
        return compact_payload(data)
    return gs1_digital_link(data, template.gs1)


@dataclass(frozen=True)
class ScannedIdentity:
    """What a scanned label says about the device it belongs to."""

    form: str  # "registration_id" | "compact" | "gs1_digital_link"
    registration_id: str
    serial: str = ""


def parse_scanned(text: str) -> ScannedIdentity:
    """Read what a scanner returned (any of the payload forms a template can print).

    Raises:
        ScanMismatchError: the text is none of the station's payload forms.

    """
    raw = text.strip()
    if raw.startswith("]") and len(raw) > 3:  # AIM symbology identifier some scanners prepend
        raw = raw[3:]
    if raw.lower().startswith(("http://", "https://")):
        match = re.search(r"/01/(\d{14})/21/([^/?#]+)", raw)
        query = raw.partition("?")[2]
        pairs = dict(item.partition("=")[::2] for item in query.split("&") if item)
        if match is None or "rid" not in pairs:
            raise _unreadable(text, "a GS1 Digital Link without GTIN, serial and rid")
        rid = _registration_id(unquote(pairs["rid"]), text)
        return ScannedIdentity("gs1_digital_link", rid, unquote(match.group(2)))
    if "=" in raw:
        values = {
            key: unquote(value)
            for key, _, value in (item.partition("=") for item in raw.split(";") if item)
        }
        if "rid" not in values:
            raise _unreadable(text, "a key=value code without rid")
        rid = _registration_id(values["rid"], text)
        return ScannedIdentity("compact", rid, values.get("sn", ""))
    return ScannedIdentity("registration_id", _registration_id(raw, text))


def _registration_id(value: str, scanned: str) -> str:
    try:
        return normalize_registration_id(value)
    except InvalidRegistrationIdError as exc:
        raise _unreadable(scanned, "not a valid registration ID") from exc


def _unreadable(text: str, why: str) -> ScanMismatchError:
    return ScanMismatchError(
        f"the scanned code is not a station label ({why})",
        remedy="Scan the identity code on the device label, not another barcode.",
        scanned=text[:200],
    )


# ------------------------------------------------------------------------------------- fitting
class Measurer(Protocol):
    """Measures text and barcodes for the layout rules (supplied by the rendering adapter)."""

    def text_width(self, text: str, font: str, size_pt: float) -> float:
        """Width of ``text`` in points."""
        ...

    def symbol_modules(self, kind: BarcodeKind, payload: str) -> tuple[int, int]:
        """(columns, rows) of the symbol for ``payload``; rows is 1 for Code 128."""
        ...


@dataclass(frozen=True)
class FittedText:
    """Text laid out to fit its box: the lines and the font size that made them fit."""

    lines: tuple[str, ...]
    size_pt: float
    line_height_pt: float


LINE_SPACING = 1.15
_BREAK_AFTER = " -.:_/;,="


def _wrap(text: str, fits: Callable[[str], bool]) -> list[str]:
    """Greedy wrap: break after a space or punctuation if possible, else between characters."""
    lines: list[str] = []
    rest = text
    while rest:
        if fits(rest):
            lines.append(rest)
            break
        cut = 1
        while cut < len(rest) and fits(rest[: cut + 1]):
            cut += 1
        soft = max(rest.rfind(ch, 0, cut) for ch in _BREAK_AFTER)
        # Break at a space or punctuation only if that keeps the line at least half full.
        if soft > 0 and soft >= cut // 2 and rest[soft] == " ":
            lines.append(rest[:soft])
            rest = rest[soft + 1 :]
            continue
        if soft >= cut // 2:
            cut = soft + 1
        lines.append(rest[:cut])
        rest = rest[cut:]
    return lines


def fit_text(text: str, text_field: TextField, measure: Measurer) -> FittedText | None:
    """Shrink (down to the field's minimum size), then wrap (up to its line limit).

    Returns ``None`` when the text cannot fit: callers raise, the station never cuts text.
    """
    width = text_field.box.width_mm * PT_PER_MM
    height = text_field.box.height_mm * PT_PER_MM
    size = text_field.size_pt
    while size >= text_field.min_size_pt - 1e-9:
        line_height = size * LINE_SPACING

        def fits(candidate: str, at: float = size) -> bool:
            return measure.text_width(candidate, text_field.font, at) <= width

        if fits(text) and size <= height + 1e-9:
            return FittedText((text,), size, line_height)
        if text_field.max_lines > 1:
            lines = _wrap(text, fits)
            used = size + (len(lines) - 1) * line_height
            if len(lines) <= text_field.max_lines and used <= height + 1e-9:
                return FittedText(tuple(lines), size, line_height)
        size = round(size - 0.25, 2)
    return None


@dataclass(frozen=True)
class PlacedBarcode:
    """A barcode's payload and the module size that puts it, with quiet zone, in its box."""

    field: BarcodeField
    payload: str
    columns: int
    rows: int
    module_mm: float


def place_barcode(barcode: BarcodeField, payload: str, measure: Measurer) -> PlacedBarcode | None:
    """Size a symbol for its box; ``None`` if its modules would be below the field's minimum."""
    columns, rows = measure.symbol_modules(barcode.kind, payload)
    quiet = QUIET_ZONE[str(barcode.kind)]
    across = barcode.box.width_mm / (columns + 2 * quiet)
    if barcode.kind is BarcodeKind.CODE128:
        module = across  # bars take the box's full height
    else:
        module = min(across, barcode.box.height_mm / (rows + 2 * quiet))
    if module + 1e-9 < barcode.min_module_mm:
        return None
    return PlacedBarcode(barcode, payload, columns, rows, module)


def render_text(text_field: TextField, data: LabelData) -> str:
    """Return the text of a field for ``data`` (empty values show as ``-``)."""
    values = {name: (data.value(name) or "-") for name in BINDINGS}
    return text_field.text.format(**values)


def check_data(template: LabelTemplate, data: LabelData) -> None:
    """Refuse data longer than the template's limits (the limits the layout was proven for).

    Raises:
        LabelTemplateError: naming the field and the limit.

    """
    for name in BINDINGS:
        limit = template.limits.get(name, DEFAULT_LIMITS[name])
        value = data.value(name)
        if len(value) > limit:
            raise LabelTemplateError(
                f"the {name} {value[:40]!r} has {len(value)} characters; template "
                f"{template.name!r} holds at most {limit}",
                remedy="Use a template with room for longer values (see templates/labels/).",
                template=template.name,
                binding=name,
                limit=limit,
            )


def layout_label(
    template: LabelTemplate, data: LabelData, measure: Measurer
) -> tuple[list[tuple[TextField, FittedText]], list[PlacedBarcode]]:
    """Lay out one label: every text fitted and every barcode sized, or an error.

    Raises:
        LabelTemplateError: data longer than the template's limits, or a field that cannot fit.

    """
    check_data(template, data)
    texts: list[tuple[TextField, FittedText]] = []
    for text_field in template.texts:
        value = render_text(text_field, data)
        fitted = fit_text(value, text_field, measure)
        if fitted is None:
            raise LabelTemplateError(
                f"text field {text_field.id!r} of template {template.name!r} cannot hold "
                f"{value[:60]!r} even at {text_field.min_size_pt} pt on "
                f"{text_field.max_lines} line(s)",
                remedy="Enlarge the field, allow more lines or a smaller minimum font size.",
                template=template.name,
                field=text_field.id,
            )
        texts.append((text_field, fitted))
    barcodes: list[PlacedBarcode] = []
    for barcode in template.barcodes:
        payload = build_payload(barcode.payload, data, template)
        try:
            placed = place_barcode(barcode, payload, measure)
        except LabelTemplateError as exc:  # the encoder itself refused the payload
            raise LabelTemplateError(
                f"barcode {barcode.id!r} of template {template.name!r} cannot hold a "
                f"{len(payload)}-character {barcode.payload} payload: {exc.message}",
                remedy="Pick a denser symbology or a shorter payload for this barcode.",
                template=template.name,
                field=barcode.id,
            ) from exc
        if placed is None:
            raise LabelTemplateError(
                f"barcode {barcode.id!r} of template {template.name!r} cannot hold a "
                f"{len(payload)}-character {barcode.payload} payload with modules of at least "
                f"{barcode.min_module_mm} mm",
                remedy="Enlarge the barcode box, pick a denser symbology or a shorter payload.",
                template=template.name,
                field=barcode.id,
            )
        barcodes.append(placed)
    return texts, barcodes


def worst_case_data(template: LabelTemplate) -> list[LabelData]:
    """Return data at the template's limits: the widest glyphs, and the densest-to-encode mix."""
    limits = {name: template.limits.get(name, DEFAULT_LIMITS[name]) for name in BINDINGS}

    def wide(name: str) -> str:
        return "W" * limits[name] if name in ("serial", "model", "batch", "product") else ""

    mix = "a1:b2.c3_d4-e5"  # changes encodation often: worst case for Data Matrix and QR

    def mixed(length: int) -> str:
        text = (mix * (length // len(mix) + 1))[:length]
        return text[:-1] + "z" if length > 1 else "z"

    rid = limits["registration_id"]
    sets = []
    for style in ("wide", "mixed"):
        sets.append(
            LabelData(
                registration_id=("m" * rid) if style == "wide" else mixed(rid),
                device_id=("m" * limits["device_id"])
                if style == "wide"
                else mixed(limits["device_id"]),
                serial=wide("serial") if style == "wide" else "S" * limits["serial"],
                model=wide("model") or "M",
                batch=wide("batch") if style == "wide" else "B" * limits["batch"],
                product=wide("product") or "P",
                date="2026-12-31"[: limits["date"]],
                thumbprint="f" * limits["thumbprint"],
                attestation="symmetricKey"[: limits["attestation"]],
            )
        )
    return sets


def check_template_fits(template: LabelTemplate, measure: Measurer) -> None:
    """Prove at load time that the template holds its largest data (else raise).

    Raises:
        LabelTemplateError: a field that cannot fit its worst-case data.

    """
    for data in worst_case_data(template):
        layout_label(template, data, measure)


# ------------------------------------------------------------------------------------- checking
def check_template(template: LabelTemplate, source: str) -> None:
    """Check a template's values and geometry (the adapter has read and typed its file).

    Keys in messages are the template file's (``media.width_mm``, ``text[0].font``).

    Raises:
        LabelTemplateError: an empty name, a value out of range, an unknown binding, a font or
            alignment that does not exist, a field off the label, labels off the sheet.
    """
    if not template.name:
        raise _bad(source, "name must be a non-empty string")
    _positive(source, "media.width_mm", template.width_mm)
    _positive(source, "media.height_mm", template.height_mm)
    _positive(source, "media.dpi", template.dpi)
    if template.sheet is not None:
        _check_sheet(template, template.sheet, source)
    for name, limit in template.limits.items():
        _positive(source, f"limits.{name}", limit)
    if template.limits["registration_id"] > MAX_LENGTH:
        raise _bad(source, f"limits.registration_id cannot exceed {MAX_LENGTH}")
    for index, text_field in enumerate(template.texts):
        _check_text(text_field, f"text[{index}]", source)
    for index, barcode in enumerate(template.barcodes):
        where = f"barcode[{index}]"
        if not barcode.id:
            raise _bad(source, f"{where}.id must be a non-empty string")
        _check_box(barcode.box, where, source)
        _positive(source, f"{where}.min_module_mm", barcode.min_module_mm)
    _check_geometry(template, source)


def _positive(source: str, key: str, value: float) -> None:
    if value <= 0:
        raise _bad(source, f"{key} must be greater than zero")


def _check_box(box: Box, where: str, source: str) -> None:
    _positive(source, f"{where}.width_mm", box.width_mm)
    _positive(source, f"{where}.height_mm", box.height_mm)


def _check_sheet(template: LabelTemplate, sheet: SheetLayout, source: str) -> None:
    if sheet.page not in PAGE_SIZES_MM:
        raise _bad(source, f"sheet.page must be one of {sorted(PAGE_SIZES_MM)}")
    _positive(source, "sheet.columns", sheet.columns)
    _positive(source, "sheet.rows", sheet.rows)
    width, height = template.width_mm, template.height_mm
    page_w, page_h = PAGE_SIZES_MM[sheet.page]
    right, bottom = sheet.origin(sheet.per_page - 1, width, height)
    if right + width > page_w + 1e-6 or bottom + height > page_h + 1e-6:
        raise _bad(
            source,
            f"{sheet.columns}x{sheet.rows} labels of {width}x{height} mm do not fit on "
            f"{sheet.page}",
        )


def _check_text(text_field: TextField, where: str, source: str) -> None:
    for key in ("id", "text"):
        if not getattr(text_field, key):
            raise _bad(source, f"{where}.{key} must be a non-empty string")
    if text_field.font not in FONTS:
        raise _bad(source, f"{where}.font must be one of {list(FONTS)}")
    if text_field.align not in ("left", "center"):
        raise _bad(source, f"{where}.align must be 'left' or 'center'")
    _check_box(text_field.box, where, source)
    _positive(source, f"{where}.size_pt", text_field.size_pt)
    _positive(source, f"{where}.min_size_pt", text_field.min_size_pt)
    _positive(source, f"{where}.max_lines", text_field.max_lines)
    try:
        unknown = [name for name in text_field.bindings if name not in BINDINGS]
    except ValueError as exc:
        raise _bad(source, f"{where}.text is not a valid format string: {exc}") from exc
    if unknown:
        raise _bad(
            source, f"{where}.text uses unknown field(s) {unknown}; known: {', '.join(BINDINGS)}"
        )
    if text_field.min_size_pt > text_field.size_pt:
        raise _bad(source, f"{where}.min_size_pt is larger than size_pt")


def _check_geometry(template: LabelTemplate, source: str) -> None:
    ids = [f.id for f in template.texts] + [b.id for b in template.barcodes]
    duplicates = [name for name, count in Counter(ids).items() if count > 1]
    if duplicates:
        raise _bad(source, f"field ids must be unique; repeated: {duplicates}")
    if not template.texts and not template.barcodes:
        raise _bad(source, "a template needs at least one text or barcode field")
    for item_id, box in _boxes(template):
        if box.x_mm < 0 or box.y_mm < 0:
            raise _bad(source, f"field {item_id!r} starts outside the label")
        if box.x_mm + box.width_mm > template.width_mm + 1e-6 or (
            box.y_mm + box.height_mm > template.height_mm + 1e-6
        ):
            raise _bad(
                source,
                f"field {item_id!r} ends outside the {template.width_mm}x{template.height_mm} "
                "mm label",
            )
    if any(b.payload is PayloadKind.GS1_DIGITAL_LINK for b in template.barcodes):
        if not is_valid_gtin(template.gs1.gtin):
            raise _bad(source, "a gs1_digital_link payload needs [gs1] gtin: 14 digits, valid")
        if not template.gs1.resolver.startswith("https://"):
            raise _bad(source, "[gs1] resolver must be an https:// URL")


def _boxes(template: LabelTemplate) -> Iterable[tuple[str, Box]]:
    for text_field in template.texts:
        yield text_field.id, text_field.box
    for barcode in template.barcodes:
        yield barcode.id, barcode.box


def is_valid_gtin(gtin: str) -> bool:
    """Whether ``gtin`` is a GTIN-14 with a correct GS1 check digit."""
    if len(gtin) != 14 or not gtin.isdigit():
        return False
    digits = [int(c) for c in gtin]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits[:-1]))
    return (10 - total % 10) % 10 == digits[-1]


def _bad(source: str, why: str) -> LabelTemplateError:
    return LabelTemplateError(
        f"label template {source}: {why}",
        remedy="Correct the template file (see docs/operator-guide.md, Labels).",
        template=source,
    )


# ------------------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class ReportDevice:
    """One device row of a batch report."""

    registration_id: str
    serial: str
    attestation: str
    status: str
    thumbprint: str
    provisioned_at: str


@dataclass(frozen=True)
class BatchReport:
    """Everything the batch report PDF shows (built by the label service, drawn by an adapter)."""

    batch: str
    product: str
    station: str
    generated_at: str
    first_at: str
    last_at: str
    devices: tuple[ReportDevice, ...]
    by_attestation: tuple[tuple[str, int], ...]
    by_result: tuple[tuple[str, int], ...]
    failure_reasons: tuple[tuple[str, int], ...]  # pareto order: most frequent first
    units_per_hour: tuple[tuple[str, int], ...]  # ("2026-11-26T09", 12), in time order
    labels_printed: int
    labels_reprinted: int

    @property
    def passed(self) -> int:
        """Devices that reached ``provisioned``."""
        return dict(self.by_result).get("provisioned", 0)

    @property
    def attempts(self) -> int:
        """Passed devices plus recorded failures."""
        return self.passed + sum(count for _, count in self.failure_reasons)

    @property
    def yield_percent(self) -> float:
        """First-pass yield: passed / attempts, in percent (0 when nothing was attempted)."""
        return 100.0 * self.passed / self.attempts if self.attempts else 0.0


def summarize_batch(
    *,
    batch: str,
    product: str,
    station: str,
    generated_at: datetime,
    devices: Sequence[ReportDevice],
    failures: Sequence[str],
    labels_printed: int = 0,
    labels_reprinted: int = 0,
) -> BatchReport:
    """Count a batch: by attestation, by result, failure pareto and units per hour."""
    times = sorted(d.provisioned_at for d in devices if d.provisioned_at)
    per_hour = Counter(t[:13] for t in times)
    reasons = Counter(failures)
    return BatchReport(
        batch=batch,
        product=product,
        station=station,
        generated_at=generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        first_at=times[0] if times else "",
        last_at=times[-1] if times else "",
        devices=tuple(devices),
        by_attestation=tuple(sorted(Counter(d.attestation for d in devices).items())),
        by_result=tuple(sorted(Counter(d.status for d in devices).items())),
        failure_reasons=tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        units_per_hour=tuple(sorted(per_hour.items())),
        labels_printed=labels_printed,
        labels_reprinted=labels_reprinted,
    )


@dataclass(frozen=True)
class PrintReceipt:
    """What a printer accepted: the station counts a label as printed only with a receipt."""

    printer: str  # the printer spec ("cups:QA-Zebra", "zpl://10.0.0.5:9100", "file:/tmp/x.pdf")
    labels: int
    job: str = ""  # the spooler's job id, a file path, or the bytes sent
