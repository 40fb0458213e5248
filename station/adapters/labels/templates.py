"""The label template library: ``*.toml`` files in a directory, each proven to fit when loaded.

A template file is read by the station's one TOML loader into the file-shaped tables below
(types and unknown keys checked there, named by key and file), then turned into the domain's
:class:`LabelTemplate`, whose values and geometry the domain checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from station.adapters.labels.barcodes import ReportlabMeasurer
from station.adapters.tomlfile import build, parse_toml, read_toml
from station.domain.errors import LabelTemplateError, NotFoundError
from station.domain.labels.checks import check_template
from station.domain.labels.layout import check_template_fits
from station.domain.labels.model import (
    BINDINGS,
    DEFAULT_LIMITS,
    BarcodeField,
    BarcodeKind,
    Box,
    Gs1Settings,
    LabelTemplate,
    MediaKind,
    PayloadKind,
    SheetLayout,
    TextField,
)

# The templates shipped with the project (repository layout: <root>/templates/labels).
DEFAULT_TEMPLATE_DIR = Path(__file__).resolve().parents[3] / "templates" / "labels"


_WHAT = "label template"


@dataclass(frozen=True)
class _MediaTable:
    width_mm: float
    height_mm: float
    kind: str = str(MediaKind.DIE_CUT)
    dpi: int = 203


@dataclass(frozen=True)
class _TextTable:
    x_mm: float
    y_mm: float
    width_mm: float
    height_mm: float
    id: str = ""
    text: str = ""
    font: str = "Helvetica"
    size_pt: float = 8.0
    min_size_pt: float = 5.0
    max_lines: int = 1
    align: str = "left"


@dataclass(frozen=True)
class _BarcodeTable:
    x_mm: float
    y_mm: float
    width_mm: float
    height_mm: float
    id: str = ""
    kind: str = ""
    payload: str = str(PayloadKind.REGISTRATION_ID)
    min_module_mm: float = 0.25


@dataclass(frozen=True)
class _LimitsTable:  # one optional limit per binding (see BINDINGS)
    serial: int | None = None
    model: int | None = None
    registration_id: int | None = None
    device_id: int | None = None
    date: int | None = None
    batch: int | None = None
    product: int | None = None
    thumbprint: int | None = None
    attestation: int | None = None


@dataclass(frozen=True)
class _TemplateFile:
    media: _MediaTable
    name: str = ""
    description: str = ""
    text: tuple[_TextTable, ...] = ()
    barcode: tuple[_BarcodeTable, ...] = ()
    sheet: SheetLayout | None = None
    gs1: Gs1Settings = field(default_factory=Gs1Settings)
    limits: _LimitsTable = field(default_factory=_LimitsTable)


def parse_template(text: str, *, source: str) -> LabelTemplate:
    """Parse a template's TOML text (read from ``source``) and check it (not yet its fit).

    Raises:
        LabelTemplateError: not TOML, unknown keys, bad values, fields off the label.
    """
    return _template(parse_toml(text, what=_WHAT, source=source, error=LabelTemplateError), source)


def load_template(path: Path) -> LabelTemplate:
    """Read, parse and prove one template file.

    Raises:
        LabelTemplateError: unreadable, malformed, or unable to hold its largest data.
    """
    template = _template(read_toml(path, what=_WHAT, error=LabelTemplateError), str(path))
    check_template_fits(template, ReportlabMeasurer())
    return template


def _template(raw: dict[str, Any], source: str) -> LabelTemplate:
    if "media" not in raw:
        raise _bad(source, "needs a [media] table with width_mm and height_mm")
    table = build(_TemplateFile, raw, file=source, error=LabelTemplateError)
    media = _choice(MediaKind, table.media.kind, "media.kind", source)
    if media is not MediaKind.SHEET and table.sheet is not None:
        raise _bad(source, "a [sheet] section needs media.kind = 'sheet'")
    limits = dict(DEFAULT_LIMITS)
    for name in BINDINGS:
        value = getattr(table.limits, name)
        if value is not None:
            limits[name] = value
    template = LabelTemplate(
        name=table.name,
        description=table.description,
        media=media,
        width_mm=table.media.width_mm,
        height_mm=table.media.height_mm,
        dpi=table.media.dpi,
        texts=tuple(_text(item) for item in table.text),
        barcodes=tuple(
            _barcode(item, f"barcode[{i}]", source) for i, item in enumerate(table.barcode)
        ),
        sheet=(table.sheet or SheetLayout()) if media is MediaKind.SHEET else None,
        gs1=table.gs1,
        limits=limits,
    )
    check_template(template, source)
    return template


def _box(item: _TextTable | _BarcodeTable) -> Box:
    return Box(x_mm=item.x_mm, y_mm=item.y_mm, width_mm=item.width_mm, height_mm=item.height_mm)


def _text(item: _TextTable) -> TextField:
    return TextField(
        id=item.id,
        text=item.text,
        box=_box(item),
        font=item.font,
        size_pt=item.size_pt,
        min_size_pt=item.min_size_pt,
        max_lines=item.max_lines,
        align=item.align,
    )


def _barcode(item: _BarcodeTable, where: str, source: str) -> BarcodeField:
    return BarcodeField(
        id=item.id,
        kind=_choice(BarcodeKind, item.kind, f"{where}.kind", source),
        payload=_choice(PayloadKind, item.payload, f"{where}.payload", source),
        box=_box(item),
        min_module_mm=item.min_module_mm,
    )


_Kind = TypeVar("_Kind", MediaKind, BarcodeKind, PayloadKind)


def _choice(kind: type[_Kind], value: str, key: str, source: str) -> _Kind:
    try:
        return kind(value)
    except ValueError:
        raise _bad(source, f"{key} must be one of {[m.value for m in kind]}") from None


def _bad(source: str, why: str) -> LabelTemplateError:
    return LabelTemplateError(
        f"{_WHAT} {source}: {why}",
        remedy="Correct the template file (see docs/operator-guide.md, Labels).",
        template=source,
    )


class TemplateLibrary:
    """The templates of one directory, loaded lazily and cached by name."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or DEFAULT_TEMPLATE_DIR
        self._cache: dict[str, LabelTemplate] = {}

    def names(self) -> list[str]:
        """Template names (file stems) available in the directory."""
        return sorted(path.stem for path in self.directory.glob("*.toml"))

    def get(self, name: str) -> LabelTemplate:
        """Return the template called ``name`` (a file stem, or a path to a .toml file).

        Raises:
            NotFoundError: no such template.
            LabelTemplateError: the template is invalid.
        """
        if name in self._cache:
            return self._cache[name]
        path = Path(name) if name.endswith(".toml") else self.directory / f"{name}.toml"
        if not path.is_file():
            raise NotFoundError(
                f"no label template {name!r}",
                remedy=f"Pick one of: {', '.join(self.names()) or '(none found)'}.",
                template=name,
                directory=str(self.directory),
            )
        template = load_template(path)
        self._cache[name] = template
        return template
