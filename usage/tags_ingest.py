"""Projects and labels from the platform's events (issue 19, item 1), kept out of
usage/ingest.py but for three calls (`parse_tags` in `_parse`, `UNSET` as the Item's
default, `apply_tags` after the accepted events' change points), so ingestion can change
around it.

- `created` may carry `project` (a slug; the organisation's project with that slug is
  created on first use, named as the slug) and `labels` ({key: value});
- `updated` carries either or both and changes nothing else: `project: null` takes the
  resource out of its project, `labels` replaces the whole set (send `{}` to clear).
- A resource keeps the time of the change that set them last (`Resource.tags_at`): an
  event older than that (sent late, or older than a change made in the portal) is
  accepted and stored but changes nothing, so the newest word wins whatever the order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import connection

from usage.labels import LabelError, check_labels, check_slug
from usage.models import EventType, Project, Resource

if TYPE_CHECKING:
    from usage.ingest import Item

__all__ = ["UNSET", "LabelError", "apply_tags", "parse_tags"]

UNSET = "\x00unset"  # Item.project when the event does not name one (no slug holds a NUL)


def parse_tags(raw: dict, type_: str) -> tuple[str | None, dict[str, str] | None]:
    """(project slug, None for none or UNSET for unchanged; labels or None for unchanged)."""
    project: str | None = UNSET
    if "project" in raw:
        project = None if raw["project"] is None else _field("project", check_slug, raw["project"])
    labels = None
    if "labels" in raw:
        labels = _field("labels", check_labels, raw["labels"])
    if type_ == EventType.UPDATED and project == UNSET and labels is None:
        raise LabelError("an updated event carries project, labels or both.")
    if type_ == EventType.CREATED and project is None:
        project = UNSET  # a new resource is in no project anyway
    return project, labels


def _field(name: str, check: Any, value: object) -> Any:
    try:
        return check(value)
    except LabelError as exc:
        raise LabelError(f"{name}: {exc}") from None


def apply_tags(items: list[Item]) -> None:
    """Set the project and labels the accepted `created`/`updated` events carry, in time
    order, skipping events older than the resource's last change. Three statements for the
    batch: create the missing projects, read them back with the resources' `tags_at`,
    update the changed resources. (`_resolve` locked the resources of lifecycle events.)"""
    items = [i for i in items if i.project != UNSET or i.labels is not None]
    if not items:
        return
    wanted = {(i.resolved[1], i.project) for i in items if i.project not in (None, UNSET)}
    projects: dict[tuple[int, str], int] = {}
    if wanted:
        Project.objects.bulk_create([Project(organization_id=o, slug=s, name=s) for o, s in sorted(wanted)],
                                    ignore_conflicts=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT p.organization_id, p.slug, p.id FROM usage_project p "
                           "JOIN unnest(%s::bigint[], %s::text[]) AS w(o, s) ON p.organization_id = w.o AND p.slug = w.s",
                           [[o for o, _ in wanted], [s for _, s in wanted]])
            projects = {(o, s): pk for o, s, pk in cursor.fetchall()}
    resources = {r.pk: r for r in Resource.objects.filter(pk__in={i.resolved[0] for i in items})
                 .only("id", "project_id", "labels", "tags_at")}
    changed = {}
    for item in sorted(items, key=lambda i: (i.at, i.index)):
        r = resources[item.resolved[0]]
        if r.tags_at is not None and item.at < r.tags_at:
            continue
        if item.project != UNSET:
            r.project_id = None if item.project is None else projects[(item.resolved[1], item.project)]
        if item.labels is not None:
            r.labels = item.labels
        r.tags_at = item.at
        changed[r.pk] = r
    if changed:
        Resource.objects.bulk_update(list(changed.values()), ["project", "labels", "tags_at"])
