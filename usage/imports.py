"""`usage_import`: legacy usage history (what the old system charged) into rated usage.

Columns: `id, organization, resource, product, state, start, end, amount, currency`.
`id` is the legacy row's id: a row already imported (same `source:id`) is skipped, so a
second run of the same file adds nothing. Every bad row gets its own message with its
line number and nothing of it is written; good rows of the same file are still loaded.
A row spanning several clock hours is split at the hours with telescoping shares of its
amount (the shares add up to the legacy amount exactly). A resource we do not know is
recorded as a deleted resource known only from history: it is never metered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction

from accounts.audit import audit_record
from accounts.models import Organization, User
from core.money import CurrencyError, decimal_places, round_stored, validate_currency
from pricing.models import Product, ResourceState
from usage.models import (
    ImportedUsage,
    MeteringRun,
    RatedKind,
    RatedUsage,
    Resource,
    RunKind,
    to_minute,
)

COLUMNS = ("id", "organization", "resource", "product", "state", "start", "end", "amount", "currency")


@dataclass
class ImportResult:
    imported: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    run_id: int | None = None


class RowError(ValueError):
    pass


def _time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise RowError(f"{name}: {value!r} is not an ISO 8601 time.")
    if parsed.tzinfo is None:
        raise RowError(f"{name}: give a time zone (e.g. 2025-11-01T10:00:00Z).")
    if parsed.second or parsed.microsecond:
        raise RowError(f"{name}: must be a whole minute.")
    return parsed


def _split(amount: Decimal, start: int, end: int) -> list[tuple[int, int, Decimal]]:
    """Pieces within clock hours; each share is a difference of rounded cumulative shares."""
    total = end - start
    out = []
    for h in range(start // 60, (end - 1) // 60 + 1):
        s, e = max(start, h * 60), min(end, h * 60 + 60)
        share = round_stored(amount * (e - start) / total) - round_stored(amount * (s - start) / total)
        out.append((s, e, share))
    return out


@transaction.atomic
def usage_import(*, rows: Iterable[dict], source: str = "legacy", actor: User | None = None) -> ImportResult:
    result = ImportResult()
    orgs = {}
    for o in Organization.objects.values("id", "slug", "currency"):
        orgs[o["slug"]] = o
        orgs[str(o["id"])] = o
    products = {p.code: p for p in Product.objects.all()}
    pending: list[tuple[int, str, dict]] = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        try:
            missing = [c for c in COLUMNS if not (row.get(c) or "").strip()]
            if missing:
                raise RowError(f"missing {', '.join(missing)}.")
            org = orgs.get(row["organization"].strip())
            if org is None:
                raise RowError(f"organization: no organisation {row['organization']!r}.")
            product = products.get(row["product"].strip())
            if product is None:
                raise RowError(f"product: no product with code {row['product']!r}.")
            state = row["state"].strip()
            if state not in ResourceState.values:
                raise RowError(f"state: must be one of {', '.join(ResourceState.values)}.")
            start, end = _time(row["start"].strip(), "start"), _time(row["end"].strip(), "end")
            if end <= start:
                raise RowError("end: must be after start.")
            try:
                amount = Decimal(row["amount"].strip())
            except InvalidOperation:
                raise RowError(f"amount: {row['amount']!r} is not a number.")
            if not amount.is_finite() or decimal_places(amount) > 12:
                raise RowError("amount: at most 12 decimal places.")
            currency = row["currency"].strip()
            try:
                validate_currency(currency)
            except CurrencyError as exc:
                raise RowError(f"currency: {exc}")
            if currency != org["currency"]:
                raise RowError(f"currency: the organisation is billed in {org['currency']}, not {currency}.")
            key = f"{source}:{row['id'].strip()}"
            if len(key) > 200:
                raise RowError("id: at most 190 characters.")
        except RowError as exc:
            result.errors.append(f"line {line}: {exc}")
            continue
        pending.append((line, key, {"org": org, "product": product, "state": state, "start": start, "end": end,
                                    "amount": amount, "currency": currency, "resource": row["resource"].strip()}))

    keys = [k for _, k, _ in pending]
    done = set(ImportedUsage.objects.filter(key__in=keys).values_list("key", flat=True))
    seen: set[str] = set()
    todo = []
    for line, key, data in pending:
        if key in done or key in seen:
            result.skipped += 1
            continue
        seen.add(key)
        todo.append((line, key, data))
    if not todo:
        return result

    resources = dict(Resource.objects.filter(external_id__in={d["resource"] for _, _, d in todo})
                     .values_list("external_id", "id"))
    for _, _, d in todo:
        if d["resource"] not in resources:
            r = Resource.objects.create(
                organization_id=d["org"]["id"], external_id=d["resource"], name=d["resource"], product=d["product"],
                state=ResourceState.DELETED, state_since=d["end"], deleted_at=d["end"],
            )
            resources[d["resource"]] = r.pk
    first = min(to_minute(d["start"]) for _, _, d in todo)
    last = max(to_minute(d["end"]) for _, _, d in todo)
    run = MeteringRun.objects.create(kind=RunKind.IMPORT, from_minute=first, until_minute=last)
    markers = []
    for _line, key, d in todo:
        rated = []
        for s, e, share in _split(d["amount"], to_minute(d["start"]), to_minute(d["end"])):
            minutes = e - s
            rated.append(RatedUsage(
                run=run, organization_id=d["org"]["id"], resource_id=resources[d["resource"]], product=d["product"],
                state=d["state"], kind=RatedKind.IMPORT, start_minute=s, end_minute=e, minutes=minutes,
                unit="hour", unit_rate=round_stored(d["amount"] * 60 / (to_minute(d["end"]) - to_minute(d["start"]))),
                amount=share, currency=d["currency"],
            ))
        created = RatedUsage.objects.bulk_create(rated)
        markers.append(ImportedUsage(key=key, rated_usage_id=created[0].pk))
    ImportedUsage.objects.bulk_create(markers)
    run.rows = sum(1 for _ in markers)
    run.save(update_fields=["rows"])
    result.imported = len(markers)
    result.run_id = run.pk
    audit_record("usage.imported", actor=actor, obj=run,
                 changes={"source": source, "rows": result.imported, "skipped": result.skipped,
                          "errors": len(result.errors)})
    return result
