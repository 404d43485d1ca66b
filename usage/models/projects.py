"""`Project`: a group of an organisation's resources (issue 19, item 1). A resource with
no project is in none ("No project" on pages, `null` in the API); there is no default row."""

from __future__ import annotations

from django.db import models


class Project(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="projects")
    slug = models.SlugField(max_length=50, help_text="Unique per organisation; what events and the API name it by.")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization_id", "name", "id"]
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="usage_project_slug_per_org")]

    def __str__(self) -> str:
        return self.name
