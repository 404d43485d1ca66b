from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from accounts.models import AuditLog
from accounts.staff import BILLING_ADMIN, SUPPORT
from accounts.tests.factories import OrganizationFactory, UserFactory
from core.errors import DomainError, Forbidden
from credits import services
from credits.models import Balance, LedgerEntry

pytestmark = pytest.mark.django_db


def _staff(group_name):
    from accounts.staff import sync_staff_groups

    sync_staff_groups()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def test_organization_page_shows_the_ledger_inline(client, org, credit):
    credit("12.34", reason="welcome credit")
    client.force_login(_staff(BILLING_ADMIN))
    page = client.get(f"/console/accounts/organization/{org.pk}/change/")
    assert page.status_code == 200
    assert b"welcome credit" in page.content and b"Ledger (newest" in page.content


URL = "/console/accounts/organization/"
REASON = "outage credit for INC-88"


def _step(client, org, step, **fields):
    return client.post(URL, {"action": "adjust_organization_credit", "_selected_action": [org.pk], "step": step,
                             "category": "service_credit", "reason": REASON, **fields})


def _confirm(client, org, amount):
    review = _step(client, org, "review", amount=amount)
    assert review.status_code == 200 and b"Post adjustment" in review.content, review.content[:2000]
    return review, review.context["token"]


def test_billing_admin_adjusts_credit_in_two_steps_with_a_reason_and_is_audited(client, org, credit):
    credit("40")
    staff = _staff(BILLING_ADMIN)
    client.force_login(staff)
    form = client.post(URL, {"action": "adjust_organization_credit", "_selected_action": [org.pk]})
    assert form.status_code == 200 and b"Review adjustment" in form.content and b"balance now $40.00" in form.content
    missing = _step(client, org, "review", amount="15", reason="")
    assert missing.status_code == 200 and b"Review adjustment" in missing.content
    review, token = _confirm(client, org, "15")
    assert b"$40.00" in review.content and b"$55.00" in review.content  # before and after
    assert LedgerEntry.objects.count() == 1  # nothing posted by the review
    done = _step(client, org, "confirm", amount="15", token=token)
    assert done.status_code == 302
    entry = LedgerEntry.objects.get(kind="adjustment", actor=staff)
    assert (entry.amount, entry.reason) == (Decimal("15"), f"Service credit (outage, SLA): {REASON}")
    assert AuditLog.objects.filter(action="credits.adjusted", actor=staff, reason=entry.reason).exists()
    assert Balance.objects.get(organization=org).amount == Decimal("55")


def test_a_double_submitted_confirmation_posts_once(client, org):
    staff = _staff(BILLING_ADMIN)
    client.force_login(staff)
    _, token = _confirm(client, org, "15")
    for _ in range(2):
        assert _step(client, org, "confirm", amount="15", token=token).status_code == 302
    assert LedgerEntry.objects.filter(kind="adjustment").count() == 1
    assert AuditLog.objects.filter(action="credits.adjusted").count() == 1
    assert Balance.objects.get(organization=org).amount == Decimal("15")


def test_a_confirmation_is_bound_to_its_amount_user_and_age(client, org):
    staff = _staff(BILLING_ADMIN)
    client.force_login(staff)
    _, token = _confirm(client, org, "15")
    other = _step(client, org, "confirm", amount="1500", token=token)  # the amount changed after review
    assert other.status_code == 200 and b"for another adjustment" in other.content
    forged = _step(client, org, "confirm", amount="15", token=token + "x")
    assert forged.status_code == 200 and b"not valid" in forged.content
    client.force_login(_staff(BILLING_ADMIN))  # a colleague replays it
    assert b"for another adjustment" in _step(client, org, "confirm", amount="15", token=token).content
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        client.force_login(staff)
        assert b"expired" in _step(client, org, "confirm", amount="15", token=token).content
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize("amount, reason, message", [
    ("-99999999", "oops", b"at least 12 characters"),
    ("10.001", REASON, b"USD amounts have at most 2 decimal places"),
    ("0", REASON, b"other than zero"),
])
def test_the_form_refuses_short_reasons_finer_precision_and_zero(client, org, amount, reason, message):
    client.force_login(_staff(BILLING_ADMIN))
    response = _step(client, org, "review", amount=amount, reason=reason)
    assert response.status_code == 200 and message in response.content
    assert not LedgerEntry.objects.exists()


def test_yen_adjustments_have_no_decimals(client):
    org = OrganizationFactory(currency="JPY")
    client.force_login(_staff(BILLING_ADMIN))
    assert b"JPY amounts have at most 0 decimal places" in _step(client, org, "review", amount="100.5").content


def test_amounts_beyond_the_staff_limit_need_a_superuser(client, org, settings):
    settings.CREDITS_ADJUSTMENT_STAFF_LIMITS = {"default": Decimal("5000"), "JPY": Decimal("750000")}
    client.force_login(_staff(BILLING_ADMIN))
    refused = _step(client, org, "review", amount="-99999999")
    assert b"Above the staff limit of $5,000.00: a superuser must post this." in refused.content
    assert b"Post adjustment" not in refused.content
    assert b"Post adjustment" in _step(client, org, "review", amount="-5000").content  # the limit itself is allowed
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(superuser)
    _, token = _confirm(client, org, "-99999999")
    assert _step(client, org, "confirm", amount="-99999999", token=token).status_code == 302
    assert Balance.objects.get(organization=org).amount == Decimal("-99999999")


def test_the_service_refuses_a_person_above_the_limit_whatever_the_form(org):
    staff = _staff(BILLING_ADMIN)
    with pytest.raises(Forbidden):
        services.credit_adjust(organization=org, amount=Decimal("-5000.01"), reason=REASON, actor=staff)
    with pytest.raises(DomainError, match="at most 2 decimal places"):
        services.credit_adjust(organization=org, amount=Decimal("1.005"), reason=REASON, actor=staff)
    assert not LedgerEntry.objects.exists()


def test_the_confirmation_states_what_would_follow(client, org, credit, settings):
    from payments.tests.factories import PaymentMethodFactory
    from usage.tests.factories import ResourceFactory

    settings.CREDITS_LOW_BALANCE_WARNING = Decimal("10")
    credit("600")
    for _ in range(5):
        ResourceFactory(organization=org, state="running")
    ResourceFactory(organization=org, state="stopped")
    services.auto_topup_configure(organization=org, enabled=True, threshold=Decimal("1000"), amount=Decimal("500"))
    PaymentMethodFactory(organization=org, brand="visa", last4="4242")
    client.force_login(_staff(BILLING_ADMIN))
    review, _ = _confirm(client, org, "-2000")
    outlook = review.context["outlooks"][0]
    assert (outlook.before, outlook.after) == (Decimal("600"), Decimal("-1400"))
    assert outlook.consequences == [
        "5 running servers will be hibernated.",
        "Auto top-up will charge $500.00 to saved card visa ····4242. The balance stays below the threshold of "
        "$1,000.00 (-$900.00).",
        "A warning will be emailed: “Your credit of -$1,400.00 lasts less than 1 hours at your current usage "
        "($0.00 an hour): no credit left.”",
    ]
    assert b"5 running servers will be hibernated." in review.content


def test_a_credit_of_a_hibernated_balance_says_it_resumes(client, org, settings):
    settings.CREDITS_RESUME_MODE = "automatic"
    Balance.objects.create(organization=org, currency="USD", amount=Decimal("-5"), hibernated_at=timezone.now(),
                           hibernated_resources=[1, 2])
    client.force_login(_staff(BILLING_ADMIN))
    review, _ = _confirm(client, org, "50")
    assert review.context["outlooks"][0].consequences == ["2 hibernated servers will be resumed."]


def test_the_staff_limits_setting_is_checked_at_start_up(settings):
    from credits.checks import check_adjustment_staff_limits

    assert check_adjustment_staff_limits() == []
    settings.CREDITS_ADJUSTMENT_STAFF_LIMITS = {"JPY": Decimal("1")}
    assert [e.id for e in check_adjustment_staff_limits()] == ["credits.E001"]
    settings.CREDITS_ADJUSTMENT_STAFF_LIMITS = {"default": "-5", "XXQ": Decimal("1"), "EUR": 5.0}
    assert [e.id for e in check_adjustment_staff_limits()] == ["credits.E003", "credits.E002", "credits.E003"]


def test_support_cannot_adjust_credit(client, org):
    support = _staff(SUPPORT)
    assert not support.has_perm("credits.adjust_credit")
    support.user_permissions.add(Permission.objects.get(codename="view_organization"))
    client.force_login(support)
    response = _step(client, org, "confirm", amount="15", token="forged")
    assert response.status_code in (200, 302, 403)
    assert not LedgerEntry.objects.exists()


def test_saving_auto_top_up_settings_unchanged_in_the_console_re_arms_nothing(client, org):
    cfg = services.auto_topup_configure(organization=org, enabled=True, threshold=Decimal("20"), amount=Decimal("50"))
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = f"/console/credits/autotopupsettings/{cfg.pk}/change/"
    assert client.get(url).status_code == 200
    fields = {"enabled": "on", "threshold": "20", "amount": "50", "monthly_cap": ""}
    assert client.post(url, fields).status_code == 302
    before = cfg.rearmed_at
    cfg.refresh_from_db()
    assert cfg.rearmed_at == before
    assert client.post(url, {**fields, "threshold": "30"}).status_code == 302
    cfg.refresh_from_db()
    assert cfg.threshold == Decimal("30") and cfg.rearmed_at > before
    assert AuditLog.objects.filter(action="credits.auto_topup_configured").count() == 2
