"""The GUI and the CLI use the services the root hands out, never the adapters behind them.

import-linter checks the imports (pyproject.toml: no adapter, no port, no store-level helper in
``station.gui`` / ``station.cli``). A method call is beyond it: ``station.store()`` needs no import.
This test reads the interfaces' source and refuses calls of the root's adapter factories.
"""

from __future__ import annotations

import ast
from pathlib import Path

from station.bootstrap import Station

REPO = Path(__file__).resolve().parents[2]
INTERFACES = ("station/gui", "station/cli")

#: Root methods that hand out an adapter (the store, the cloud side, product files) for the
#: services' own use. Board access (sessions, discovery, hot-plug) and the output-file checks
#: stay open to the interfaces: they are the commands' subject, not a way around a service.
ADAPTER_FACTORIES = frozenset(
    {
        "store",
        "push_outbox",
        "enrollment_service",
        "group_keys",
        "manifest_signer",
        "export_files",
        "ek_verifier",
        "products",
    }
)


def _calls(source: str) -> list[tuple[int, str]]:
    """(line, method) of every ``<anything>.<adapter factory>(...)`` call in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ADAPTER_FACTORIES
        ):
            found.append((node.lineno, node.func.attr))
    return found


def _interface_files() -> list[Path]:
    return sorted(p for folder in INTERFACES for p in (REPO / folder).rglob("*.py"))


def test_every_listed_factory_is_a_root_method() -> None:
    # a method renamed in bootstrap must not silently fall out of the rule
    assert {name for name in ADAPTER_FACTORIES if callable(getattr(Station, name, None))} == set(
        ADAPTER_FACTORIES
    )


def test_the_rule_finds_a_store_call() -> None:
    assert _calls("def job(s):\n    return s.store().devices.get('x')\n") == [(2, "store")]
    assert _calls("def job(s):\n    return s.devices().get('x')\n") == []


def test_gui_and_cli_call_no_adapter_factory() -> None:
    files = _interface_files()
    assert len(files) > 20  # both interfaces were read
    offending = [
        f"{path.relative_to(REPO)}:{line}: .{name}()"
        for path in files
        for line, name in _calls(path.read_text(encoding="utf-8"))
    ]
    assert offending == [], "use (or add) a service method instead:\n" + "\n".join(offending)
