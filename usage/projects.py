"""Projects and labels in the portal (issue 19, item 1): create and rename projects, move
a resource to a project and change its labels. Every change is audited in its transaction.
The platform's events set the same fields (usage.tags_ingest); whichever change is newer
wins (`Resource.tags_at`)."""

from __future__ import annotations

from django import forms
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record, model_changes
from accounts.models import Organization, User
from usage.labels import MAX_LABELS, LabelError, check_labels, check_slug, slug_for
from usage.models import Project, Resource


class ProjectError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


@transaction.atomic
def project_create(*, organization: Organization, name: str, slug: str = "", actor: User | None) -> Project:
    name = name.strip()
    if not name:
        raise ProjectError("name", "Give the project a name.")
    try:
        slug = check_slug(slug or slug_for(name))
    except LabelError as exc:
        raise ProjectError("slug", str(exc).capitalize()) from None
    try:
        with transaction.atomic():
            project = Project.objects.create(organization=organization, name=name[:100], slug=slug)
    except IntegrityError:
        raise ProjectError("slug", f"There is already a project “{slug}”: pick another slug.") from None
    audit_record("project.created", actor=actor, organization=organization, obj=project,
                 changes={"name": project.name, "slug": slug})
    return project


@transaction.atomic
def project_rename(*, project: Project, name: str, actor: User | None) -> Project:
    """Renames; the slug (what events and the API name it by) stays."""
    name = name.strip()[:100]
    if not name:
        raise ProjectError("name", "Give the project a name.")
    project = Project.objects.select_for_update().get(pk=project.pk)
    changes = model_changes(project, {"name": name})
    if changes:
        project.name = name
        project.save(update_fields=["name"])
        audit_record("project.renamed", actor=actor, organization=project.organization, obj=project, changes=changes)
    return project


@transaction.atomic
def resource_set_tags(*, resource: Resource, project: Project | None, labels: dict[str, str],
                      actor: User | None) -> Resource:
    if project is not None and project.organization_id != resource.organization_id:
        raise ProjectError("project", "No such project.")
    labels = check_labels(labels)
    resource = Resource.objects.select_for_update().get(pk=resource.pk)
    changes = model_changes(resource, {"project_id": project.pk if project else None, "labels": labels})
    if changes:
        resource.project, resource.labels, resource.tags_at = project, labels, timezone.now()
        resource.save(update_fields=["project", "labels", "tags_at"])
        audit_record("resource.tags_changed", actor=actor, organization=resource.organization, obj=resource,
                     changes=changes)
    return resource


def parse_label_lines(text: str) -> dict[str, str]:
    """`key=value`, one a line (blank lines skipped), as people type them in the portal."""
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise LabelError(f"line {n}: write key=value.")
        key, value = key.strip(), value.strip()
        if key in out:
            raise LabelError(f"line {n}: the label {key[:80]!r} is given twice.")
        out[key] = value
    return check_labels(out)


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=100)
    slug = forms.CharField(max_length=50, required=False, help_text="Lower-case letters, digits and -; made from "
                           "the name when empty. Events and the API name the project by it; it cannot change.")


class RenameForm(forms.Form):
    name = forms.CharField(max_length=100)


class TagsForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none(), required=False, empty_label="No project")
    labels = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
                             help_text=f"One key=value a line, at most {MAX_LABELS}.")

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = Project.objects.filter(organization=organization)

    def clean_labels(self) -> dict[str, str]:
        try:
            return parse_label_lines(self.cleaned_data.get("labels") or "")
        except LabelError as exc:
            raise forms.ValidationError(str(exc)[:1].upper() + str(exc)[1:]) from None


def labels_text(labels: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in sorted(labels.items()))
