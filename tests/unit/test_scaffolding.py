"""Test scaffolding: what several modules share lives in tests/support, never in a conftest.

pytest loads each conftest.py as a plugin for its folder; importing one from a module loads it a
second time under another name (fixtures defined twice, module state split in two).
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _conftest_imports(source: str) -> list[int]:
    """Lines of ``source`` that import a conftest module (absolute or relative)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        if any(part == "conftest" for name in names for part in name.split(".")):
            lines.append(node.lineno)
    return lines


def test_the_rule_finds_each_form_of_conftest_import() -> None:
    assert _conftest_imports("from tests.ca.conftest import device_csr\n") == [1]
    assert _conftest_imports("x = 1\nfrom .conftest import call\n") == [2]
    assert _conftest_imports("from . import conftest\n") == [1]
    assert _conftest_imports("from tests.support.ca import device_csr\n") == []


def test_no_test_module_imports_a_conftest() -> None:
    modules = sorted(TESTS.rglob("*.py"))
    assert len(modules) > 100  # the whole tree was read
    offending = [
        f"{path.relative_to(TESTS.parent)}:{line}"
        for path in modules
        for line in _conftest_imports(path.read_text(encoding="utf-8"))
    ]
    assert offending == [], "move what is shared into tests/support:\n" + "\n".join(offending)
