"""Every remedy the station can raise reads, in the window, without a command to type."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from station.domain.errors import (
    PermissionDeniedError,
    StationError,
    TransitionError,
    UnresolvedJobsError,
)
from station.gui.remedies import says_cli, window_remedy

REPO = Path(__file__).resolve().parents[2]
#: code the window runs (the CLI and the lab speak to a terminal)
SOURCES = [
    path
    for folder in ("station", "hsm")
    for path in sorted((REPO / folder).rglob("*.py"))
    if not {"cli", "gui"} & set(path.relative_to(REPO).parts)
]


def _remedies() -> list[tuple[str, str]]:
    """(where, text) of every ``remedy=`` string literal (f-string holes filled with ``X``)."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.keyword) or node.arg != "remedy":
                continue
            text = _text(node.value)
            if text:
                found.append((f"{path.relative_to(REPO)}:{node.value.lineno}", text))
    return found


def _text(value: ast.expr) -> str:
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    if isinstance(value, ast.JoinedStr):
        return "".join(
            _text(part) if isinstance(part, ast.Constant) else "X" for part in value.values
        )
    if isinstance(value, ast.BinOp):
        return _text(value.left) + _text(value.right)
    return ""


REMEDIES = _remedies()


def test_the_scan_finds_the_cli_remedies_it_must_translate():
    assert len(REMEDIES) > 100
    assert sum(says_cli(text) for _, text in REMEDIES) > 30


@pytest.mark.parametrize(("where", "text"), REMEDIES, ids=[w for w, _ in REMEDIES])
def test_no_remedy_in_the_window_asks_for_a_command(where, text):
    said = window_remedy(StationError("x", remedy=text))
    assert not says_cli(said), f"{where}: {said}"
    if not says_cli(text):
        assert said == text  # remedies already in plain words are kept


def test_known_remedies_point_at_the_window():
    denied = PermissionDeniedError(
        "x", remedy="Log in (or pass --operator NAME) as an operator with that role."
    )
    assert window_remedy(denied) == (
        "Lock the window (Lock) and log in as an operator with that role."
    )
    not_sealed = TransitionError("x", remedy="Seal it first: station batch seal WO-1")
    assert "press Seal" in window_remedy(not_sealed)
    assert "Void open jobs…" in window_remedy(UnresolvedJobsError("x", remedy="Resume or void"))
    unknown = StationError("x", remedy="Run 'station frobnicate --now'.")
    assert window_remedy(unknown).startswith("Call the station admin (error station.error)")
    reprint = StationError("x", remedy='Ask QA to reprint it: station label reprint D --reason "."')
    assert "Reprint label…" in window_remedy(reprint)
