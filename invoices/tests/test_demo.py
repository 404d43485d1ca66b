"""The demo seeder bills last month for the demo organisations, and is safe to repeat."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from invoices.models import Invoice

pytestmark = pytest.mark.django_db


def test_seed_demo_issues_last_months_invoices_once(time_machine, client):
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

    _tinyml_ladder_is_shown(client)


def _tinyml_ladder_is_shown(client):
    """credits.demo.seed_ladder: TinyML Studio's $90.00 ran out about three days before
    the demo's now; metering with a moving clock hibernated it at the minute after (its
    balance then at or just below zero), the day-1 notice went out a day later, and the
    dashboard banner and the console show the next notice (day 7) and the deletion
    (day 14). Checked after the second seed_demo: once only."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import User
    from accounts.staff import BILLING_ADMIN, sync_staff_groups
    from accounts.tests.factories import UserFactory
    from core.formatting import format_datetime
    from credits.models import CreditEvent, EventKind, HibernationLadder

    ladder = HibernationLadder.objects.get(organization__slug="tinyml")  # one, whatever the reruns
    since = ladder.hibernated_at
    assert timedelta(days=2) < timezone.now() - since < timedelta(days=4)
    assert (ladder.status, ladder.started_at, ladder.notices_done) == ("active", since, [1])
    assert ladder.deletion_due_at == since + timedelta(days=14)
    events = list(CreditEvent.objects.filter(organization=ladder.organization,
                                             kind__in=[EventKind.HIBERNATED, EventKind.DELETION_NOTICE])
                  .order_by("created_at").values_list("kind", "created_at", "message"))
    assert [(k, at) for k, at, _ in events] == [(EventKind.HIBERNATED, since),
                                                (EventKind.DELETION_NOTICE, since + timedelta(days=1))]
    assert "credit exhausted (-$0.0" in events[0][2]  # hibernated within a minute of running out
    client.force_login(User.objects.get(email="owner@tinyml.example"))
    page = client.get("/").content.decode()
    banner = page[page.index("ladder-banner"):page.index("</section>", page.index("ladder-banner"))]
    assert "Resources hibernated: credit ran out" in banner
    for label, at in (("Hibernated since", since), ("Next notice", since + timedelta(days=7)),
                      ("Deletion scheduled on", since + timedelta(days=14))):
        assert label in banner and format_datetime(at) in banner, (label, banner)
    sync_staff_groups()
    staff = UserFactory(is_staff=True)
    staff.groups.add(Group.objects.get(name=BILLING_ADMIN))
    client.force_login(staff)
    console = client.get("/console/credits/hibernationladder/").content.decode()
    assert (f"Day 3: day-1 notice sent; next: day-7 notice on {format_datetime(since + timedelta(days=7))}; "
            f"deletion on {format_datetime(since + timedelta(days=14))}") in console
