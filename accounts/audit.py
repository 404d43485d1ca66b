"""The audit trail: call `audit_record` inside the transaction that makes the change."""

from __future__ import annotations

import json
from typing import Any

from django.db import models

from accounts.models import ApiKey, AuditLog, Organization, User


def _fields(action: str, *, actor: User | None = None, api_key: ApiKey | None = None,
            organization: Organization | None = None, obj: models.Model | None = None, reason: str = "",
            changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry's column values (by attname), the rules of both writers below: someone
    not signed in is no actor, the object is named by its model label and primary key."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return {
        "actor_id": actor.pk if actor is not None else None,
        "actor_api_key_id": api_key.pk if api_key is not None else None,
        "organization_id": organization.pk if organization is not None else None,
        "action": action,
        "object_type": obj._meta.label if obj is not None else "",
        "object_id": str(obj.pk) if obj is not None else "",
        "reason": reason,
        "changes": _jsonable(changes or {}),
    }


def audit_record(
    action: str,
    *,
    actor: User | None = None,
    api_key: ApiKey | None = None,
    organization: Organization | None = None,
    obj: models.Model | None = None,
    reason: str = "",
    changes: dict[str, Any] | None = None,
) -> AuditLog:
    return AuditLog.objects.create(**_fields(action, actor=actor, api_key=api_key, organization=organization, obj=obj,
                                             reason=reason, changes=changes))


def audit_record_many(action: str, entries: list[dict[str, Any]]) -> int:
    """`audit_record` for many objects in one `COPY` (`core.copyrows`; a monthly run's chunk
    writes one per invoice, under the invoice counter's lock): each entry holds
    `audit_record`'s keyword arguments. The rows are what `audit_record` would write, one
    `created_at` for the statement; returns how many."""
    from django.utils import timezone

    from core.copyrows import copy_rows

    now = timezone.now()
    rows = []
    for e in entries:
        fields = _fields(action, **e)
        fields["changes"] = json.dumps(fields["changes"])
        rows.append((now, *(fields[c] for c in AUDIT_COLUMNS[1:])))
    return copy_rows(AuditLog._meta.db_table, AUDIT_COLUMNS, rows)


# The columns `audit_record_many` writes, in its rows' order (every AuditLog column but its id).
AUDIT_COLUMNS = ("created_at", "actor_id", "actor_api_key_id", "organization_id", "action", "object_type", "object_id",
                 "reason", "changes")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def model_changes(instance: models.Model, fields: dict[str, Any]) -> dict[str, list]:
    """{field: [old, new]} for the fields whose value differs."""
    return {
        name: [_jsonable(getattr(instance, name)), _jsonable(new)]
        for name, new in fields.items()
        if getattr(instance, name) != new
    }
