"""Operators: who may use the station, with which role, and how they log in (PIN or badge)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from station.domain.audit import EventDraft, format_time
from station.domain.errors import NotFoundError, PermissionDeniedError, ValidationError
from station.domain.records import OperatorRecord, Role
from station.domain.secrets_hash import hash_secret, verify_secret
from station.ports import Clock, UnitOfWork
from station.services.authz import Permission, permissions_of, require

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PIN = re.compile(r"[0-9]{6,12}")
BADGE_SALT_KEY = "operators.badge_salt"
#: Wrong PINs in a row after which the account is disabled (an admin re-enables it).
MAX_PIN_FAILURES = 5
#: audit events that change whether an account can log in
_STATE_KINDS = frozenset(
    {"operator.added", "operator.enabled", "operator.disabled", "operator.locked_out"}
)

RandomBytes = Callable[[int], bytes]


@dataclass(frozen=True)
class OperatorStanding:
    """An operator as the admin sees them: account state and how they log in.

    Attributes:
        record: the operator row.
        state: ``active``, ``locked out`` (five wrong PINs; an admin re-enables the account)
            or ``disabled`` (by an admin).
        login: ``PIN and badge``, ``PIN``, ``badge`` or ``none`` (cannot log into the window).
    """

    record: OperatorRecord
    state: str
    login: str


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

    @staticmethod
    def permissions_of(role: Role | None) -> frozenset[Permission]:
        """What ``role`` may do, from the one permission table (the services check the same).

        ``None`` is nobody logged in: nothing. It reads no store, so the window asks it on its own
        thread to enable what the operator at it may use.
        """
        return permissions_of(role) if role is not None else frozenset()

    def all(self) -> list[OperatorRecord]:
        """Every operator, by name."""
        return self._store.operators.all()

    def standings(self) -> list[OperatorStanding]:
        """Every operator, by name, with their account state and login method."""
        return [self._standing(record) for record in self._store.operators.all()]

    def _standing(self, record: OperatorRecord) -> OperatorStanding:
        state = "active"
        if not record.enabled:
            # the last event about the account says who disabled it: an admin or the lockout
            kinds = [
                e.kind for e in self._store.audit.events_for(record.name) if e.kind in _STATE_KINDS
            ]
            state = "locked out" if kinds and kinds[-1] == "operator.locked_out" else "disabled"
        methods = [
            m for m, held in (("PIN", record.pin_hash), ("badge", record.badge_hash)) if held
        ]
        return OperatorStanding(record, state, " and ".join(methods) or "none")

    def add(
        self, name: str, role: Role, *, pin: str = "", badge: str = "", operator: str
    ) -> OperatorRecord:
        """Add an operator (admin only; ``operator`` is who acts).

        Raises:
            ValidationError: bad name or PIN, or the name/badge is taken.
            PermissionDeniedError: the acting operator is not an admin.
        """
        require(self._store, operator, Permission.MANAGE_OPERATORS, action="add operators")
        if not _NAME.fullmatch(name):
            raise ValidationError(
                f"operator name {name!r} is invalid",
                remedy="Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                name=name,
            )
        with self._store:
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

    def require_admin(
        self, action: str = "manage operators", *, operator: str, target: str = ""
    ) -> None:
        """Check that ``operator`` may manage operators, before anything is asked for.

        With ``target``, also that this operator exists.

        Raises:
            PermissionDeniedError: the acting operator is not an enabled admin.
            NotFoundError: there is no operator ``target``.
        """
        require(self._store, operator, Permission.MANAGE_OPERATORS, action=action)
        if target:
            self._get(target)

    @staticmethod
    def check_pin(pin: str) -> None:
        """Refuse a PIN that is not 6 to 12 digits (before anything is written).

        Raises:
            ValidationError: the PIN has the wrong form.
        """
        if not _PIN.fullmatch(pin):
            raise ValidationError(
                "a PIN is 6 to 12 digits",
                remedy="Choose a longer PIN (a short one falls to an offline guess in minutes).",
            )

    def set_pin(self, name: str, pin: str, *, operator: str) -> OperatorRecord:
        """Set (or replace) operator ``name``'s PIN (admin only); audited as ``operator.pin_set``.

        The PIN is kept only as a slow salted hash. Setting it also clears the count of wrong
        PINs, but does not re-enable a disabled account (``operator enable`` does).

        Raises:
            ValidationError: the PIN is not 6 to 12 digits.
            NotFoundError: no such operator.
            PermissionDeniedError: the acting operator is not an admin.
        """
        require(self._store, operator, Permission.MANAGE_OPERATORS, action="set PINs")
        pin_hash = self._pin_hash(pin)
        with self._store:
            saved = self._store.operators.save(replace(self._get(name), pin_hash=pin_hash))
            self._store.operators.save_pin_failures(name, 0)
            self._audit("operator.pin_set", saved, operator)
        return saved

    def set_badge(self, name: str, badge: str, *, operator: str) -> OperatorRecord:
        """Register (or replace) operator ``name``'s badge (admin only); audited.

        Raises:
            ValidationError: an empty scan, or the badge belongs to another operator.
            NotFoundError: no such operator.
            PermissionDeniedError: the acting operator is not an admin.
        """
        require(self._store, operator, Permission.MANAGE_OPERATORS, action="set badges")
        if not badge.strip():
            raise ValidationError(
                "the badge scan was empty", remedy="Scan the badge again (the scanner types it)."
            )
        with self._store:
            record = self._get(name)
            badge_hash = self._badge_hash(badge)
            owner = self._by_badge(badge_hash)
            if owner is not None and owner.name != name:
                raise ValidationError(
                    "this badge already belongs to another operator",
                    remedy="Scan the badge of the person you are setting up.",
                )
            saved = self._store.operators.save(replace(record, badge_hash=badge_hash))
            self._audit("operator.badge_set", saved, operator)
        return saved

    def set_enabled(self, name: str, enabled: bool, *, operator: str) -> OperatorRecord:
        """Enable or disable an operator (``operator``: an admin, who cannot disable themselves)."""
        with self._store:
            require(self._store, operator, Permission.MANAGE_OPERATORS, action="change operators")
            record = self._get(name)
            if not enabled and name == operator:
                raise PermissionDeniedError(
                    "you cannot disable yourself",
                    remedy="Ask another admin to do it.",
                    operator=name,
                )
            saved = self._store.operators.save(replace(record, enabled=enabled))
            self._store.operators.save_pin_failures(name, 0)
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
            if self._store.operators.pin_failures(name):
                with self._store:
                    self._store.operators.save_pin_failures(name, 0)
            return record
        if record is not None and usable:
            self._count_failure(record)
        raise PermissionDeniedError(
            "login refused: name or PIN is wrong, or the account is disabled",
            remedy="Try again, or ask the station admin.",
        )

    def _count_failure(self, record: OperatorRecord) -> None:
        with self._store:
            failures = self._store.operators.pin_failures(record.name) + 1
            if failures >= MAX_PIN_FAILURES:
                locked = self._store.operators.save(replace(record, enabled=False))
                self._store.operators.save_pin_failures(record.name, 0)
                # nobody is logged in while a PIN is being guessed
                self._audit("operator.locked_out", locked, "", failures=failures)
            else:
                self._store.operators.save_pin_failures(record.name, failures)

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
        self.check_pin(pin)
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
