"""Laying out a label: text fitting and barcode sizing through a measurer the renderer supplies.

Nothing here draws or measures glyphs: the adapter that renders passes a *measurer* (text width,
barcode symbol size), so the same rules decide layout in the PDF, in the ZPL and at load time,
where :func:`check_template_fits` proves a template can hold its largest possible data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from station.domain.errors import LabelTemplateError
from station.domain.labels.model import (
    BINDINGS,
    DEFAULT_LIMITS,
    PT_PER_MM,
    QUIET_ZONE,
    BarcodeField,
    BarcodeKind,
    LabelData,
    LabelTemplate,
    TextField,
)
from station.domain.labels.payloads import build_payload


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
