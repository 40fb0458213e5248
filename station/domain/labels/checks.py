"""The rules a label template's values and geometry must follow (checked when it is loaded)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from station.domain.errors import LabelTemplateError
from station.domain.labels.model import (
    BINDINGS,
    FONTS,
    PAGE_SIZES_MM,
    Box,
    LabelTemplate,
    PayloadKind,
    SheetLayout,
    TextField,
)
from station.domain.labels.payloads import is_valid_gtin
from station.domain.registration import MAX_LENGTH


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


def _bad(source: str, why: str) -> LabelTemplateError:
    return LabelTemplateError(
        f"label template {source}: {why}",
        remedy="Correct the template file (see docs/operator-guide.md, Labels).",
        template=source,
    )
