"""The zero-balance ladder (issue 19, item 4) with a moving clock: zero → hibernate →
notices on their days → a delete_disks request on day 14; a top-up cancels; a late run
sends each notice once; another organisation is unaffected."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from accounts.tests.factories import OrganizationFactory
from credits import hibernation, ladder, services
from credits.models import (
    Balance,
    CreditEvent,
    HibernationLadder,
    LadderPolicy,
    ProvisioningRequest,
)
from pricing.models import ResourceState
from pricing.tests.factories import ProductFactory
from usage import services as usage_services
from usage.models import Resource, StateSource
from webhooks import services as webhook_services
from webhooks.models import WebhookMessage

pytestmark = pytest.mark.django_db
T0 = datetime(2030, 3, 1, 10, 0, tzinfo=UTC)  # credit runs out


def day(n, hours=0):
    return T0 + timedelta(days=n, hours=hours)


@pytest.fixture(autouse=True)
def defaults(settings):
    settings.CREDITS_LADDER_NOTICE_DAYS = [1, 7, 12]
    settings.CREDITS_LADDER_DELETE_AFTER_DAYS = 14
    settings.CREDITS_RESUME_MODE = "automatic"


def out_of_credit(organization, external_id="srv-1", at=T0):
    """A prepaid organisation with one running server and a balance of exactly zero."""
    organization.billing_email = f"billing-{external_id}@example.test"
    organization.save(update_fields=["billing_email"])
    product = ProductFactory()
    before = at - timedelta(hours=1)
    with time_machine.travel(before, tick=False):
        resource = usage_services.resource_create(organization=organization, external_id=external_id,
                                                  product=product, at=before, source=StateSource.EVENT)
        usage_services.resource_change_state(resource=resource, state=ResourceState.RUNNING,
                                             at=before, source=StateSource.EVENT)
        services.credit_adjust(organization=organization, amount=Decimal("5"), reason="opening")
        services.credit_adjust(organization=organization, amount=Decimal("-5"), reason="spent")
    return resource


def run_ladder(at, capture):
    with time_machine.travel(at, tick=False), capture(execute=True):
        return ladder.advance_due(now=at)


def notices(organization):
    return list(CreditEvent.objects.filter(organization=organization, kind="credits.deletion_notice")
                .order_by("created_at").values_list("data__day", flat=True))


def deletions(organization):
    return list(ProvisioningRequest.objects.filter(organization=organization, action="delete_disks"))


@pytest.fixture
def hibernated(org, django_capture_on_commit_callbacks):
    server = out_of_credit(org)
    with time_machine.travel(T0, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert hibernation.hibernate_due(now=T0) == 1
    mail.outbox.clear()
    return server


@pytest.fixture
def listening(org):
    return webhook_services.endpoint_create(organization=org, url="http://127.0.0.1:9/hook", event_types=[
        "resource.deletion_scheduled", "resource.deletion_requested"])


def test_the_whole_ladder_notices_on_their_days_then_one_delete_disks_request_on_day_14(
        org, hibernated, listening, django_capture_on_commit_callbacks):
    lad = HibernationLadder.objects.get(organization=org)
    assert (lad.reason, lad.status, lad.hibernated_at, lad.deletion_due_at) == (
        "credit_exhausted", "active", T0, day(14))
    assert lad.resource_ids == [hibernated.pk] and lad.notice_days == [1, 7, 12]
    capture = django_capture_on_commit_callbacks

    # Every hour for fifteen days, as beat runs it (every 15 minutes; hourly is enough here).
    at, sent_on = T0, {}
    while at <= day(15):
        before = len(notices(org))
        run_ladder(at, capture)
        if len(notices(org)) > before:
            sent_on[notices(org)[-1]] = at
        at += timedelta(hours=1)
    assert sent_on == {1: day(1), 7: day(7), 12: day(12)}
    assert len(mail.outbox) == 4  # three notices and the deletion
    assert "will be deleted on 2030-03-15 10:00 UTC" in mail.outbox[0].body
    assert mail.outbox[0].to == ["billing-srv-1@example.test"]
    assert mail.outbox[0].subject.endswith(f"Disk deletion scheduled: {org.name}")

    [request] = deletions(org)
    assert request.created_at == day(14)  # on the date, never before
    assert request.payload["resource_ids"] == [hibernated.pk]
    assert request.status == "acknowledged"  # the logging backend in tests
    lad.refresh_from_db()
    assert (lad.status, lad.deletion_request_id) == ("deletion_requested", request.pk)
    assert Balance.objects.get(organization=org).hibernated_resources == []
    assert sorted(WebhookMessage.objects.filter(organization=org).values_list("event_type", flat=True)) == [
        "resource.deletion_requested"] + ["resource.deletion_scheduled"] * 3
    scheduled = WebhookMessage.objects.filter(event_type="resource.deletion_scheduled").order_by("id").first()
    assert scheduled.data["deletion_scheduled_at"] == day(14).isoformat()

    # A later top-up resumes nothing whose disks are gone, and the ladder stays ended.
    with time_machine.travel(day(16), tick=False), capture(execute=True):
        services.credit_topup(organization=org, amount=Decimal("20"), currency=org.currency, reference="pi_late")
    assert ProvisioningRequest.objects.filter(organization=org, action="resume").get().payload["resource_ids"] == []
    run_ladder(day(17), capture)
    assert len(deletions(org)) == 1


def test_never_before_the_date(org, hibernated, django_capture_on_commit_callbacks):
    run_ladder(day(14) - timedelta(seconds=1), django_capture_on_commit_callbacks)
    assert deletions(org) == []
    run_ladder(day(14), django_capture_on_commit_callbacks)
    assert len(deletions(org)) == 1


def test_a_top_up_on_day_5_resumes_and_cancels_the_rest(org, hibernated, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    run_ladder(day(1), capture)
    assert notices(org) == [1]
    with time_machine.travel(day(5), tick=False), capture(execute=True):
        services.credit_topup(organization=org, amount=Decimal("50"), currency=org.currency, reference="pi_5")
    hibernated.refresh_from_db()
    assert hibernated.state == ResourceState.RUNNING
    lad = HibernationLadder.objects.get(organization=org)
    assert (lad.status, lad.ended_at) == ("cancelled", day(5))
    for n in (7, 12, 14, 20):
        run_ladder(day(n), capture)
    assert notices(org) == [1] and deletions(org) == []


def test_a_run_two_days_late_sends_the_due_notice_once_and_a_rerun_sends_nothing(
        org, hibernated, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    run_ladder(day(1), capture)
    # Beat was down from day 2 to day 9: the day-7 notice goes out on day 9, once.
    assert run_ladder(day(9), capture) == 1
    assert run_ladder(day(9, hours=1), capture) == 0
    assert ladder.advance(ladder_id=HibernationLadder.objects.get().pk, now=day(9, hours=2)) == ""
    assert notices(org) == [1, 7]
    # Down again from day 10 to day 16: no day-12 notice for a date already past; the deletion, once.
    assert run_ladder(day(16), capture) == 1
    assert run_ladder(day(16), capture) == 0
    assert notices(org) == [1, 7] and len(deletions(org)) == 1
    assert len(mail.outbox) == 3


def test_a_run_that_finds_every_notice_due_sends_only_the_latest(org, hibernated, django_capture_on_commit_callbacks):
    run_ladder(day(12, hours=3), django_capture_on_commit_callbacks)
    assert notices(org) == [12]
    assert HibernationLadder.objects.get().notices_done == [1, 7, 12]
    assert len(mail.outbox) == 1


def test_another_organisation_is_unaffected(org, hibernated, django_capture_on_commit_callbacks):
    other = OrganizationFactory()
    other_server = out_of_credit(other, external_id="srv-other")
    services.credit_adjust(organization=other, amount=Decimal("100"), reason="funded")
    for n in range(0, 16):
        run_ladder(day(n), django_capture_on_commit_callbacks)
    other_server.refresh_from_db()
    assert other_server.state == ResourceState.RUNNING
    assert notices(other) == [] and deletions(other) == [] and not HibernationLadder.objects.filter(
        organization=other).exists()
    assert len(deletions(org)) == 1


def test_a_per_organisation_policy_overrides_the_default(org, django_capture_on_commit_callbacks):
    LadderPolicy.objects.create(organization=org, notice_days=[2], delete_after_days=3, note="trial account")
    out_of_credit(org)
    with time_machine.travel(T0, tick=False), django_capture_on_commit_callbacks(execute=True):
        hibernation.hibernate_due(now=T0)
    for n in range(0, 5):
        run_ladder(day(n), django_capture_on_commit_callbacks)
    assert notices(org) == [2]
    assert deletions(org)[0].created_at == day(3)


def test_a_policy_without_deletion_sends_reminders_and_never_deletes(org, django_capture_on_commit_callbacks):
    LadderPolicy.objects.create(organization=org, notice_days=[1], delete_after_days=None)
    out_of_credit(org)
    with time_machine.travel(T0, tick=False), django_capture_on_commit_callbacks(execute=True):
        hibernation.hibernate_due(now=T0)
    for n in range(0, 60, 5):
        run_ladder(day(n) + timedelta(hours=1), django_capture_on_commit_callbacks)
    assert notices(org) == [1] and deletions(org) == []
    assert "disks are kept" in mail.outbox[-1].body


def test_a_topped_up_balance_waiting_for_a_manual_resume_holds_the_ladder(
        org, hibernated, settings, django_capture_on_commit_callbacks):
    settings.CREDITS_RESUME_MODE = "manual"
    with time_machine.travel(day(3), tick=False), django_capture_on_commit_callbacks(execute=True):
        services.credit_topup(organization=org, amount=Decimal("50"), currency=org.currency, reference="pi_3")
    assert Resource.objects.get(pk=hibernated.pk).state == ResourceState.HIBERNATED
    for n in (7, 12, 14):
        run_ladder(day(n), django_capture_on_commit_callbacks)
    assert notices(org) == [] and deletions(org) == []
    assert ladder.current(organization=org).held


def test_a_hibernation_older_than_the_ladder_starts_its_ladder_when_first_seen(
        org, django_capture_on_commit_callbacks):
    out_of_credit(org)
    with time_machine.travel(T0, tick=False), django_capture_on_commit_callbacks(execute=True):
        hibernation.hibernate_due(now=T0)
    HibernationLadder.objects.all().delete()  # as if hibernated before this code existed
    run_ladder(day(30), django_capture_on_commit_callbacks)
    lad = HibernationLadder.objects.get()
    assert (lad.started_at, lad.deletion_due_at) == (day(30), day(44))
    assert deletions(org) == []


def test_a_crash_in_the_step_loses_nothing_and_the_rerun_sends_it_once(
        org, hibernated, monkeypatch, django_capture_on_commit_callbacks):
    from credits import notify

    def boom(event):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(notify, "email_event_after_commit", boom)
    with pytest.raises(RuntimeError), time_machine.travel(day(1), tick=False):
        ladder.advance_due(now=day(1))
    assert notices(org) == [] and HibernationLadder.objects.get().notices_done == []  # rolled back whole
    monkeypatch.undo()
    run_ladder(day(1, hours=1), django_capture_on_commit_callbacks)
    run_ladder(day(1, hours=2), django_capture_on_commit_callbacks)
    assert notices(org) == [1] and len(mail.outbox) == 1


# --- what the customer and staff see ----------------------------------------------------


@pytest.fixture
def member_client(client, org, make_member):
    def _client(role="owner"):
        client.force_login(make_member(org, role).user)
        return client

    return _client


def test_the_dashboard_banner_names_the_dates_for_every_member_and_offers_a_top_up_to_billing(
        org, hibernated, member_client, django_capture_on_commit_callbacks):
    run_ladder(day(1), django_capture_on_commit_callbacks)
    with time_machine.travel(day(2), tick=False):
        html = member_client("viewer").get("/").content.decode()
        assert "Resources hibernated: credit ran out" in html
        assert "Hibernated since</dt><dd>2030-03-01 10:00 UTC" in html
        assert "Next notice</dt><dd>2030-03-08 10:00 UTC" in html
        assert "Deletion scheduled on</dt><dd><strong>2030-03-15 10:00 UTC" in html
        assert 'class="btn small" href="/payments/top-up"' not in html.split("ladder-banner")[1].split("</section>")[0]
        billing = member_client("billing").get("/").content.decode().split("ladder-banner")[1].split("</section>")[0]
        assert 'href="/payments/top-up"' in billing
        credits_page = member_client("viewer").get("/credits/").content.decode()
        assert "Deletion scheduled on" in credits_page


def test_the_banner_after_the_deletion_and_none_without_a_hibernation(
        org, other_org, hibernated, member_client, make_member, client, django_capture_on_commit_callbacks):
    run_ladder(day(14), django_capture_on_commit_callbacks)
    html = member_client("viewer").get("/").content.decode()
    assert "Disks deleted for lack of credit" in html and "Disks deletion requested</dt><dd>2030-03-15 10:00 UTC" in html
    client.force_login(make_member(other_org, "owner").user)
    assert "ladder-banner" not in client.get("/").content.decode()


def test_the_console_shows_the_organisations_ladder_and_refuses_a_policy_that_deletes_before_its_notices(
        client, org, hibernated, django_capture_on_commit_callbacks):
    from accounts.staff import BILLING_ADMIN

    from .test_admin import _staff

    run_ladder(day(1), django_capture_on_commit_callbacks)
    with time_machine.travel(day(2), tick=False):
        client.force_login(_staff(BILLING_ADMIN))
        answer = client.get(f"/console/accounts/organization/{org.pk}/change/")
        assert answer.status_code == 200
        page = answer.content.decode()
    assert "Zero-balance ladder" in page and "Notices under way" in page and "2030-03-08 10:00 UTC" in page
    answer = client.post("/console/credits/ladderpolicy/add/", {
        "organization": org.pk, "notice_days": "[1, 20]", "delete_after_days": "14", "note": "x"})
    assert answer.status_code == 200 and "Every notice must come before the deletion day." in answer.content.decode()
    assert not LadderPolicy.objects.exists()
    answer = client.post("/console/credits/ladderpolicy/add/", {
        "organization": org.pk, "notice_days": "[3, 10]", "delete_after_days": "30", "note": "enterprise trial"})
    assert answer.status_code == 302
    assert ladder.policy_for(org.pk) == ladder.Policy([3, 10], 30)


def test_resources_hibernated_otherwise_than_for_credit_never_enter_the_ladder(
        org, django_capture_on_commit_callbacks):
    """A budget's hard cap (another engineer's branch) hibernates without Balance.hibernated_at:
    no ladder; and when credit later runs out, only what credits hibernated is deleted."""
    capped = out_of_credit(org, external_id="srv-capped")
    services.credit_adjust(organization=org, amount=Decimal("10"), reason="funded")
    with time_machine.travel(T0 - timedelta(minutes=30), tick=False):
        usage_services.resource_change_state(resource=capped, state=ResourceState.HIBERNATED,
                                             at=T0 - timedelta(minutes=30), source=StateSource.SERVICE,
                                             reason="Budget hard cap reached")
    run_ladder(day(20), django_capture_on_commit_callbacks)
    assert not HibernationLadder.objects.exists()

    running = out_of_credit(org, external_id="srv-running")  # balance back to zero, one server running
    services.credit_adjust(organization=org, amount=Decimal("-10"), reason="spent")
    with time_machine.travel(T0, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert hibernation.hibernate_due(now=T0) == 1
    run_ladder(day(14), django_capture_on_commit_callbacks)
    [request] = deletions(org)
    assert request.payload["resource_ids"] == [running.pk]
