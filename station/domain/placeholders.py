"""``{name}`` placeholders in templates: which names a template uses, checked at load time."""

from __future__ import annotations

import string
from collections.abc import Set

from station.domain.errors import ValidationError


def check_placeholders(text: str, allowed: Set[str], *, where: str, key: str) -> None:
    """Raise if ``text`` is malformed or uses a placeholder outside ``allowed``.

    Args:
        text: the template text (``str.format`` syntax).
        allowed: the placeholder names the template may use.
        where: what the template belongs to, for the message ("product thermo").
        key: which key of it holds ``text``.

    Raises:
        ValidationError: naming ``where``, ``key`` and the unknown names.
    """
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise ValidationError(f"{where}: {key} is malformed: {exc}", key=key) from exc
    unknown = names - set(allowed)
    if unknown or "" in names:
        raise ValidationError(
            f"{where}: {key} uses unknown placeholders {sorted(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}",
            key=key,
        )
