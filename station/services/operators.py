"""Operators: who may use the station, with which role, and how they log in (PIN or badge)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import replace

from station.domain.audit import EventDraft, format_time
from station.domain.errors import NotFoundError, PermissionDeniedError, ValidationError
from station.domain.records import OperatorRecord, Role
from station.domain.secrets_hash import hash_secret, verify_secret
from station.ports import Clock, UnitOfWork
from station.services.authz import require_role

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PIN = re.compile(r"[0-9]{6,12}")
BADGE_SALT_KEY = "operators.badge_salt"
#: Wrong PINs in a row after which the account is disabled (an admin re-enables it).
MAX_PIN_FAILURES = 5
_FAILURES_KEY = "operators.pin_failures."

RandomBytes = Callable[[int], bytes]


class OperatorService:
    """Add, list, enable/disable operators and authenticate them. Changes need the admin role."""

    def __init__(
        self,
        store: UnitOfWork,
        *,
        clock: Clock,
        station_id: str,
        random_bytes: RandomBytes,
    ) -> None:
        self._store = store
        self._clock = clock
        self._station = station_id
        self._random = random_bytes

    def all(self) -> list[OperatorRecord]:
        """Every operator, by name."""
        return self._store.operators.all()

    def add(
        self, name: str, role: Role, *, pin: str = "", badge: str = "", operator: str
    ) -> OperatorRecord:
        """Add an operator (admin only; ``operator`` is who acts).

        Raises:
            ValidationError: bad name or PIN, or the name/badge is taken.
            PermissionDeniedError: the acting operator is not an admin.
        """
        if not _NAME.fullmatch(name):
            raise ValidationError(
                f"operator name {name!r} is invalid",
                remedy="Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                name=name,
            )
        with self._store:
            require_role(self._store, operator, {Role.ADMIN}, action="add operators")
            if self._store.operators.get(name) is not None:
                raise ValidationError(f"operator {name!r} already exists", name=name)
            record = OperatorRecord(
                name=name,
                role=role,
                enabled=True,
                created_at=format_time(self._clock.now()),
                pin_hash=self._pin_hash(pin) if pin else "",
                badge_hash=self._badge_hash(badge) if badge else "",
            )
            if badge and self._by_badge(record.badge_hash) is not None:
                raise ValidationError("this badge already belongs to another operator")
            saved = self._store.operators.save(record)
            self._audit("operator.added", saved, operator)
        return saved

    def set_enabled(self, name: str, enabled: bool, *, operator: str) -> OperatorRecord:
        """Enable or disable an operator (``operator``: an admin, who cannot disable themselves)."""
        with self._store:
            require_role(self._store, operator, {Role.ADMIN}, action="change operators")
            record = self._get(name)
            if not enabled and name == operator:
                raise PermissionDeniedError(
                    "you cannot disable yourself",
                    remedy="Ask another admin to do it.",
                    operator=name,
                )
            saved = self._store.operators.save(replace(record, enabled=enabled))
            self._store.settings.save(_FAILURES_KEY + name, "0")
            self._audit("operator.enabled" if enabled else "operator.disabled", saved, operator)
        return saved

    def has_pin(self, name: str) -> bool:
        """Whether operator ``name`` exists and logs in with a PIN (the CLI asks for it then)."""
        record = self._store.operators.get(name)
        return record is not None and bool(record.pin_hash)

    def authenticate_pin(self, name: str, pin: str) -> OperatorRecord:
        """Log in with name and PIN.

        After :data:`MAX_PIN_FAILURES` wrong PINs in a row the account is disabled, with an
        ``operator.locked_out`` audit event; an admin re-enables it (``operator enable``). A
        correct PIN resets the count. (A 6-digit PIN under scrypt resists an offline guess for
        days on one core; online, the lockout stops guessing after five tries.)

        Raises:
            PermissionDeniedError: unknown operator, disabled, no PIN set, or wrong PIN (the
                message does not say which, so it cannot be used to probe names).
        """
        record = self._store.operators.get(name)
        usable = record is not None and record.enabled and bool(record.pin_hash)
        if record is not None and usable and verify_secret(pin, record.pin_hash):
            if self._store.settings.get(_FAILURES_KEY + name) not in (None, "0"):
                with self._store:
                    self._store.settings.save(_FAILURES_KEY + name, "0")
            return record
        if record is not None and usable:
            self._count_failure(record)
        raise PermissionDeniedError(
            "login refused: name or PIN is wrong, or the account is disabled",
            remedy="Try again, or ask the station admin.",
        )

    def _count_failure(self, record: OperatorRecord) -> None:
        with self._store:
            key = _FAILURES_KEY + record.name
            failures = _int(self._store.settings.get(key)) + 1
            self._store.settings.save(key, str(failures))
            if failures >= MAX_PIN_FAILURES:
                locked = self._store.operators.save(replace(record, enabled=False))
                self._store.settings.save(key, "0")
                # nobody is logged in while a PIN is being guessed
                self._audit("operator.locked_out", locked, "", failures=failures)

    def authenticate_badge(self, badge: str) -> OperatorRecord:
        """Log in with a badge scan.

        Raises:
            PermissionDeniedError: unknown or disabled badge.
        """
        record = self._by_badge(self._badge_hash(badge))
        if record is None or not record.enabled:
            raise PermissionDeniedError(
                "badge not recognised or account disabled",
                remedy="Scan again, or ask the station admin to register your badge.",
            )
        return record

    # ------------------------------------------------------------------ helpers
    def _get(self, name: str) -> OperatorRecord:
        record = self._store.operators.get(name)
        if record is None:
            raise NotFoundError(f"no operator called {name!r}", name=name)
        return record

    def _pin_hash(self, pin: str) -> str:
        if not _PIN.fullmatch(pin):
            raise ValidationError(
                "a PIN is 6 to 12 digits",
                remedy="Choose a longer PIN (a short one falls to an offline guess in minutes).",
            )
        return hash_secret(pin, self._random(16))

    def _badge_hash(self, badge: str) -> str:
        salt_text = self._store.settings.get(BADGE_SALT_KEY)
        if salt_text is None:
            salt_text = base64.b64encode(self._random(16)).decode("ascii")
            self._store.settings.save(BADGE_SALT_KEY, salt_text)
        return hash_secret(badge.strip(), base64.b64decode(salt_text))

    def _by_badge(self, badge_hash: str) -> OperatorRecord | None:
        for record in self._store.operators.all():
            if record.badge_hash and record.badge_hash == badge_hash:
                return record
        return None

    def _audit(self, kind: str, record: OperatorRecord, operator: str, **extra: int) -> None:
        self._store.audit.append(
            EventDraft(
                kind=kind,
                subject=record.name,
                payload={
                    "role": str(record.role),
                    "enabled": record.enabled,
                    "has_pin": bool(record.pin_hash),
                    "has_badge": bool(record.badge_hash),
                    **extra,
                },
                operator=operator,
                station=self._station,
            )
        )


def _int(text: str | None) -> int:
    try:
        return max(0, int(text or "0"))
    except ValueError:
        return 0
