"""The label template library: ``*.toml`` files in a directory, each proven to fit when loaded."""

from __future__ import annotations

from pathlib import Path

from station.adapters.labels.barcodes import ReportlabMeasurer
from station.domain.errors import LabelTemplateError, NotFoundError
from station.domain.labels import LabelTemplate, check_template_fits, parse_template
from station.inputs import MAX_CONFIG, read_bounded

# The templates shipped with the project (repository layout: <root>/templates/labels).
DEFAULT_TEMPLATE_DIR = Path(__file__).resolve().parents[3] / "templates" / "labels"


def load_template(path: Path) -> LabelTemplate:
    """Read, parse and prove one template file.

    Raises:
        LabelTemplateError: unreadable, malformed, or unable to hold its largest data.
    """
    try:
        text = read_bounded(
            path, limit=MAX_CONFIG, what="label template", error=LabelTemplateError
        ).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LabelTemplateError(
            f"cannot read label template {path}: {exc}",
            remedy="Check that the file exists and is UTF-8 text.",
            template=str(path),
        ) from exc
    template = parse_template(text, source=str(path))
    check_template_fits(template, ReportlabMeasurer())
    return template


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
