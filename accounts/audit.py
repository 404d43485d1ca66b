"""The audit trail: call `audit_record` inside the transaction that makes the change."""

from __future__ import annotations

import json
from typing import Any

from django.db import models

from accounts.models import ApiKey, AuditLog, Organization, User


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
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditLog.objects.create(
        action=action,
        actor=actor,
        actor_api_key=api_key,
        organization=organization,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        reason=reason,
        changes=_jsonable(changes or {}),
    )


def audit_record_many(action: str, entries: list[dict[str, Any]]) -> int:
    """`audit_record` for many objects in one `COPY` (`core.copyrows`; a monthly run's chunk
    writes one per invoice, under the invoice counter's lock): each entry holds its keyword
    arguments (actor, api_key, organization, obj, reason, changes). The rows are what
    `audit_record` would write, one `created_at` for the statement; returns how many."""
    from django.utils import timezone

    from core.copyrows import copy_rows

    now = timezone.now()
    rows = []
    for e in entries:
        actor, obj, api_key, org = e.get("actor"), e.get("obj"), e.get("api_key"), e.get("organization")
        if actor is not None and not getattr(actor, "is_authenticated", False):
            actor = None
        rows.append((
            now, actor.pk if actor is not None else None, api_key.pk if api_key is not None else None,
            org.pk if org is not None else None, action, obj._meta.label if obj is not None else "",
            str(obj.pk) if obj is not None else "", e.get("reason", ""), json.dumps(_jsonable(e.get("changes") or {})),
        ))
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
