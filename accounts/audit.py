"""The audit trail: call `audit_record` inside the transaction that makes the change."""

from __future__ import annotations

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


def audit_record_many(action: str, entries: list[dict[str, Any]]) -> list[AuditLog]:
    """`audit_record` for many objects in one INSERT: each entry holds its keyword
    arguments (actor, api_key, organization, obj, reason, changes)."""
    rows = []
    for e in entries:
        actor, obj = e.get("actor"), e.get("obj")
        if actor is not None and not getattr(actor, "is_authenticated", False):
            actor = None
        rows.append(AuditLog(
            action=action, actor=actor, actor_api_key=e.get("api_key"), organization=e.get("organization"),
            object_type=obj._meta.label if obj is not None else "", object_id=str(obj.pk) if obj is not None else "",
            reason=e.get("reason", ""), changes=_jsonable(e.get("changes") or {}),
        ))
    return AuditLog.objects.bulk_create(rows, batch_size=2000)


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
