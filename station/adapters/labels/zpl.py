"""ZPL II for Zebra printers, generated from the same template and layout as the PDF.

Text lines are the lines the layout rules fitted (so wrapping is identical); barcodes use the
printer's own QR (``^BQ``), Data Matrix (``^BX``) and Code 128 (``^BC``) encoders with exactly the
payloads the PDF encodes. Field data goes through ``^FH`` hex escapes so a ``^`` or ``~`` in a
value can never start a command.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from station.adapters.labels.barcodes import ReportlabMeasurer
from station.domain.errors import LabelError
from station.domain.labels.layout import PlacedBarcode, layout_label
from station.domain.labels.model import BarcodeKind, LabelData, LabelTemplate, MediaKind

MM_PER_INCH = 25.4
QR_ECC = "M"  # error correction level used in ^BQ field data ("MA," = level M, automatic mode)


def escape_field(value: str) -> str:
    r"""Escape ``value`` for ``^FH\``: ``^``, ``~``, ``\`` and control characters as ``\hh``."""
    out = []
    for char in value:
        if char in "^~\\" or ord(char) < 0x20:
            out.append("".join(f"\\{byte:02X}" for byte in char.encode("utf-8")))
        else:
            out.append(char)
    return "".join(out)


def render_zpl(template: LabelTemplate, labels: Sequence[LabelData]) -> str:
    """Return one ``^XA ... ^XZ`` format per label.

    Raises:
        LabelError: the template is a sheet (Zebra printers take die-cut labels or tape).
        LabelTemplateError: a value does not fit the template.
    """
    if template.media is MediaKind.SHEET:
        raise LabelError(
            f"template {template.name!r} is an A4/Letter sheet; a ZPL printer needs a label "
            "or tape template",
            remedy="Pick a die-cut or continuous template for this printer, or print to CUPS.",
            template=template.name,
        )
    measurer = ReportlabMeasurer()
    dots_per_mm = template.dpi / MM_PER_INCH

    def dots(value_mm: float) -> int:
        return round(value_mm * dots_per_mm)

    formats = []
    for data in labels:
        texts, barcodes = layout_label(template, data, measurer)
        cmds = [
            "^XA",
            "^CI28",  # field data is UTF-8
            f"^PW{dots(template.width_mm)}",
            f"^LL{dots(template.height_mm)}",
            "^MNN" if template.media is MediaKind.CONTINUOUS else "^MNY",
            "^LH0,0",
        ]
        for text_field, fitted in texts:
            height = max(1, round(fitted.size_pt / 72 * template.dpi))
            step = fitted.line_height_pt / 72 * template.dpi
            for index, line in enumerate(fitted.lines):
                x = dots(text_field.box.x_mm)
                y = dots(text_field.box.y_mm) + round(index * step)
                block = ""
                if text_field.align == "center":
                    block = f"^FB{dots(text_field.box.width_mm)},1,0,C,0"
                cmds.append(
                    f"^FO{x},{y}^A0N,{height},{height}{block}^FH\\^FD{escape_field(line)}^FS"
                )
        for placed in barcodes:
            cmds.append(_barcode(placed, dots, dots_per_mm))
        cmds.append("^PQ1")
        cmds.append("^XZ")
        formats.append("\n".join(cmds))
    return "\n".join(formats) + "\n"


def _barcode(placed: PlacedBarcode, dots: Callable[[float], int], dots_per_mm: float) -> str:
    """One barcode field: module size in whole dots, centred in its box like the PDF."""
    box = placed.field.box
    module = max(1, math.floor(placed.module_mm * dots_per_mm))
    width = placed.columns * module
    x = dots(box.x_mm) + max(0, (dots(box.width_mm) - width) // 2)
    payload = escape_field(placed.payload)
    kind = placed.field.kind
    if kind is BarcodeKind.CODE128:
        height = dots(box.height_mm)
        y = dots(box.y_mm)
        # ^BC mode A: the printer picks subsets itself; no interpretation line (text is separate).
        return f"^FO{x},{y}^BY{module}^BCN,{height},N,N,N,A^FH\\^FD{payload}^FS"
    height = placed.rows * module
    y = dots(box.y_mm) + max(0, (dots(box.height_mm) - height) // 2)
    if kind is BarcodeKind.QR:
        return f"^FO{x},{y}^BQN,2,{min(module, 10)}^FH\\^FD{QR_ECC}A,{payload}^FS"
    return f"^FO{x},{y}^BXN,{module},200^FH\\^FD{payload}^FS"
