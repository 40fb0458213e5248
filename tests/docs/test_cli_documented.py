"""Every station command and option is in the admin guide or the operator guide (issue 21).

The command tree is walked through click, so a new command or option without a line in a guide
fails here. A command counts as documented when a line names ``station`` and the command's words;
an option when such a line also carries the option.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import click

from station.cli.main import PLUGIN_GROUP, cli
from tests.support.paths import REPO_ROOT

GUIDES = ("admin-guide.md", "operator-guide.md")
_LINES = [
    line
    for name in GUIDES
    for line in (REPO_ROOT / "docs" / name).read_text(encoding="utf-8").splitlines()
]


def _plugin_names() -> set[str]:
    from importlib.metadata import entry_points

    return {entry.name for entry in entry_points(group=PLUGIN_GROUP)}


def _commands(command: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            if not path and name in _plugin_names():
                continue  # the lab's commands are documented in docs/lab-dps.md and README.md
            yield from _commands(sub, (*path, name))


def _command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def _options(command: click.Command) -> list[str]:
    return [
        opt
        for param in command.params
        if isinstance(param, click.Option)
        for opt in param.opts
        if opt.startswith("--") and opt != "--help"
    ]


def _mentions(words: tuple[str, ...], line: str) -> bool:
    pattern = r"\bstation\b.*(?<![\w-])" + r"\s+".join(map(re.escape, words)) + r"(?![\w-])"
    return re.search(pattern, line) is not None


def _undocumented() -> list[str]:
    missing = []
    for path in _commands(cli, ()):
        lines = [line for line in _LINES if _mentions(path, line)] if path else _LINES
        name = " ".join(("station", *path))
        if not lines:
            missing.append(name)
            continue
        for option in _options(_command_at(path)):
            if not any(re.search(re.escape(option) + r"(?![\w-])", line) for line in lines):
                missing.append(f"{name} {option}")
    return missing


def test_every_command_and_option_is_in_a_guide() -> None:
    assert _undocumented() == []


def test_the_check_would_see_a_new_option() -> None:
    extra = click.Option(["--surely-not-documented"], is_flag=True)
    command = _command_at(("batch", "seal"))
    command.params.append(extra)
    try:
        assert _undocumented() == ["station batch seal --surely-not-documented"]
    finally:
        command.params.remove(extra)
