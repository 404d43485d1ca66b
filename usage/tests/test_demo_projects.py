"""The demo fleet has projects and labels (usage.demo.PROJECTS), so the Projects page, the
spend explorer's Project and Label groupings and the invoices' project headings show
something in `make run`; seeding again changes nothing."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from usage.models import Project, Resource

pytestmark = pytest.mark.django_db


def test_the_demo_puts_acmes_servers_in_two_projects_with_labels(time_machine):
    time_machine.move_to(datetime(2026, 11, 20, 12, tzinfo=UTC), tick=False)
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    placed = dict(Resource.objects.filter(organization__slug="acme-ai", project__isnull=False)
                  .values_list("external_id", "project__slug"))
    assert placed == {"acme-h100-01": "ml-research", "acme-a100-02": "ml-research", "acme-cpu-web": "platform",
                      "acme-cpu-ci": "platform"}
    assert Resource.objects.get(external_id="acme-cpu-ci").labels == {"team": "web", "env": "ci"}
    before = list(Resource.objects.order_by("id").values_list("id", "project_id", "labels", "tags_at"))
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert list(Resource.objects.order_by("id").values_list("id", "project_id", "labels", "tags_at")) == before
    assert Project.objects.filter(organization__slug="acme-ai").count() == 2
