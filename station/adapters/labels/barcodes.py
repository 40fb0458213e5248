"""Barcode matrices from zxing-cpp, and the measurer the layout rules use.

reportlab's own Data Matrix is a fixed 44x44 C40 symbol with a padding bug (stack-notes §6), so
every symbol comes from zxing-cpp's encoder; reportlab only draws the modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import zxingcpp
from reportlab.pdfbase.pdfmetrics import stringWidth

from station.domain.errors import LabelTemplateError
from station.domain.labels.model import BarcodeKind

_FORMATS = {
    BarcodeKind.QR: zxingcpp.BarcodeFormat.QRCode,
    BarcodeKind.DATAMATRIX: zxingcpp.BarcodeFormat.DataMatrix,
    BarcodeKind.CODE128: zxingcpp.BarcodeFormat.Code128,
}


@dataclass(frozen=True)
class Matrix:
    """A symbol's modules without quiet zone: ``dark[row][column]``; one row for Code 128."""

    columns: int
    rows: int
    dark: tuple[tuple[bool, ...], ...]

    def runs(self) -> list[tuple[int, int, int]]:
        """Merged horizontal runs of dark modules as ``(row, first column, length)``."""
        result = []
        for row_index, row in enumerate(self.dark):
            column = 0
            while column < self.columns:
                if row[column]:
                    start = column
                    while column < self.columns and row[column]:
                        column += 1
                    result.append((row_index, start, column - start))
                else:
                    column += 1
        return result


@lru_cache(maxsize=4096)
def encode(kind: BarcodeKind, payload: str) -> Matrix:
    """Encode ``payload`` as a ``kind`` symbol.

    Raises:
        LabelTemplateError: the encoder refused the payload (too long, bad characters).
    """
    try:
        image = zxingcpp.create_barcode(payload, _FORMATS[kind]).to_image(
            scale=1, add_quiet_zones=False
        )
    except (ValueError, RuntimeError) as exc:
        raise LabelTemplateError(
            f"cannot encode a {len(payload)}-character payload as {kind}: {exc}",
            remedy="Choose another symbology or a shorter payload in the template.",
            kind=str(kind),
        ) from exc
    view = memoryview(image)  # type: ignore[arg-type]  # the stub misses the buffer protocol
    height, width = view.shape or (0, 0)
    data = view.tobytes()
    rows = 1 if kind is BarcodeKind.CODE128 else height  # linear: every row is the same
    dark = tuple(tuple(data[r * width + c] == 0 for c in range(width)) for r in range(rows))
    return Matrix(columns=width, rows=rows, dark=dark)


class ReportlabMeasurer:
    """Measures text with reportlab's font metrics and symbols with zxing-cpp."""

    def text_width(self, text: str, font: str, size_pt: float) -> float:
        """Width of ``text`` in points."""
        return float(stringWidth(text, font, size_pt))

    def symbol_modules(self, kind: BarcodeKind, payload: str) -> tuple[int, int]:
        """(columns, rows) of the symbol for ``payload``."""
        matrix = encode(kind, payload)
        return matrix.columns, matrix.rows
