"""What every price-book write shares: amounts, currencies, whole minutes, overlaps, audit.

The helpers raise `DomainError`s people can act on (the field named) and never write,
except `_save_checked` (which turns the database's exclusion constraint, the last word
against a concurrent writer, into a `Conflict`) and `_audit`. Used by `products`,
`prices` and `contracts` in this package only.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar, overload

from django.db import IntegrityError, transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, Organization, User
from core.errors import Conflict, DomainError
from core.money import CurrencyError, require_decimal, validate_currency
from pricing.models import Contract, Price

_Dated = TypeVar("_Dated", Price, Contract)


def _audit(action: str, *, actor: User | None, api_key: ApiKey | None, obj: Model,
           organization: Organization | None = None, changes: dict[str, Any] | None = None,
           reason: str = "") -> None:
    audit_record(action, actor=actor, api_key=api_key, organization=organization, obj=obj, changes=changes,
                 reason=reason)


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _whole_minute(value: datetime | None, field: str) -> None:
    if value is None:
        return
    if value.tzinfo is None:
        raise DomainError("Give the time with a timezone (UTC).", field=field)
    if value.second or value.microsecond:
        raise DomainError("Prices and contracts change on a whole minute (seconds must be 0).", field=field)


@overload
def _money(value: object, field: str, *, allow_none: Literal[False] = False) -> Decimal: ...


@overload
def _money(value: object, field: str, *, allow_none: bool) -> Decimal | None: ...


def _money(value: object, field: str, *, allow_none: bool = False) -> Decimal | None:
    if value is None:
        if allow_none:
            return None
        raise DomainError("This amount is required.", field=field)
    try:
        amount = require_decimal(value)
    except (TypeError, ValueError) as exc:
        raise DomainError(f"Not a decimal amount: {exc}.", field=field) from exc
    if amount < 0:
        raise DomainError("Amounts cannot be negative.", field=field)
    return amount


def _currency(code: str, field: str = "currency") -> str:
    try:
        return validate_currency(code)
    except CurrencyError:
        raise DomainError(f"{code!r} is not an ISO 4217 currency code (e.g. USD, EUR, JPY).", field=field) from None


def _period_text(start: datetime, end: datetime | None) -> str:
    return f"{start:%Y-%m-%d %H:%M} UTC – {end:%Y-%m-%d %H:%M} UTC" if end else f"{start:%Y-%m-%d %H:%M} UTC onwards"


def _overlapping(qs: QuerySet[_Dated], valid_from: datetime, valid_to: datetime | None) -> QuerySet[_Dated]:
    qs = qs.exclude(valid_to__isnull=False, valid_to__lte=valid_from)
    if valid_to is not None:
        qs = qs.filter(valid_from__lt=valid_to)
    return qs


def _save_checked(instance: Price | Contract) -> None:
    """Save; the database's own constraints (the exclusion constraint on PostgreSQL) are
    the last word against a concurrent writer."""
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        if "overlap" in str(exc):
            raise Conflict("Another price or contract for the same period was saved at the same moment.") from exc
        raise
