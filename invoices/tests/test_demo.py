"""The demo seeder bills last month for the demo organisations, and is safe to repeat."""

import pytest
from django.core.management import call_command

from invoices.models import Invoice

pytestmark = pytest.mark.django_db


def test_seed_demo_issues_last_months_invoices_once(time_machine):
    from invoices.tests.helpers import utc

    time_machine.move_to(utc(2026, 11, 20, 12), tick=False)
    # Last month's (October); finance's demo history bills the months before it.
    october = Invoice.objects.filter(period_start=utc(2026, 10, 1))
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    first = sorted(october.values_list("organization__slug", "number", "status"))
    all_invoices = Invoice.objects.count()
    from usage.models import Resource

    tagged = list(Resource.objects.order_by("id").values_list("id", "project_id", "labels", "tags_at"))
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    assert sorted(october.values_list("organization__slug", "number", "status")) == first
    # usage.demo.PROJECTS: Acme's servers in two projects with labels, set once.
    assert list(Resource.objects.order_by("id").values_list("id", "project_id", "labels", "tags_at")) == tagged
    placed = dict(Resource.objects.filter(organization__slug="acme-ai", project__isnull=False)
                  .values_list("external_id", "project__slug"))
    assert placed == {"acme-h100-01": "ml-research", "acme-a100-02": "ml-research", "acme-cpu-web": "platform",
                      "acme-cpu-ci": "platform"}
    assert Resource.objects.get(external_id="acme-cpu-ci").labels == {"team": "web", "env": "ci"}
    assert Invoice.objects.count() == all_invoices
    assert [slug for slug, _, _ in first] == ["acme-ai", "nordlicht"]
    acme = october.get(organization__slug="acme-ai")
    assert acme.is_statement and acme.lines.count() == 4
    assert acme.amount_due == acme.total - acme.credit_applied  # what the prepaid balance lacked
