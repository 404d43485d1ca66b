"""Emails about credit events (warnings, failed top-ups, hibernation), sent after commit."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail

from accounts.models import Membership, Organization
from accounts.scopes import Role
from credits.models import CreditEvent


def recipients(organization: Organization) -> list[str]:
    """The billing address, else the owners and billing members."""
    if organization.billing_email:
        return [organization.billing_email]
    return sorted(set(Membership.objects.filter(
        organization=organization, role__in=[Role.OWNER, Role.BILLING], user__is_active=True,
    ).values_list("user__email", flat=True)))


def email_event_after_commit(event: CreditEvent) -> None:
    from core import outbox

    outbox.enqueue("credits.email_event", event.pk)


def email_event(event_id: int) -> int:
    event = CreditEvent.objects.select_related("organization").filter(pk=event_id).first()
    if event is None:
        return 0
    to = recipients(event.organization)
    if not to:
        return 0
    return send_mail(
        subject=f"[{settings.PORTAL_BRAND}] {event.get_kind_display()}: {event.organization.name}",
        message=f"{event.message}\n\nSee your credit and top up: {settings.CREDITS_PORTAL_URL}\n",
        from_email=None,
        recipient_list=to,
    )
